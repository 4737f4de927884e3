#!/bin/sh
# Applies a wrong answer to the helm lab (for the e2e test and for trying the checks): the
# reference chart installed with its default values and upgraded to 0.2.0, never rolled
# back. Usage: LAB_NAMESPACE=lab-<name> solution/wrong/apply.sh
set -eu
: "${LAB_NAMESPACE:?set LAB_NAMESPACE to the lab namespace, e.g. lab-helm-alice}"
here=$(cd "$(dirname "$0")/.." && pwd)
packages=$(mktemp -d)
trap 'rm -rf "$packages"' EXIT
helm package "$here/greeter" --version 0.1.0 --destination "$packages" >/dev/null
helm package "$here/greeter" --version 0.2.0 --destination "$packages" >/dev/null
# The assignment not read: replicaCount 1 and version v1, the chart's defaults.
helm install greeter "$packages/greeter-0.1.0.tgz" -n "$LAB_NAMESPACE" --wait --timeout 180s
helm upgrade greeter "$packages/greeter-0.2.0.tgz" -n "$LAB_NAMESPACE" --wait --timeout 180s
