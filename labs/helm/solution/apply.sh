#!/bin/sh
# Solves the helm lab. Usage: LAB_NAMESPACE=lab-<name> solution/apply.sh
# Uses only what the learner may do: helm (install, upgrade, rollback) in the lab namespace.
# The values come from the lab's ConfigMap assignment, as a learner would read them.
set -eu
: "${LAB_NAMESPACE:?set LAB_NAMESPACE to the lab namespace, e.g. lab-helm-alice}"
here=$(cd "$(dirname "$0")" && pwd)
replicas=$(kubectl -n "$LAB_NAMESPACE" get configmap assignment -o jsonpath='{.data.replicaCount}')
version=$(kubectl -n "$LAB_NAMESPACE" get configmap assignment -o jsonpath='{.data.version}')
packages=$(mktemp -d)
trap 'rm -rf "$packages"' EXIT
helm package "$here/greeter" --version 0.1.0 --destination "$packages" >/dev/null
helm package "$here/greeter" --version 0.2.0 --destination "$packages" >/dev/null

# Revision 1: chart 0.1.0 with the assigned values.
helm install greeter "$packages/greeter-0.1.0.tgz" -n "$LAB_NAMESPACE" \
  --set replicaCount="$replicas" --set-string version="$version" --wait --timeout 180s
# Revision 2: chart 0.2.0, a new version of the app.
helm upgrade greeter "$packages/greeter-0.2.0.tgz" -n "$LAB_NAMESPACE" \
  --reuse-values --set-string version="$version-next" --wait --timeout 180s
# Revision 3: back to revision 1 (chart 0.1.0 and its values).
helm rollback greeter 1 -n "$LAB_NAMESPACE" --wait --timeout 180s
helm history greeter -n "$LAB_NAMESPACE"
