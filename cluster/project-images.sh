#!/usr/bin/env bash
# Build the project's images from its Dockerfiles and load them into the cluster in use:
# buildah + containerd import for the local cluster, docker build + kind load for kind.
#   project-images.sh [local|kind]   (default: local)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CLUSTER_DIR/images.sh"

TARGET=${1:-local}
WEB_IMAGE=localhost/roadlab/web:0.1.0
OPERATOR_IMAGE=localhost/roadlab/operator:0.1.0
TRITON_IMAGE=localhost/roadlab/triton:0.1.0
MLFLOW_IMAGE=localhost/roadlab/mlflow:0.1.0
MODEL_API_IMAGE=localhost/roadlab/model-api:0.1.0
TOOLBOX_IMAGE=localhost/roadlab/toolbox:0.1.0
PROMETHEUS_IMAGE=localhost/roadlab/prometheus:0.1.0
ALERTMANAGER_IMAGE=localhost/roadlab/alertmanager:0.1.0
KAFKA_IMAGE=localhost/roadlab/kafka:0.1.0
REDIS_IMAGE=localhost/roadlab/redis:0.1.0
STREAM_WORKER_IMAGE=localhost/roadlab/stream-worker:0.1.0
GIT_SERVER_IMAGE=localhost/roadlab/git-server:0.1.0

# go_binary_context SRC_DIR BINARY: a build context with the static binary beside the Dockerfile.
go_binary_context() {
  local ctx
  ctx=$(mktemp -d)
  (cd "$1" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags '-s -w' -o "$ctx/$2" .)
  cp "$1/Dockerfile" "$ctx/"
  echo "$ctx"
}

# operator_context: what operator/Dockerfile uses of the repo root (.dockerignore applied),
# so the build cache is keyed by those files only, not by .git, caches or tests.
operator_context() {
  local ctx
  ctx=$(mktemp -d)
  tar -C "$REPO_DIR" --exclude=__pycache__ --exclude='*.py[cod]' --exclude='*.egg-info' \
    -cf - .dockerignore README.md LICENSE pyproject.toml operator labs crds | tar -C "$ctx" -xf -
  echo "$ctx"
}

# pip_ca_secret: bud args handing pip this machine's CA bundle when it has its own (a
# TLS-intercepting proxy); the Dockerfile uses it as a build secret, never stored in a layer.
pip_ca_secret() {
  local ca=${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || true)}
  if [[ -n $ca && -s $ca ]]; then echo "--secret=id=pip-ca,src=$ca"; fi
}

load() { # load NAME CONTEXT [DOCKERFILE (relative to CONTEXT) [BUILD ARGS...]]
  local name=$1 context=$2; shift 2
  local args=()
  if (($#)); then args=(-f "$context/$1" "${@:2}"); fi
  case $TARGET in
    local)
      local tar
      tar=$(build_image "$name" "$context" "${args[@]}")
      if [[ -S $CONTAINERD_SOCK ]]; then import_image "$tar"; fi ;;
    kind)
      docker build -t "$name" "${args[@]}" "$context" &&
        kind load docker-image "$name" --name roadlab ;;
    *) die "unknown target $TARGET" ;;
  esac
}

# toolbox_context: images/toolbox with the kubectl and helm this machine built (cluster/
# build.sh) or has on PATH (kind), since no binary may be downloaded.
toolbox_context() {
  local ctx tool
  ctx=$(dir_context "$REPO_DIR/images/toolbox")
  for tool in kubectl helm; do
    local path=$CACHE_DIR/bin/$tool
    [[ -x $path ]] || path=$(command -v "$tool") || die "the toolbox image needs $tool: run cluster/build.sh"
    cp -L "$path" "$ctx/$tool"
  done
  echo "$ctx"
}

# observability_contexts: build contexts for the observability lab's Prometheus and
# Alertmanager, their binaries built from the pinned Go modules (cached like the cluster's
# tools), printed as two lines: the Prometheus context, then the Alertmanager one.
observability_contexts() {
  local stamp=github.com/prometheus/common/version.Version prometheus alertmanager
  build_tool prometheus github.com/prometheus/prometheus/cmd/prometheus "$PROMETHEUS_MODULE_VERSION" \
    "8-9 min" "-X $stamp=$PROMETHEUS_VERSION" stamped >&2
  build_tool promtool github.com/prometheus/prometheus/cmd/promtool "$PROMETHEUS_MODULE_VERSION" \
    "10 s (after prometheus)" "-X $stamp=$PROMETHEUS_VERSION" stamped >&2
  build_tool alertmanager github.com/prometheus/alertmanager/cmd/alertmanager "$ALERTMANAGER_VERSION" \
    "1 min (after prometheus)" "-X $stamp=$ALERTMANAGER_VERSION" stamped >&2
  prometheus=$(dir_context "$REPO_DIR/images/prometheus")
  cp -L "$CACHE_DIR/bin/prometheus" "$CACHE_DIR/bin/promtool" "$prometheus/"
  alertmanager=$(dir_context "$REPO_DIR/images/alertmanager")
  cp -L "$CACHE_DIR/bin/alertmanager" "$alertmanager/"
  printf '%s\n' "$prometheus" "$alertmanager"
}

