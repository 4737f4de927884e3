#!/bin/sh
# A deliberately wrong answer to the istio lab (see README.md): the pods are on the mesh and
# the weights are the assigned ones, but the subsets' labels are swapped and mTLS is
# PERMISSIVE.
set -eu
: "${LAB_NAMESPACE:?set LAB_NAMESPACE to the lab namespace}"
here=$(cd "$(dirname "$0")" && pwd)
k() { kubectl -n "$LAB_NAMESPACE" "$@"; }
kubectl label namespace "$LAB_NAMESPACE" istio-injection=enabled --overwrite
k rollout restart deployment reviews-v1 reviews-v2
k rollout status deployment reviews-v1 --timeout=180s
k rollout status deployment reviews-v2 --timeout=180s
assigned() { k get configmap assignment -o "jsonpath={.data.$1}"; }
stable=$(assigned stableWeight) canary=$(assigned canaryWeight)
sed -e "s/@STABLE@/$stable/" -e "s/@CANARY@/$canary/" "$here/mesh.yaml" | k apply -f -
