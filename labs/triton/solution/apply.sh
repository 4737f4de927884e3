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
if [ -n "$existed" ]; then k rollout restart deployment/triton; fi
k rollout status deployment/triton --timeout=180s