# streaming_contexts: build contexts for the streaming lab's Kafka, Redis and worker, printed
# as three lines in that order. Kafka's has the jars of images/kafka/pom.xml beside its
# Dockerfile (libs/), fetched from Maven Central once per Kafka version and pom (cached like
# the Go binaries, with Maven's own repository under the cache too: a warm build runs no mvn).
streaming_contexts() {
  local libs kafka
  libs=$CACHE_DIR/kafka/libs-$KAFKA_VERSION-$(hash_inputs "$REPO_DIR/images/kafka/pom.xml")
  if [[ ! -d $libs ]]; then
    command -v mvn >/dev/null || die "the kafka image needs Maven (mvn) to fetch Kafka's jars"
    rm -rf "$libs.tmp" && mkdir -p "$libs.tmp"
    cp "$REPO_DIR/images/kafka/pom.xml" "$libs.tmp/"
    with_progress "Kafka $KAFKA_VERSION's jars (Maven Central)" "40 s" \
      mvn -q -B -Dstyle.color=never -f "$libs.tmp/pom.xml" -Dmaven.repo.local="$CACHE_DIR/maven" \
      -Dkafka.version="$KAFKA_VERSION" dependency:copy-dependencies >&2
    local old # only the current version's jars are kept
    for old in "$CACHE_DIR/kafka/libs-"*; do
      [[ $old == *.tmp ]] || rm -rf "$old"
    done
    mv "$libs.tmp/target/libs" "$libs"
    rm -rf "$libs.tmp"
  fi
  kafka=$(dir_context "$REPO_DIR/images/kafka")
  cp -r "$libs" "$kafka/libs"
  printf '%s\n' "$kafka" "$(dir_context "$REPO_DIR/images/redis")" "$(dir_context "$REPO_DIR/images/stream-worker")"
}

# vendor_portal_assets: the portal's pinned xterm.js from npm, into the operator's sources
# (not committed), so the image serves the terminal.
vendor_portal_assets() { "$REPO_DIR/scripts/vendor-portal-assets.sh" >&2; }

# dir_context DIR: a copy of an image directory (build contexts must not be the repo itself).
dir_context() {
  local ctx
  ctx=$(mktemp -d)
  cp -r "$1/." "$ctx/"
  echo "$ctx"
}

main() {
  local ctx args=()
  ctx=$(go_binary_context "$REPO_DIR/images/web" web)
  load "$WEB_IMAGE" "$ctx"
  rm -rf "$ctx"

  mapfile -t args < <(pip_ca_secret)
  if [[ $TARGET == local ]]; then
    ensure_debian_base
    # The base is part of the build's inputs: its id, recorded as a label, keys the cache.
    args+=(--label "org.opencontainers.image.base.name=$DEBIAN_BASE_IMAGE"
      --label "org.opencontainers.image.base.digest=$(buildah_ inspect --type image --format '{{.FromImageDigest}}' "$DEBIAN_BASE_IMAGE")")
    vendor_portal_assets  # the portal's xterm.js, into the image
    ctx=$(operator_context)
    load "$OPERATOR_IMAGE" "$ctx" operator/Dockerfile "${args[@]}"
    rm -rf "$ctx"
  else
    # Docker pulls the real debian:bookworm-slim and reads the repo root's .dockerignore.
    vendor_portal_assets
    load "$OPERATOR_IMAGE" "$REPO_DIR" operator/Dockerfile "${args[@]}"
  fi
  # The lab images: Triton (from the nvidia-pytriton wheel) and MLflow, on the same base.
  local image dir
  for image in "$TRITON_IMAGE" "$MLFLOW_IMAGE"; do
    dir=$REPO_DIR/images/$(basename "${image%%:*}")
    ctx=$(dir_context "$dir")
    load "$image" "$ctx" Dockerfile "${args[@]}"
    rm -rf "$ctx"
  done
  # The model-api lab's FastAPI + onnxruntime service (its model is made at build time).
  ctx=$(dir_context "$REPO_DIR/images/model-api")
  IMAGE_BUILD_EXPECTED="1-3 min" load "$MODEL_API_IMAGE" "$ctx" Dockerfile "${args[@]}"
  rm -rf "$ctx"
  ctx=$(toolbox_context)
  IMAGE_BUILD_EXPECTED="1-3 min" load "$TOOLBOX_IMAGE" "$ctx" Dockerfile "${args[@]}"
  rm -rf "$ctx"
  # The GitOps lab's Git server: Debian's git behind a Go binary built here (like web's).
  ctx=$(go_binary_context "$REPO_DIR/images/git-server" git-server)
  IMAGE_BUILD_EXPECTED="30 s" load "$GIT_SERVER_IMAGE" "$ctx" Dockerfile "${args[@]}"
  rm -rf "$ctx"
  # The observability lab's servers: FROM scratch around their binaries (no base, no args).
  local contexts
  mapfile -t contexts < <(observability_contexts)
  ((${#contexts[@]} == 2)) || die "building the observability lab's servers failed"
  IMAGE_BUILD_EXPECTED="5 s" load "$PROMETHEUS_IMAGE" "${contexts[0]}"
  IMAGE_BUILD_EXPECTED="5 s" load "$ALERTMANAGER_IMAGE" "${contexts[1]}"
  rm -rf "${contexts[@]}"
  # The streaming lab's Kafka (jars from Maven Central), Redis and the learner's worker.
  mapfile -t contexts < <(streaming_contexts)
  ((${#contexts[@]} == 3)) || die "preparing the streaming lab's images failed"
  IMAGE_BUILD_EXPECTED="1 min" load "$KAFKA_IMAGE" "${contexts[0]}" Dockerfile "${args[@]}"
  IMAGE_BUILD_EXPECTED="10 s" load "$REDIS_IMAGE" "${contexts[1]}" Dockerfile "${args[@]}"
  IMAGE_BUILD_EXPECTED="30-60 s" load "$STREAM_WORKER_IMAGE" "${contexts[2]}" Dockerfile "${args[@]}"
  rm -rf "${contexts[@]}"
  log "project images built and loaded ($TARGET)"
}

main "$@"
