#!/bin/sh
# Solves the hpa lab. Usage: LAB_NAMESPACE=lab-<name> solution/apply.sh
# Uses only what the learner may do: patch Deployments, read ConfigMaps, apply HPAs.
set -eu
: "${LAB_NAMESPACE:?set LAB_NAMESPACE to the lab namespace, e.g. lab-hpa-alice}"
here=$(cd "$(dirname "$0")" && pwd)
k() { kubectl -n "$LAB_NAMESPACE" "$@"; }

# 1. CPU requests on the Deployment's pod template (rolls out new pods).
k patch deployment web --type=strategic --patch-file="$here/requests-patch.yaml"
k rollout status deployment/web --timeout=120s

# 2. The HPA, with the bounds and target of this Lab's assignment.
assigned() { k get configmap assignment -o "jsonpath={.data.$1}"; }
min=$(assigned minReplicas) max=$(assigned maxReplicas) cpu=$(assigned targetCPUUtilizationPercent)
sed -e "s/^  minReplicas: .*/  minReplicas: $min/" -e "s/^  maxReplicas: .*/  maxReplicas: $max/" \
  -e "s/averageUtilization: .*/averageUtilization: $cpu/" "$here/hpa.yaml" | k apply -f -
# 3. Nothing to do: the lab's third check generates the load and watches the HPA scale.
