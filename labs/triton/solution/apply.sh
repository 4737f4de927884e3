#!/bin/sh
# Solves the triton lab. Usage: LAB_NAMESPACE=lab-<name> solution/apply.sh
# Uses only what the learner may do: patch ConfigMaps, apply Deployments and Services.
set -eu
: "${LAB_NAMESPACE:?set LAB_NAMESPACE to the lab namespace, e.g. lab-triton-alice}"
here=$(cd "$(dirname "$0")" && pwd)
k() { kubectl -n "$LAB_NAMESPACE" "$@"; }

# 1. Serve every version of the model: a version policy in its config.pbtxt.
k patch configmap model-repository --type=merge --patch-file="$here/config-patch.yaml"

# 2. The server (requests, health probes, the repository mounted at /models) and its Service.
existed=$(k get deployment triton --ignore-not-found -o name)
k apply -f "$here/triton.yaml"
# Triton reads the repository at start only: pods that were already running must restart to
# see the new version policy. (New pods read the ConfigMap as it is now.)
old_pods=""
if [ -n "$existed" ]; then
  old_pods=$(k get pods -l app=triton -o name)
  k rollout restart deployment/triton
fi
k rollout status deployment/triton --timeout=180s
# The rollout is done when the new pod is ready, but an old one may still answer through the
# Service while it shuts down (until kube-proxy has dropped its endpoint), with the old
# version policy: wait until the old pods are gone.
if [ -n "$old_pods" ]; then
  # shellcheck disable=SC2086 # one argument per pod
  k wait --for=delete $old_pods --timeout=120s
fi
