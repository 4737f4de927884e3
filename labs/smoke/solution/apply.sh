#!/bin/sh
# Solves the smoke lab. Usage: LAB_NAMESPACE=lab-<name> solution/apply.sh
set -eu
: "${LAB_NAMESPACE:?set LAB_NAMESPACE to the lab namespace, e.g. lab-smoke-alice}"
here=$(cd "$(dirname "$0")" && pwd)
kubectl -n "$LAB_NAMESPACE" apply -f "$here/solution.yaml"
kubectl -n "$LAB_NAMESPACE" scale deployment web --replicas=2
