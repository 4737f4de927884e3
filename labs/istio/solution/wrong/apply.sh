#!/bin/sh
# A deliberately wrong answer to the istio lab (see README.md): a 50/50 split, subsets that
# select labels the pods do not have, PERMISSIVE mTLS, and no injection label.
set -eu
: "${LAB_NAMESPACE:?set LAB_NAMESPACE to the lab namespace}"
kubectl -n "$LAB_NAMESPACE" apply -f "$(cd "$(dirname "$0")" && pwd)/mesh.yaml"
