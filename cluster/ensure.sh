#!/usr/bin/env bash
# Choose a cluster for the demo and the e2e tests, make sure it runs, load the project's
# images into it, and print the path of its kubeconfig (the only thing on stdout).
#   1. ROADLAB_KUBECONFIG, if set: an existing cluster the user gives (images must be
#      pushed by the user; nothing is built).
#   2. ROADLAB_CLUSTER=local|kind, if set: that one.
#   3. kind, if kind can create (or already runs) cluster "roadlab": a Docker engine answers
#      and kind's node image is present or pullable.
#   4. otherwise the local cluster that cluster/up.sh builds and starts.
# Every choice is logged with its reason on one line.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# kind_usable: empty when kind can be used, else why not (one line).
kind_usable() {
  if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
    echo "no Docker engine answers"
  elif command -v kind >/dev/null && kind get clusters 2>/dev/null | grep -qx roadlab; then
    return 0
  elif docker image inspect "$KIND_NODE_IMAGE" >/dev/null 2>&1; then
    return 0
  # A Docker engine alone is not enough (Debian's docker.io runs here, with no registry to
  # pull kind's node image from): ask the registry for the image's manifest, briefly.
  elif timeout 30 docker manifest inspect "$KIND_NODE_IMAGE" >/dev/null 2>&1; then
    return 0
  else
    echo "Docker answers, but kind's node image $KIND_NODE_IMAGE is neither present nor pullable"
  fi
}

# choose: local or kind on stdout (run in a command substitution, so input is checked first).
choose() {
  local why
  case ${ROADLAB_CLUSTER:-} in
    local | kind)
      log "using the $ROADLAB_CLUSTER cluster (ROADLAB_CLUSTER=$ROADLAB_CLUSTER)"
      echo "$ROADLAB_CLUSTER" ;;
    "")
      why=$(kind_usable)
      if [[ -z $why ]]; then
        log "using kind: a Docker engine answers and kind's node image is available"
        echo kind
      else
        log "using the local cluster: $why"
        echo local
      fi ;;
  esac
}

case ${ROADLAB_CLUSTER:-} in
  "" | local | kind) ;;
  *) die "ROADLAB_CLUSTER=$ROADLAB_CLUSTER: expected local or kind" ;;
esac

if [[ -n ${ROADLAB_KUBECONFIG:-} ]]; then
  [[ -r $ROADLAB_KUBECONFIG ]] || die "ROADLAB_KUBECONFIG=$ROADLAB_KUBECONFIG is not readable"
  log "using the existing cluster of $ROADLAB_KUBECONFIG"
  echo "$ROADLAB_KUBECONFIG"
elif cluster=$(choose) && [[ $cluster == kind ]]; then
  "$CLUSTER_DIR/kind.sh"
else
  kubeconfig=$("$CLUSTER_DIR/up.sh")
  "$CLUSTER_DIR/project-images.sh" local
  echo "$kubeconfig"
fi
