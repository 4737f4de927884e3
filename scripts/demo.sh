#!/usr/bin/env bash
# The main job, from a fresh machine: a cluster (kind where Docker answers, else the local
# one), the images, the operator installed with Helm, a sample Lab started, solved by its
# reference solution with the learner's own permissions, and shown Completed.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s (%ss)\n' "$*" "$SECONDS" >&2; }

step "cluster"
cluster/deps.sh
python3 -m pip install -q --disable-pip-version-check -e .
KUBECONFIG=$(cluster/ensure.sh)
export KUBECONFIG PATH="${ROADLAB_CACHE:-$HOME/.cache/roadlab}/bin:$PATH"
kubectl get nodes

step "operator (helm install)"
# --take-ownership: `make test` (the e2e suite) leaves the chart's RBAC and the CRD applied
# without Helm's labels; the release adopts them rather than refusing to install.
helm upgrade --install roadlab charts/roadlab --namespace roadlab-system --create-namespace \
  --take-ownership --wait --timeout 5m
kubectl -n roadlab-system get pods

LAB=${LAB:-demo-smoke}
step "start lab $LAB"
kubectl delete lab "$LAB" --ignore-not-found --wait
kubectl lab start smoke --name "$LAB" --learner demo --wait
kubectl lab status "$LAB"

step "solve it as the learner (reference solution, learner's kubeconfig)"
learner_kubeconfig=$(mktemp)
kubectl lab kubeconfig "$LAB" >"$learner_kubeconfig"
KUBECONFIG=$learner_kubeconfig LAB_NAMESPACE="lab-$LAB" labs/smoke/solution/apply.sh
rm -f "$learner_kubeconfig"

step "check"
kubectl lab check "$LAB" --wait
kubectl wait --for=condition=Completed "lab/$LAB" --timeout=5m
kubectl get lab "$LAB"
kubectl lab status "$LAB"
step "done: lab $LAB is Completed"
