#!/bin/sh
# Solves the model-api lab. Usage: LAB_NAMESPACE=lab-<name> solution/apply.sh
# Uses only what the learner may do: apply a Deployment, a PodDisruptionBudget and a Service.
set -eu
: "${LAB_NAMESPACE:?set LAB_NAMESPACE to the lab namespace, e.g. lab-model-api-alice}"
here=$(cd "$(dirname "$0")" && pwd)
kubectl -n "$LAB_NAMESPACE" apply -f "$here/model-api.yaml"
kubectl -n "$LAB_NAMESPACE" rollout status deployment/model-api --timeout=180s
