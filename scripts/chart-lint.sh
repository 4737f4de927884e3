#!/usr/bin/env bash
# helm lint --strict, then every rendered manifest (with the optional monitoring objects
# off and on) validated by kubeconform against the schemas of the cluster's Kubernetes
# version, and by the API server itself (server-side dry run).
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${ROADLAB_CACHE:-$HOME/.cache/roadlab}
export PATH="$cache/bin:$PATH"
command -v helm >/dev/null && command -v kubeconform >/dev/null || cluster/build.sh >&2
chart=charts/roadlab
all_on=serviceMonitor.enabled=true,prometheusRule.enabled=true,grafanaDashboard.enabled=true
helm lint --strict "$chart"
helm lint --strict "$chart" --set "$all_on"

kubeconfig=$(cluster/ensure.sh)
version=$(kubectl --kubeconfig "$kubeconfig" version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')
# kubeconform would download its schemas; the API server in use publishes the same.
schemas=$cache/kubeconform-schemas/$version
if [[ ! -d $schemas ]]; then
  kubectl --kubeconfig "$kubeconfig" get --raw /openapi/v2 | python3 scripts/k8s_schemas.py "$schemas.tmp"
  mv "$schemas.tmp" "$schemas"
fi
rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT
# The project's own kinds (the built-in Roadmaps) from its CRD files, as they are now.
python3 scripts/k8s_schemas.py --crds "$rendered/crd-schemas" crds/*.yaml
# The dry run needs its target namespace to exist; a throwaway one keeps this check from
# touching (or depending on) a real install in roadlab-system.
namespace=roadlab-chart-lint
helm template roadlab "$chart" --kube-version "$version" --namespace "$namespace" --include-crds >"$rendered/default.yaml"
helm template roadlab "$chart" --kube-version "$version" --namespace "$namespace" --set "$all_on" >"$rendered/all-on.yaml"
# ServiceMonitor and PrometheusRule are prometheus-operator's kinds, not served here.
kubeconform -strict -summary -skip ServiceMonitor,PrometheusRule \
  -schema-location "$rendered/crd-schemas/{{.ResourceKind}}{{.KindSuffix}}.json" \
  -schema-location "$schemas/{{.ResourceKind}}{{.KindSuffix}}.json" "$rendered"/*.yaml
kubectl --kubeconfig "$kubeconfig" create namespace "$namespace" --dry-run=client -o yaml |
  kubectl --kubeconfig "$kubeconfig" apply -f - >/dev/null
trap 'rm -rf "$rendered"; kubectl --kubeconfig "$kubeconfig" delete namespace "$namespace" --wait=false >/dev/null 2>&1 || true' EXIT
# A dry run does not serve a CRD it creates, so the chart's own objects of the project's
# kinds (the built-in Roadmaps) need the CRDs applied for real first, as the e2e suite
# applies them (--force-conflicts: Helm may hold their fields from an earlier install).
kubectl --kubeconfig "$kubeconfig" apply --server-side --force-conflicts -f crds/ >/dev/null
kubectl --kubeconfig "$kubeconfig" wait --for=condition=Established --timeout=60s \
  -f crds/ >/dev/null
kubectl --kubeconfig "$kubeconfig" apply --server-side --force-conflicts --dry-run=server \
  -f "$rendered/default.yaml" >/dev/null
echo "chart: helm lint --strict, kubeconform and a server-side dry run passed"
