# Shared by the gitops lab's solution and its wrong answer (sourced): the assignment, read
# as a learner reads it; a clone of the lab's repository through `kubectl port-forward`
# (the learner's own way in: the Git server is not reachable from outside the cluster);
# Flux's two objects; and a push followed by a reconcile request.
: "${LAB_NAMESPACE:?set LAB_NAMESPACE to the lab namespace, e.g. lab-gitops-alice}"
assigned() { kubectl -n "$LAB_NAMESPACE" get configmap assignment -o jsonpath="{.data.$1}"; }
# shellcheck disable=SC2034 # used by the scripts that source this file
replicas=$(assigned replicas)
version=$(assigned version)
repository=$(assigned repository)

work=$(mktemp -d)
forward_pid=
cleanup() {
  if [ -n "$forward_pid" ]; then kill "$forward_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# clone_lab_repository: the repository in $work/lab, its remote through a port-forward.
clone_lab_repository() {
  kubectl -n "$LAB_NAMESPACE" port-forward svc/git :80 >"$work/forward.log" 2>&1 &
  forward_pid=$!
  port=
  for _ in $(seq 1 60); do
    port=$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$work/forward.log" | head -n1)
    [ -n "$port" ] && break
    sleep 0.5
  done
  [ -n "$port" ] || { cat "$work/forward.log" >&2; echo "no port-forward to svc/git" >&2; exit 1; }
  git clone -q "http://127.0.0.1:$port/lab.git" "$work/lab"
  git -C "$work/lab" config user.name "Roadlab learner"
  git -C "$work/lab" config user.email "learner@roadlab.dev"
}

# apply_flux_objects PRUNE: the GitRepository lab and the Kustomization shop.
apply_flux_objects() {
  kubectl -n "$LAB_NAMESPACE" apply -f - <<YAML
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: lab
spec:
  # source-controller runs in flux-system: the Service's full name, namespace included.
  url: $repository
  ref:
    branch: main
  interval: 1m
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: shop
spec:
  sourceRef:
    kind: GitRepository
    name: lab
  path: ./apps/shop
  prune: $1
  interval: 1m
  targetNamespace: $LAB_NAMESPACE
  serviceAccountName: flux-applier
YAML
}

# push_and_sync MESSAGE: commit what changed, push, have Flux fetch at once (what `flux
# reconcile source git lab` does) and wait for the Kustomization to apply the new head.
push_and_sync() {
  git -C "$work/lab" commit -q -am "$1"
  git -C "$work/lab" push -q origin main
  head=$(git -C "$work/lab" rev-parse HEAD)
  kubectl -n "$LAB_NAMESPACE" annotate --overwrite gitrepository lab \
    reconcile.fluxcd.io/requestedAt="$(date +%s%N)" >/dev/null
  for _ in $(seq 1 90); do
    applied=$(kubectl -n "$LAB_NAMESPACE" get kustomization shop -o jsonpath='{.status.lastAppliedRevision}')
    case $applied in *"$head") return 0 ;; esac
    sleep 1
  done
  echo "Flux did not apply $head within 90 s (applied: ${applied:-nothing})" >&2
  kubectl -n "$LAB_NAMESPACE" get gitrepository,kustomization -o wide >&2
  exit 1
}

# edit_deployment REPLICAS: apps/shop/deployment.yaml in the clone with the assigned VERSION
# and spec.replicas REPLICAS ("" leaves replicas out of Git), edited as a learner would.
edit_deployment() {
  file=$work/lab/apps/shop/deployment.yaml
  sed -i -e '/^  replicas:/d' -e "/name: VERSION/{n;s/value: .*/value: $version/;}" "$file"
  if [ -n "$1" ]; then sed -i -e "s/^spec:\$/spec:\n  replicas: $1/" "$file"; fi
}
