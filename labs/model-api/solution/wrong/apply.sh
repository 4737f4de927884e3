#!/bin/sh
# Applies a wrong answer to the model-api lab (for the e2e test and for trying the checks).
# Usage: LAB_NAMESPACE=lab-<name> solution/wrong/apply.sh
set -eu
: "${LAB_NAMESPACE:?set LAB_NAMESPACE to the lab namespace, e.g. lab-model-api-alice}"
here=$(cd "$(dirname "$0")" && pwd)
kubectl -n "$LAB_NAMESPACE" apply -f "$here/model-api.yaml"
kubectl -n "$LAB_NAMESPACE" rollout status deployment/model-api --timeout=180s
