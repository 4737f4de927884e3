# Flux's source-controller and kustomize-controller on the local cluster (sourced after
# lib.sh by build.sh and up.sh, and by kind.sh): where their binaries are cached, their
# images, their CRDs, and how they are installed. A GitOps add-on like metrics-server: a
# GitRepository is fetched by source-controller, a Kustomization applied by
# kustomize-controller, always as a ServiceAccount of the Kustomization's own namespace
# (Flux's multi-tenancy lockdown; manifests/flux.yaml says which flags and rules do that).
# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are used by the scripts that source this file

FLUX_CONTROLLERS=(source-controller kustomize-controller)
FLUX_SOURCE_CONTROLLER_IMAGE=localhost/roadlab/flux-source-controller:$FLUX_SOURCE_CONTROLLER_VERSION
FLUX_KUSTOMIZE_CONTROLLER_IMAGE=localhost/roadlab/flux-kustomize-controller:$FLUX_KUSTOMIZE_CONTROLLER_VERSION
# What kind clusters run instead (they can pull): upstream's release images.
FLUX_SOURCE_CONTROLLER_UPSTREAM_IMAGE=ghcr.io/fluxcd/source-controller:v$FLUX_SOURCE_CONTROLLER_VERSION
FLUX_KUSTOMIZE_CONTROLLER_UPSTREAM_IMAGE=ghcr.io/fluxcd/kustomize-controller:v$FLUX_KUSTOMIZE_CONTROLLER_VERSION

# flux_version NAME: the pinned version of controller NAME (source-controller, ...).
flux_version() {
  case $1 in
    source-controller) echo "$FLUX_SOURCE_CONTROLLER_VERSION" ;;
    kustomize-controller) echo "$FLUX_KUSTOMIZE_CONTROLLER_VERSION" ;;
    *) die "unknown Flux controller $1" ;;
  esac
}

# flux_bin_dir NAME: where the binary of controller NAME is cached, keyed by its version and
# its build module (cluster/build/flux-NAME).
flux_bin_dir() {
  echo "$CACHE_DIR/bin/flux-$1-$(flux_version "$1")-$(hash_inputs "$CLUSTER_DIR/build/flux-$1"/go.*)"
}

# build_flux NAME EXPECTED: the static binary of github.com/fluxcd/NAME, from the module pinned
# by cluster/build/flux-NAME (a `tool` line keeps it in go.mod), built like upstream's
# Dockerfile does (CGO_ENABLED=0, -trimpath; upstream stamps no version) and stripped.
build_flux() {
  local name=$1 out
  out=$(flux_bin_dir "$name")
  [[ -x $out/$name ]] && return
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" with_progress "Flux $name v$(flux_version "$name")" "$2" \
    go -C "$CLUSTER_DIR/build/flux-$name" build -ldflags "-s -w" -o "$out.tmp/$name" "github.com/fluxcd/$name"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

# flux_crds_file: the controllers' CRDs as upstream generates them (config/crd/bases of each
# pinned module: six of source-controller, one of kustomize-controller), cached as one file.
flux_crds_file() {
  local file name dir
  file=$CACHE_DIR/flux/crds-sc$FLUX_SOURCE_CONTROLLER_VERSION-kc$FLUX_KUSTOMIZE_CONTROLLER_VERSION.yaml
  if [[ ! -s $file ]]; then
    mkdir -p "$(dirname "$file")"
    : >"$file.tmp"
    for name in "${FLUX_CONTROLLERS[@]}"; do
      dir=$(go -C "$CLUSTER_DIR/build/flux-$name" mod download -json "github.com/fluxcd/$name@v$(flux_version "$name")" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') ||
        die "cannot download the Go module github.com/fluxcd/$name@v$(flux_version "$name")"
      local crd
      for crd in "$dir"/config/crd/bases/*.yaml; do
        [[ -e $crd ]] || die "no CRDs under $dir/config/crd/bases"
        { echo "---"; cat "$crd"; } >>"$file.tmp"
      done
    done
    mv "$file.tmp" "$file"
  fi
  echo "$file"
}

# render_flux SOURCE_IMAGE KUSTOMIZE_IMAGE PULL_POLICY: the manifest, ready to apply.
render_flux() {
  sed -e "/^#/!s|@SOURCE_CONTROLLER_IMAGE@|$1|g" -e "/^#/!s|@KUSTOMIZE_CONTROLLER_IMAGE@|$2|g" \
    -e "/^#/!s|@IMAGE_PULL_POLICY@|$3|g" "$CLUSTER_DIR/manifests/flux.yaml"
}

# flux_ready KUBECTL...: both controllers' Deployments are Available.
flux_ready() {
  local name
  for name in "${FLUX_CONTROLLERS[@]}"; do
    [[ $("$@" -n flux-system get deployment "$name" \
      -o jsonpath='{.status.conditions[?(@.type=="Available")].status}') == True ]] || return 1
  done
}

# install_flux SOURCE_IMAGE KUSTOMIZE_IMAGE PULL_POLICY KUBECTL...: apply the CRDs (server-side:
# they exceed the client-side last-applied annotation's size) and the manifest, and wait
# (bounded) until both controllers are available.
install_flux() {
  local source_image=$1 kustomize_image=$2 policy=$3 crds; shift 3
  crds=$(flux_crds_file)
  "$@" apply --server-side --force-conflicts --field-manager=roadlab-cluster -f "$crds" >/dev/null
  "$@" wait --for=condition=Established --timeout=60s \
    crd/gitrepositories.source.toolkit.fluxcd.io crd/ocirepositories.source.toolkit.fluxcd.io \
    crd/buckets.source.toolkit.fluxcd.io crd/helmrepositories.source.toolkit.fluxcd.io \
    crd/helmcharts.source.toolkit.fluxcd.io crd/externalartifacts.source.toolkit.fluxcd.io \
    crd/kustomizations.kustomize.toolkit.fluxcd.io >/dev/null
  render_flux "$source_image" "$kustomize_image" "$policy" | "$@" apply -f - >/dev/null
  local name
  for name in "${FLUX_CONTROLLERS[@]}"; do
    "$@" -n flux-system rollout status "deployment/$name" --timeout=180s >/dev/null
  done
  wait_for "Flux (source-controller, kustomize-controller)" 60 flux_ready "$@"
}
