#!/bin/sh
# Solves the observability lab. Usage: LAB_NAMESPACE=lab-<name> solution/apply.sh
# Uses only what the learner may do: a Service, the ConfigMap prometheus-config, and a
# restart of the Deployment prometheus.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
kubectl -n "$LAB_NAMESPACE" apply -f "$here/shop-metrics.yaml"

{ prometheus_yml_start; cat <<YAML; } >"$work/prometheus.yml"
  # One target per ready pod: the headless Service's DNS name holds every pod's IP.
  - job_name: shop
    scrape_interval: $scrape_interval
    dns_sd_configs:
      - names: [shop-metrics]
        type: A
        port: 8080
        refresh_interval: 5s
YAML
cat >"$work/rules.yml" <<YAML
groups:
  - name: shop
    rules:
      - record: job:web_requests:rate1m
        expr: sum by (job) (rate(web_requests_total{job="shop"}[1m]))
      - alert: ShopHighErrorRate
        expr: |
          sum by (job) (rate(web_requests_total{job="shop", code=~"5.."}[1m]))
            / sum by (job) (rate(web_requests_total{job="shop"}[1m]))
            > $error_ratio
        for: 30s
        labels:
          severity: page
        annotations:
          summary: More than $error_percent % of shop's requests fail
YAML
apply_prometheus_config "$work/prometheus.yml" "$work/rules.yml"
