#!/usr/bin/env bash
# kind path of ensure.sh, for machines with a Docker engine: cluster "roadlab" with
# metrics-server, and the project's images loaded. Prints the kubeconfig path.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CLUSTER_DIR/metrics-server.sh"
source "$CLUSTER_DIR/istio-crds.sh"
source "$CLUSTER_DIR/flux.sh"
source "$CLUSTER_DIR/istio.sh"
KIND_KUBECONFIG=$CACHE_DIR/kind-roadlab.kubeconfig

export PATH=$CACHE_DIR/bin:$PATH
command -v kind >/dev/null || GOBIN=$CACHE_DIR/bin go install "sigs.k8s.io/kind@v$KIND_VERSION"
# The node image is pinned (versions.env) to the Kubernetes minor the local cluster runs;
# KIND_NODE_IMAGE overrides it (the workflow's matrix runs the newest kind release too).
kind get clusters 2>/dev/null | grep -qx roadlab ||
  kind create cluster --name roadlab --image "$KIND_NODE_IMAGE" --wait 120s >&2
kind get kubeconfig --name roadlab >"$KIND_KUBECONFIG"
# metrics-server from the same manifest as the local cluster, with upstream's image
# (registry.k8s.io/metrics-server/metrics-server:v$METRICS_SERVER_VERSION, pulled by kind) and
# --kubelet-insecure-tls: kind's kubelets serve self-signed certificates, and that flag is
# metrics-server's documented setting for kind.
command -v kubectl >/dev/null || die "kubectl is needed to install metrics-server on kind"
install_metrics_server "$METRICS_SERVER_UPSTREAM_IMAGE" IfNotPresent --kubelet-insecure-tls \
  kubectl --kubeconfig "$KIND_KUBECONFIG"
# Istio's CRDs from the same pinned module.
install_istio_crds kubectl --kubeconfig "$KIND_KUBECONFIG"
# Flux from the same manifest and CRDs, with upstream's images (ghcr.io/fluxcd/*, pulled by kind).
install_flux "$FLUX_SOURCE_CONTROLLER_UPSTREAM_IMAGE" "$FLUX_KUSTOMIZE_CONTROLLER_UPSTREAM_IMAGE" IfNotPresent \
  kubectl --kubeconfig "$KIND_KUBECONFIG"
# Istio as on the local cluster (the same images, built here with Docker: upstream's proxy
# image would expect Istio's own Envoy build), istio-cni chained into kindnet's network.
istio_contexts=$(istio_image_contexts) # an assignment: a failed build stops the script
while read -r name ctx; do
  docker build -q -t "$name" "$ctx" >&2
  kind load docker-image "$name" --name roadlab >&2
  rm -rf "$ctx"
done <<<"$istio_contexts"
ISTIO_CNI_BIN_DIR=/opt/cni/bin ISTIO_CNI_CONF_DIR=/etc/cni/net.d ISTIO_CNI_CONF_FILE=10-kindnet.conflist \
  install_istio kubectl --kubeconfig "$KIND_KUBECONFIG"
"$CLUSTER_DIR/project-images.sh" kind >&2
echo "$KIND_KUBECONFIG"
