#!/bin/sh
# A near-miss answer to the gitops lab (see README.md): prune off, and the replicas set with
# kubectl scale instead of in Git. Usage: LAB_NAMESPACE=lab-<name> solution/wrong/apply.sh
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/lib.sh"
clone_lab_repository
apply_flux_objects false
# The version goes through Git; replicas are taken out of it ("the cluster decides")...
edit_deployment ""
push_and_sync "shop: $version, replicas left to the cluster"
# ...and set by hand.
kubectl -n "$LAB_NAMESPACE" scale deployment shop --replicas="$replicas"
kubectl -n "$LAB_NAMESPACE" rollout status deployment/shop --timeout=120s
