# metrics-server of the local cluster (sourced after lib.sh by build.sh and up.sh, and by
# kind.sh): where its binary is cached, its image, and how its manifest is applied.
# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are used by the scripts that source this file

METRICS_SERVER_IMAGE=localhost/roadlab/metrics-server:$METRICS_SERVER_VERSION
# What kind clusters run instead (they can pull): upstream's release image.
METRICS_SERVER_UPSTREAM_IMAGE=registry.k8s.io/metrics-server/metrics-server:v$METRICS_SERVER_VERSION
# The kubelet's serving certificate here is signed by the cluster CA, which is also the CA
# in every pod's service-account volume: metrics-server verifies the kubelet with it.
METRICS_SERVER_KUBELET_CA=--kubelet-certificate-authority=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt

metrics_server_bin_dir() {
  echo "$CACHE_DIR/bin/metrics-server-$METRICS_SERVER_VERSION-$(hash_inputs "$CLUSTER_DIR"/build/metrics-server/go.*)"
}

# render_metrics_server IMAGE PULL_POLICY KUBELET_TLS_FLAG: the manifest, ready to apply.
render_metrics_server() {
  sed -e "/^#/!s|@METRICS_SERVER_IMAGE@|$1|g" -e "/^#/!s|@IMAGE_PULL_POLICY@|$2|g" \
    -e "/^#/!s|@KUBELET_TLS_FLAG@|$3|g" "$CLUSTER_DIR/manifests/metrics-server.yaml"
}

# metrics_available KUBECTL...: the metrics APIService is Available and `kubectl top nodes`
# answers (it fails until metrics-server has scraped the kubelet twice).
metrics_available() {
  [[ $("$@" get apiservice v1beta1.metrics.k8s.io \
    -o jsonpath='{.status.conditions[?(@.type=="Available")].status}') == True ]] &&
    "$@" top nodes
}

# install_metrics_server IMAGE PULL_POLICY KUBELET_TLS_FLAG KUBECTL...: apply the manifest and
# wait (bounded) until the metrics API serves node metrics.
install_metrics_server() {
  local image=$1 policy=$2 tls=$3; shift 3
  render_metrics_server "$image" "$policy" "$tls" | "$@" apply -f - >/dev/null
  "$@" -n kube-system rollout status deployment/metrics-server --timeout=180s >/dev/null
  # Node metrics need two scrapes (--metric-resolution=15s) after metrics-server starts.
  wait_for "the metrics API (metrics-server)" 120 metrics_available "$@"
}
