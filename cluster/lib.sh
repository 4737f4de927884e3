# Shared settings and helpers of the local cluster scripts (sourced, not run).
# shellcheck shell=bash
set -euo pipefail

CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$CLUSTER_DIR")
# shellcheck source=versions.env
source "$CLUSTER_DIR/versions.env"

# Built binaries and images are cached outside the repo, keyed by their inputs,
# so only the first bring-up on a machine pays the build.
CACHE_DIR=${ROADLAB_CACHE:-$HOME/.cache/roadlab}
# Runtime state of one cluster: certificates, etcd data, containerd, kubelet, logs.
STATE_DIR=${ROADLAB_STATE:-/var/lib/roadlab-cluster}
RUN_DIR=/run/roadlab-cluster

NODE_NAME=roadlab-node
# The node's address lives on a bridge of its own, so it does not depend on the
# machine's network and pods can reach the API server through the service VIP.
NODE_BRIDGE=roadlab0
NODE_IP=10.200.0.1
POD_BRIDGE=roadlab-cni0
CLUSTER_CIDR=10.244.0.0/16
NODE_POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SVC_IP=10.96.0.1
DNS_SVC_IP=10.96.0.10
API_PORT=6443

CONTAINERD_SOCK=$RUN_DIR/containerd/containerd.sock
KUBECONFIG_PATH=$STATE_DIR/admin.kubeconfig
PAUSE_IMAGE=localhost/roadlab/pause:$PAUSE_VERSION
COREDNS_IMAGE=localhost/roadlab/coredns:$COREDNS_VERSION

log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# with_progress WHAT EXPECTED COMMAND...: run COMMAND, saying what is built, how long it
# usually takes and, every 30 s, how long it has run, so a long build never looks like a hang
# (go prints nothing for minutes while it compiles).
with_progress() {
  local what=$1 expected=$2; shift 2
  local start=$SECONDS next=$((SECONDS + 30)) pid rc=0
  log "building $what (usually $expected on 2 cores)"
  "$@" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= next)); then
      log "  still building $what: $((SECONDS - start)) s so far (usually $expected)"
      next=$((SECONDS + 30))
    fi
    sleep 1
  done
  wait "$pid" || rc=$?
  ((rc == 0)) || die "building $what failed (exit $rc)"
  log "built $what in $((SECONDS - start)) s"
}

# build_tool NAME PACKAGE VERSION EXPECTED [LDFLAGS [KEY]]: `go install` a static binary of a
# pinned Go module into the cache (KEY names what the LDFLAGS stamp, so a new stamp is a new
# build); link it into bin/. cluster/build.sh builds the cluster's tools with it, and
# project-images.sh the lab servers that come from Go modules.
build_tool() {
  local name=$1 package=$2 version=$3 out
  out=$CACHE_DIR/bin/$name-$version${6:+-$6}
  if [[ ! -x $out/$name ]]; then
    CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" GOBIN=$out.tmp with_progress "$name $version" "$4" go install -ldflags "-s -w ${5:-}" "$package@v$version"
    rm -rf "$out" && mv "$out.tmp" "$out"
  fi
  ln -sfn "$out/$name" "$CACHE_DIR/bin/$name"
}

# hash_inputs FILE... : a short digest of files' contents, used as a cache key.
hash_inputs() { cat "$@" | sha256sum | cut -c1-16; }

k8s_bin_dir() { echo "$CACHE_DIR/bin/k8s-$K8S_VERSION-$(hash_inputs "$CLUSTER_DIR"/build/kubernetes/go.*)"; }
etcd_bin_dir() { echo "$CACHE_DIR/bin/etcd-$ETCD_VERSION-$(hash_inputs "$CLUSTER_DIR"/build/etcd/go.* "$CLUSTER_DIR"/build/etcd/main.go)"; }
coredns_bin_dir() { echo "$CACHE_DIR/bin/coredns-$COREDNS_VERSION-$(hash_inputs "$CLUSTER_DIR"/build/coredns/go.* "$CLUSTER_DIR"/build/coredns/main.go)"; }

kubectl_local() { "$(k8s_bin_dir)/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# wait_for DESCRIPTION SECONDS COMMAND...: retry COMMAND once a second.
wait_for() {
  local what=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${seconds}s waiting for $what"
    sleep 1
  done
}

PID_DIR=$STATE_DIR/pids
LOG_DIR=$STATE_DIR/logs

# daemon_running NAME: the process this cluster started as NAME is alive.
daemon_running() {
  local pid
  pid=$(cat "$PID_DIR/$1.pid" 2>/dev/null) || return 1
  [[ -d /proc/$pid ]] && grep -q "roadlab-cluster" "/proc/$pid/environ" 2>/dev/null
}

# start_daemon NAME COMMAND...: start COMMAND in its own session, logging to LOG_DIR.
# A marker in its environment lets stop_daemon recognise exactly what we started.
start_daemon() {
  local name=$1; shift
  daemon_running "$name" && return
  mkdir -p "$PID_DIR" "$LOG_DIR"
  ROADLAB_CLUSTER_MARK=roadlab-cluster setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$PID_DIR/$name.pid"
}

# stop_daemon NAME: SIGTERM, then SIGKILL after 10 s.
stop_daemon() {
  daemon_running "$1" || { rm -f "$PID_DIR/$1.pid"; return 0; }
  local pid i
  pid=$(cat "$PID_DIR/$1.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PID_DIR/$1.pid"
}
