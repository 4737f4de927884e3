#!/usr/bin/env bash
# The README's two commands as a new user meets them: a fresh clone of this repository's
# HEAD, empty caches of its own (Roadlab's build cache, Go's module and build caches, pip's
# cache, a new Python venv), then the two commands on the same machine: `make test` first,
# as CI runs it on a clean clone, then `make demo` (COLD_CHECK_ORDER=demo-first for the
# other order). Prints the time of each phase and removes everything it made, logs excepted.
#   scripts/cold-check.sh            (make cold-check)
#   COLD_CHECK_DIR=/big/disk ...     where the clone and the caches go (default /var/tmp)
#   COLD_CHECK_KEEP=1 ...            keep the directory (to look at a failure)
# Only one local cluster can run on a machine: a running one is stopped first.
# What cannot be made cold: the Debian packages cluster/deps.sh installs stay installed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
parent=${COLD_CHECK_DIR:-/var/tmp}
stamp=$(date +%Y%m%d-%H%M%S)
logs=${COLD_CHECK_LOGS:-/tmp/roadlab-cold-check-$stamp}
mkdir -p "$logs"

say() { printf '[cold-check %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# The builds keep ~25 GB (Go caches, buildah's vfs storage, the cluster's containerd).
free_gb=$(df -Pk "$parent" | awk 'NR == 2 {print int($4 / 1048576)}')
((free_gb >= 30)) || { say "error: $parent has ${free_gb} GB free; 30 GB are needed"; exit 1; }
if [[ -n $(git -C "$repo" status --porcelain --untracked-files=no) ]]; then
  say "note: uncommitted changes are not part of the check (it clones HEAD)"
fi

say "stopping any running local cluster (cluster/down.sh)"
"$repo/cluster/down.sh" >"$logs/down-before.log" 2>&1 || true

work=$(mktemp -d "$parent/roadlab-cold.XXXXXX")
cleanup() {
  local rc=$?
  say "cleaning up (cluster/down.sh of the cold clone, then $work)"
  (cd "$work/repo" 2>/dev/null && cluster/down.sh) >"$logs/down-after.log" 2>&1 || true
  if [[ ${COLD_CHECK_KEEP:-} == 1 ]]; then
    say "kept $work"
  else
    # --one-file-system: nothing mounted below may be followed (down.sh unmounted it).
    rm -rf --one-file-system "$work" || say "warning: could not remove all of $work"
  fi
  say "logs: $logs"
  exit "$rc"
}
trap cleanup EXIT

export ROADLAB_CACHE=$work/cache ROADLAB_STATE=$work/state
export GOMODCACHE=$work/go/mod GOCACHE=$work/go/build GOPATH=$work/go/path
export PIP_CACHE_DIR=$work/pip-cache
unset ROADLAB_KUBECONFIG KUBECONFIG

declare -a phases=()
# phase NAME LOG COMMAND...: run COMMAND with its output in LOG (and its tail on failure).
phase() {
  local name=$1 log=$2 start=$SECONDS rc=0; shift 2
  say "$name (log: $log)"
  "$@" >"$log" 2>&1 || rc=$?
  local took=$((SECONDS - start))
  phases+=("$(printf '%-28s %5d s  %s' "$name" "$took" "$( ((rc == 0)) && echo ok || echo "FAILED (exit $rc)")")")
  if ((rc != 0)); then
    tail -n 40 "$log" >&2
    report
    exit "$rc"
  fi
  say "$name: ${took} s"
}
report() {
  printf '\n%-28s %7s  %s\n' phase time result
  printf '%s\n' "${phases[@]}"
}

phase "fresh clone" "$logs/clone.log" git clone --no-local --quiet "$repo" "$work/repo"
# A Python environment of its own, so pip installs every package afresh; `python3` is its.
phase "new Python venv" "$logs/venv.log" python3 -m venv "$work/venv"
export PATH=$work/venv/bin:$PATH VIRTUAL_ENV=$work/venv
cd "$work/repo"
# The README promises either order. CI runs `make test` alone on a clean machine, which a
# demo run before it once hid (the chart lint leaned on CRDs the demo had installed).
if [[ ${COLD_CHECK_ORDER:-test-first} == demo-first ]]; then
  phase "make demo (cold)" "$logs/demo.log" make demo
  phase "make test (after the demo)" "$logs/test.log" make test
else
  phase "make test (cold)" "$logs/test.log" make test
  phase "make demo (after the tests)" "$logs/demo.log" make demo
fi
report
