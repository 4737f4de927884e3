#!/usr/bin/env bash
# Build the local cluster's binaries and images from pinned upstream sources.
# Everything lands in the cache ($ROADLAB_CACHE, default ~/.cache/roadlab), keyed by
# the inputs, so a second run does nothing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CLUSTER_DIR/images.sh"
source "$CLUSTER_DIR/metrics-server.sh"
source "$CLUSTER_DIR/flux.sh"
source "$CLUSTER_DIR/istio.sh"

export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"

build_kubernetes() {
  local out tmp v=$K8S_VERSION minor
  out=$(k8s_bin_dir)
  [[ -x $out/kubectl ]] && return
  minor=$(cut -d. -f2 <<<"$v")
  # What `make` in kubernetes stamps in; skew checks and `kubectl version` read it.
  local pkg ld=-s\ -w
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=v$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  tmp=$out.tmp
  rm -rf "$tmp" && mkdir -p "$tmp"
  with_progress "Kubernetes v$v" "8-10 min" go -C "$CLUSTER_DIR/build/kubernetes" build -ldflags "$ld" -o "$tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl
  mv "$tmp" "$out"
}

build_go_module() { # build_go_module DIR OUT NAME EXPECTED
  [[ -x $2/$3 ]] && return
  rm -rf "$2.tmp" && mkdir -p "$2.tmp"
  with_progress "$3" "$4" go -C "$1" build -ldflags "-s -w" -o "$2.tmp/$3" .
  rm -rf "$2" && mv "$2.tmp" "$2"
}

# build_metrics_server: cmd/metrics-server of the module pinned by build/metrics-server (a
# `tool` line keeps it in go.mod), stamped like upstream's Makefile does; the build date is
# the tag's commit time, so the binary depends only on the inputs. The proxy's .info file
# need not carry `Origin` (today's for v0.9.0 holds only Version and Time): the commit is
# then left unstamped rather than failing the build.
build_metrics_server() {
  local out info commit date pkg=k8s.io/client-go/pkg/version
  out=$(metrics_server_bin_dir)
  [[ -x $out/metrics-server ]] && return
  info=$(go -C "$CLUSTER_DIR/build/metrics-server" mod download -json "sigs.k8s.io/metrics-server@v$METRICS_SERVER_VERSION")
  read -r commit date < <(python3 -c 'import json,sys
info = json.load(open(json.load(sys.stdin)["Info"]))
print((info.get("Origin") or {}).get("Hash") or "-", info.get("Time") or "-")' <<<"$info")
  local ld="-s -w -X $pkg.gitVersion=v$METRICS_SERVER_VERSION -X $pkg.gitTreeState=clean"
  if [[ $commit != - ]]; then ld+=" -X $pkg.gitCommit=$commit"; fi
  if [[ $date != - ]]; then ld+=" -X $pkg.buildDate=$date"; fi
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  with_progress "metrics-server v$METRICS_SERVER_VERSION" "3-4 min" go -C "$CLUSTER_DIR/build/metrics-server" \
    build -ldflags "$ld" -o "$out.tmp/metrics-server" sigs.k8s.io/metrics-server/cmd/metrics-server
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_pause() {
  local out=$CACHE_DIR/bin/pause-$PAUSE_VERSION src
  [[ -x $out/pause ]] && return
  # Upstream's pause.c ships in the k8s.io/kubernetes module.
  src=$(cd "$CLUSTER_DIR/build/kubernetes" && go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  log "building pause from $src/build/pause/linux/pause.c"
  mkdir -p "$out.tmp"
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-roadlab" \
    -o "$out.tmp/pause" "$src/build/pause/linux/pause.c"
  strip "$out.tmp/pause"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

# helm_k8s_version: the Kubernetes version Helm assumes without a cluster (`helm template`,
# `helm lint`): upstream's Makefile stamps the minor of the client-go it builds with; a plain
# `go install` leaves 1.20, which a chart's kubeVersion (>=1.30) refuses.
helm_k8s_version() {
  local gomod
  gomod=$(go mod download -json "helm.sh/helm/v3@v$HELM_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  awk '$1 == "k8s.io/client-go" {split($2, v, "."); print v[1] + 1 + 0 "." v[2]; exit}' "$gomod" | tr -d v
}
helm_ldflags() {
  local major minor pkg flags=""
  IFS=. read -r major minor <<<"$(helm_k8s_version)"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    flags+=" -X $pkg.k8sVersionMajor=$major -X $pkg.k8sVersionMinor=$minor"
  done
  echo "$flags"
}

# binary_image NAME DOCKERFILE_DIR BINARY: build a FROM-scratch image around one binary.
binary_image() {
  local ctx
  ctx=$(mktemp -d)
  cp "$2/Dockerfile" "$ctx/" && cp "$3" "$ctx/"
  build_image "$1" "$ctx" >/dev/null
  rm -rf "$ctx"
}

main() {
  command -v go >/dev/null || die "go is not installed"
  build_kubernetes
  # kubectl on a stable path for the README, the tests and the lab solutions.
  ln -sfn "$(k8s_bin_dir)/kubectl" "$CACHE_DIR/bin/kubectl"
  build_go_module "$CLUSTER_DIR/build/etcd" "$(etcd_bin_dir)" etcd "1 min"
  build_go_module "$CLUSTER_DIR/build/coredns" "$(coredns_bin_dir)" coredns "2-3 min"
  build_metrics_server
  build_flux source-controller "4-6 min"
  build_flux kustomize-controller "3-5 min"
  build_pause
  build_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "2 min" "$(helm_ldflags)" "k8s$(helm_k8s_version)"
  build_tool kube-router github.com/cloudnativelabs/kube-router/v2/cmd/kube-router "$KUBE_ROUTER_VERSION" \
    "1-2 min" "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=v$KUBE_ROUTER_VERSION" stamped
  build_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION" "30 s"
  binary_image "$PAUSE_IMAGE" "$CLUSTER_DIR/images/pause" "$CACHE_DIR/bin/pause-$PAUSE_VERSION/pause"
  binary_image "$COREDNS_IMAGE" "$CLUSTER_DIR/images/coredns" "$(coredns_bin_dir)/coredns"
  binary_image "$METRICS_SERVER_IMAGE" "$CLUSTER_DIR/images/metrics-server" \
    "$(metrics_server_bin_dir)/metrics-server"
  binary_image "$FLUX_SOURCE_CONTROLLER_IMAGE" "$CLUSTER_DIR/images/flux-source-controller" \
    "$(flux_bin_dir source-controller)/source-controller"
  binary_image "$FLUX_KUSTOMIZE_CONTROLLER_IMAGE" "$CLUSTER_DIR/images/flux-kustomize-controller" \
    "$(flux_bin_dir kustomize-controller)/kustomize-controller"
  build_istio_images >/dev/null
  log "binaries and images are built and cached under $CACHE_DIR"
}

main "$@"
