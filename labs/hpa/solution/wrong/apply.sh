#!/bin/sh
# Applies a wrong answer to the hpa lab (for the e2e test and for trying the checks).
# Usage: LAB_NAMESPACE=lab-<name> solution/wrong/apply.sh
set -eu
: "${LAB_NAMESPACE:?set LAB_NAMESPACE to the lab namespace, e.g. lab-hpa-alice}"
here=$(cd "$(dirname "$0")" && pwd)
kubectl -n "$LAB_NAMESPACE" apply -f "$here/hpa.yaml"
