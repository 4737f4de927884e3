#!/usr/bin/env bash
# Build the project's images from its Dockerfiles and load them into the cluster in use:
# buildah + containerd import for the local cluster, docker build + kind load for kind.
#   project-images.sh [local|kind]   (default: local)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CLUSTER_DIR/images.sh"

TARGET=${1:-local}
WEB_IMAGE=localhost/roadlab/web:0.1.0

# go_binary_context SRC_DIR BINARY: a build context with the static binary beside the Dockerfile.
go_binary_context() {
  local ctx
  ctx=$(mktemp -d)
  (cd "$1" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags '-s -w' -o "$ctx/$2" .)
  cp "$1/Dockerfile" "$ctx/"
  echo "$ctx"
}

load() { # load NAME CONTEXT
  case $TARGET in
    local)
      local tar
      tar=$(build_image "$1" "$2")
      if [[ -S $CONTAINERD_SOCK ]]; then import_image "$tar"; fi ;;
    kind)
      docker build -t "$1" "$2" && kind load docker-image "$1" --name roadlab ;;
    *) die "unknown target $TARGET" ;;
  esac
}

main() {
  local ctx
  ctx=$(go_binary_context "$REPO_DIR/images/web" web)
  load "$WEB_IMAGE" "$ctx"
  rm -rf "$ctx"
  log "project images built and loaded ($TARGET)"
}

main "$@"
