#!/bin/sh
# Applies a wrong answer to the triton lab (for the e2e test and for trying the checks).
# Usage: LAB_NAMESPACE=lab-<name> solution/wrong/apply.sh
set -eu
: "${LAB_NAMESPACE:?set LAB_NAMESPACE to the lab namespace, e.g. lab-triton-alice}"
here=$(cd "$(dirname "$0")" && pwd)
kubectl -n "$LAB_NAMESPACE" apply -f "$here/triton.yaml"
kubectl -n "$LAB_NAMESPACE" rollout status deployment/triton --timeout=180s
