#!/bin/sh
# Solves the istio lab. Usage: LAB_NAMESPACE=lab-<name> solution/apply.sh
# Uses only what the learner may do: label their own Namespace (istio-injection only), read
# ConfigMaps, apply Istio's traffic and security objects.
set -eu
: "${LAB_NAMESPACE:?set LAB_NAMESPACE to the lab namespace, e.g. lab-istio-alice}"
here=$(cd "$(dirname "$0")" && pwd)
k() { kubectl -n "$LAB_NAMESPACE" "$@"; }

# 1. Sidecar injection for every new pod of the namespace; the running pods get their
#    sidecars when their Deployments replace them.
kubectl label namespace "$LAB_NAMESPACE" istio-injection=enabled --overwrite
k rollout restart deployment reviews-v1 reviews-v2
k rollout status deployment reviews-v1 --timeout=180s
k rollout status deployment reviews-v2 --timeout=180s

# 2. and 4. Subsets v1/v2, and strict mutual TLS for the namespace.
k apply -f "$here/destination-rule.yaml" -f "$here/peer-authentication.yaml"

# 3. The weighted split, with the weights of this Lab's assignment.
assigned() { k get configmap assignment -o "jsonpath={.data.$1}"; }
stable=$(assigned stableWeight) canary=$(assigned canaryWeight)
sed -e "s/@STABLE@/$stable/" -e "s/@CANARY@/$canary/" "$here/virtual-service.yaml" | k apply -f -
