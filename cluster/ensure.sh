#!/usr/bin/env bash
# Choose a cluster for the demo and the e2e tests, make sure it runs, load the project's
# images into it, and print the path of its kubeconfig (the only thing on stdout).
#   1. ROADLAB_KUBECONFIG, if set: an existing cluster the user gives (images must be
#      pushed by the user; nothing is built).
#   2. kind, if a Docker engine answers: cluster "roadlab".
#   3. otherwise the local cluster that cluster/up.sh builds and starts.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ -n ${ROADLAB_KUBECONFIG:-} ]]; then
  [[ -r $ROADLAB_KUBECONFIG ]] || die "ROADLAB_KUBECONFIG=$ROADLAB_KUBECONFIG is not readable"
  log "using the existing cluster of $ROADLAB_KUBECONFIG"
  echo "$ROADLAB_KUBECONFIG"
elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  "$CLUSTER_DIR/kind.sh"
else
  log "no Docker engine: using the local cluster"
  kubeconfig=$("$CLUSTER_DIR/up.sh")
  "$CLUSTER_DIR/project-images.sh" local
  echo "$kubeconfig"
fi
