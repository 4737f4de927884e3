#!/bin/sh
# Solves the gitops lab. Usage: LAB_NAMESPACE=lab-<name> solution/apply.sh
# Uses only what the learner may do: Flux's objects in the lab namespace, and git through a
# port-forward to the lab's Git server. Works after the wrong answer too (prune turned on,
# replicas back in Git).
set -eu
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
clone_lab_repository
apply_flux_objects true
# The assigned replicas and version, in Git: the only place the app is changed.
edit_deployment "$replicas"
push_and_sync "shop: $replicas replicas of $version"
kubectl -n "$LAB_NAMESPACE" rollout status deployment/shop --timeout=120s
