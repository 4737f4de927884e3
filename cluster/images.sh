# Image helpers (sourced after lib.sh): build Dockerfiles with buildah, no Docker engine.
# shellcheck shell=bash

BUILDAH_ROOT=$CACHE_DIR/buildah/root
BUILDAH_RUNROOT=$RUN_DIR/buildah

buildah_() {
  # vfs: no overlay mounts are left behind, and images stay small enough for it.
  buildah --root "$BUILDAH_ROOT" --runroot "$BUILDAH_RUNROOT" --storage-driver vfs "$@"
}

# context_digest DIR: digest of every file's path and content under DIR.
context_digest() {
  (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
}

# image_tar NAME DIGEST: where the docker-archive of NAME built from DIGEST is cached.
image_tar() { echo "$CACHE_DIR/images/$(echo "$1" | tr '/:' '__')-$2.tar"; }

# build_image NAME CONTEXT [BUILDAH BUD ARGS...]: build CONTEXT/Dockerfile as NAME into a
# cached docker-archive tar (printed); a cached tar for the same inputs is reused.
build_image() {
  local name=$1 context=$2; shift 2
  local digest tar
  digest=$(context_digest "$context")
  tar=$(image_tar "$name" "$digest")
  if [[ ! -s $tar ]]; then
    log "building image $name"
    mkdir -p "$(dirname "$tar")"
    buildah_ bud --quiet --network host --pull=never -t "$name" "$@" "$context" >&2
    buildah_ push --quiet "$name" "docker-archive:$tar.tmp:$name" >&2
    mv "$tar.tmp" "$tar"
  fi
  echo "$tar"
}

# import_image TAR: load a docker-archive into the local cluster's containerd.
import_image() {
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images import "$1" >/dev/null
}
