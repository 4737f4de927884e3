#!/bin/sh
# Applies a wrong answer to the observability lab (for the e2e test and for trying the
# checks). Usage: LAB_NAMESPACE=lab-<name> solution/wrong/apply.sh
# Three near misses, each one a learner makes (labs/observability/solution/wrong/README.md):
# the Service as the only target, a sum that drops the job label, an alert whose `for` is
# longer than any burst of errors the check sends.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"

{ prometheus_yml_start; cat <<YAML; } >"$work/prometheus.yml"
  - job_name: shop
    scrape_interval: $scrape_interval
    static_configs:
      - targets: [shop:80]
YAML
cat >"$work/rules.yml" <<YAML
groups:
  - name: shop
    rules:
      - record: job:web_requests:rate1m
        expr: sum(rate(web_requests_total{job="shop"}[1m]))
      - alert: ShopHighErrorRate
        expr: |
          sum(rate(web_requests_total{job="shop", code=~"5.."}[1m]))
            / sum(rate(web_requests_total{job="shop"}[1m]))
            > $error_ratio
        for: 10m
        labels:
          severity: page
YAML
apply_prometheus_config "$work/prometheus.yml" "$work/rules.yml"
