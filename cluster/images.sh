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
# cached docker-archive tar (printed); a cached tar for the same inputs (context files and
# bud arguments, in which CONTEXT's own path, often a temporary one, does not count) is reused.
build_image() {
  local name=$1 context=$2; shift 2
  local digest tar
  digest=$(context_digest "$context")
  if (($#)); then digest=$(printf '%s\n' "$digest" "${@//"$context"/@context}" | sha256sum | cut -c1-16); fi
  tar=$(image_tar "$name" "$digest")
  if [[ ! -s $tar ]]; then
    mkdir -p "$(dirname "$tar")"
    local old_id new_id
    old_id=$(buildah_ inspect --type image --format '{{.FromImageID}}' "$name" 2>/dev/null) || true
    with_progress "image $name" "${IMAGE_BUILD_EXPECTED:-1-5 min}" \
      buildah_ bud --quiet --network host --pull=never -t "$name" "$@" "$context" >&2
    new_id=$(buildah_ inspect --type image --format '{{.FromImageID}}' "$name")
    buildah_ push --quiet "$name" "docker-archive:$tar.tmp:$name" >&2
    mv "$tar.tmp" "$tar"
    # Only the newest tar of an image is kept (an operator image is ~250 MB).
    local stale
    for stale in "${tar%-"$digest".tar}"-*.tar; do
      [[ $stale == "$tar" ]] || rm -f "$stale"
    done
    # vfs keeps full copies: drop the image this build untagged (kept if still in use).
    if [[ -n $old_id && $old_id != "$new_id" ]]; then buildah_ rmi "$old_id" >/dev/null 2>&1 || true; fi
  fi
  echo "$tar"
}

# import_image TAR: load a docker-archive into the local cluster's containerd.
import_image() {
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images import "$1" >/dev/null
}

# --- Debian base image -------------------------------------------------------------------
# No registry is reachable, so `FROM docker.io/library/debian:bookworm-slim` is satisfied by
# an equivalent image built here: debootstrap --variant=minbase (what the official image is
# made from, by debuerreotype), updated from bookworm-updates/-security, then slimmed and
# configured like the official "slim" variant. The cleaned root filesystem is cached as a
# tar under $CACHE_DIR/rootfs, keyed by the recipe, suite, mirror and architecture.

DEBIAN_SUITE=bookworm
DEBIAN_BASE_IMAGE=docker.io/library/debian:$DEBIAN_SUITE-slim

# debian_mirror [security]: the Debian (or debian-security) mirror this machine's apt uses.
debian_mirror() {
  local want=debian url
  [[ ${1:-} == security ]] && want=debian-security
  url=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -v '^[[:space:]]*#' | grep -oE "https?://[^][ ]*/$want/?([[:space:]]|$)" | head -n1 | tr -d '[:space:]') || true
  echo "${url:-http://deb.debian.org/$want}"
}

# build_debian_rootfs DIR MIRROR SECURITY_MIRROR LOG: bootstrap, update and slim a root
# filesystem, logging to LOG. (A subshell, so errexit holds and its output stays in LOG.)
build_debian_rootfs() (
  local root=$1 mirror=${2%/} security=${3%/}
  exec >"$4" 2>&1
  debootstrap --variant=minbase --arch=amd64 --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    "$DEBIAN_SUITE" "$root" "$mirror"

  # What debuerreotype-minimizing-config and the slim variant put in the official image.
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOS
Types: deb
URIs: $mirror
Suites: $DEBIAN_SUITE $DEBIAN_SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $DEBIAN_SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
  printf '#!/bin/sh\n# no services are started in image builds\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  echo 'force-unsafe-io' >"$root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOS'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOS
  echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
  # Slim: later package installs skip docs, man pages and translations too.
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOS'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
EOS

  # Point release and security updates, as in the official image.
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  mount -t proc proc "$root/proc"
  local rc=0
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c 'apt-get update -qq && apt-get -y -qq -o Dpkg::Options::=--force-confdef dist-upgrade && apt-get clean' || rc=$?
  umount "$root/proc"
  ((rc == 0)) || return "$rc"

  # Nothing may stay mounted below the rootfs (debootstrap bind-mounts /dev in containers).
  if awk -v r="$(realpath "$root")/" 'index($2 "/", r) == 1 {found = 1} END {exit !found}' /proc/mounts; then
    die "mounts are left below $root"
  fi
  # Slim what is already installed, then clean like debuerreotype.
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/{groff,info,linda,man}/* "$root/usr/share/lintian/overrides"/*
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  rm -rf --one-file-system "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old "$root"/var/log/apt/* \
    "$root"/var/log/{alternatives,dpkg,bootstrap}.log "$root"/var/cache/ldconfig/aux-cache \
    "$root"/tmp/* "$root"/var/tmp/* "$root"/root/.bash_history "$root"/dev/* "$root/debootstrap"
  mkdir -p "$root/var/lib/apt/lists/partial"
  # Host-specific files debootstrap copied in; container runtimes provide their own.
  rm -f "$root/etc/resolv.conf" "$root/etc/machine-id" "$root/var/lib/dbus/machine-id"
  echo localhost >"$root/etc/hostname"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
)

# ensure_debian_base: $DEBIAN_BASE_IMAGE in buildah's storage (skipped when the image there
# was made from the same recipe; the cleaned rootfs tar is reused across storage resets).
ensure_debian_base() {
  local mirror security key dir tar ctr mnt old_id
  mirror=$(debian_mirror) security=$(debian_mirror security)
  key=$( { declare -f build_debian_rootfs; echo "$DEBIAN_SUITE $mirror $security amd64"; } | sha256sum | cut -c1-16)
  if [[ $(buildah_ inspect --type image --format '{{index .ImageAnnotations "org.roadlab.rootfs-key"}}' \
    "$DEBIAN_BASE_IMAGE" 2>/dev/null) == "$key" ]]; then
    return
  fi
  old_id=$(buildah_ inspect --type image --format '{{.FromImageID}}' "$DEBIAN_BASE_IMAGE" 2>/dev/null) || true
  dir=$CACHE_DIR/rootfs/debian-$DEBIAN_SUITE-slim-$key
  tar=$dir/rootfs.tar
  if [[ ! -s $tar ]]; then
    command -v debootstrap >/dev/null || die "debootstrap is not installed"
    rm -rf --one-file-system "$dir.tmp" && mkdir -p "$dir.tmp"
    log "building a Debian $DEBIAN_SUITE rootfs from $mirror (debootstrap, ~1 min; log: $dir.tmp/build.log)"
    build_debian_rootfs "$dir.tmp/rootfs" "$mirror" "$security" "$dir.tmp/build.log"
    tar -C "$dir.tmp/rootfs" --numeric-owner --xattrs --acls --sort=name -cpf "$dir.tmp/rootfs.tar" .
    rm -rf --one-file-system "$dir.tmp/rootfs"
    local old # only the current recipe's rootfs is kept
    for old in "$CACHE_DIR/rootfs/debian-$DEBIAN_SUITE-slim-"*; do
      [[ $old == *.tmp ]] || rm -rf "$old"
    done
    mv "$dir.tmp" "$dir"
  fi
  log "committing $DEBIAN_BASE_IMAGE to buildah's storage"
  ctr=$(buildah_ from --quiet scratch)
  mnt=$(buildah_ mount "$ctr")
  tar -C "$mnt" --numeric-owner --xattrs --acls -xpf "$tar"
  buildah_ umount "$ctr" >/dev/null
  buildah_ config --os linux --arch amd64 --cmd bash \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --annotation "org.roadlab.rootfs-key=$key" "$ctr"
  buildah_ commit --quiet --rm "$ctr" "$DEBIAN_BASE_IMAGE" >/dev/null
  # The image it replaces, now untagged (kept if something still uses it).
  if [[ -n $old_id ]]; then buildah_ rmi "$old_id" >/dev/null 2>&1 || true; fi
}
