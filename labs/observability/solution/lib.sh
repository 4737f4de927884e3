# Shared by the observability lab's solution and its wrong answer (sourced): the assignment,
# read as a learner reads it, and how a new Prometheus configuration is put in place.
: "${LAB_NAMESPACE:?set LAB_NAMESPACE to the lab namespace, e.g. lab-observability-alice}"
assigned() { kubectl -n "$LAB_NAMESPACE" get configmap assignment -o jsonpath="{.data.$1}"; }
scrape_interval=$(assigned scrapeInterval)
error_percent=$(assigned errorPercent)
# The threshold as a ratio: 10 -> 0.10.
error_ratio=$(awk -v p="$error_percent" 'BEGIN { printf "%.2f", p / 100 }')

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# prometheus_yml_start: what both answers' prometheus.yml begin with (the scrape job of
# shop, which they do differently, follows): the rule file, the Alertmanager, Prometheus
# scraping itself.
prometheus_yml_start() {
  cat <<'YAML'
global:
  scrape_interval: 15s
  evaluation_interval: 5s
rule_files:
  - /etc/prometheus/rules.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: [alertmanager:9093]
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: [localhost:9090]
YAML
}

# apply_prometheus_config PROMETHEUS_YML RULES_YML: the ConfigMap prometheus-config with both
# files, then a new Prometheus on it (rather than waiting for the kubelet to update the mount).
apply_prometheus_config() {
  kubectl -n "$LAB_NAMESPACE" create configmap prometheus-config \
    --from-file=prometheus.yml="$1" --from-file=rules.yml="$2" \
    --dry-run=client -o yaml | kubectl -n "$LAB_NAMESPACE" apply -f -
  kubectl -n "$LAB_NAMESPACE" rollout restart deployment/prometheus
  kubectl -n "$LAB_NAMESPACE" rollout status deployment/prometheus --timeout=120s
}
