#!/usr/bin/env bash
# kind path of ensure.sh, for machines with a Docker engine: cluster "roadlab" with
# metrics-server, and the project's images loaded. Prints the kubeconfig path.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
KIND_VERSION=v0.29.0
KIND_KUBECONFIG=$CACHE_DIR/kind-roadlab.kubeconfig

command -v kind >/dev/null || GOBIN=$CACHE_DIR/bin go install "sigs.k8s.io/kind@$KIND_VERSION"
export PATH=$CACHE_DIR/bin:$PATH
kind get clusters 2>/dev/null | grep -qx roadlab ||
  kind create cluster --name roadlab >&2
kind get kubeconfig --name roadlab >"$KIND_KUBECONFIG"
"$CLUSTER_DIR/project-images.sh" kind >&2
echo "$KIND_KUBECONFIG"
