#!/usr/bin/env bash
# Vendor the learner portal's terminal (xterm.js and its fit addon) from the npm registry,
# at pinned versions, into operator/roadlab/portal/static/vendor/ (not committed: see
# .gitignore). `npm pack` checks each tarball against the registry's integrity hash.
# Idempotent: nothing is fetched when the files are there at these versions.
set -euo pipefail
cd "$(dirname "$0")/.."

XTERM_VERSION=6.0.0
FIT_VERSION=0.11.0
vendor=operator/roadlab/portal/static/vendor
stamp="$vendor/VERSIONS"
want="@xterm/xterm@$XTERM_VERSION @xterm/addon-fit@$FIT_VERSION"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] &&
  [[ -f "$vendor/xterm.js" && -f "$vendor/xterm.css" && -f "$vendor/addon-fit.js" ]]; then
  echo "portal assets are there ($want)" >&2
  exit 0
fi
command -v npm >/dev/null || { echo "error: npm is needed to fetch xterm.js" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "fetching $want" >&2
(cd "$work" && npm pack --silent "@xterm/xterm@$XTERM_VERSION" "@xterm/addon-fit@$FIT_VERSION" >/dev/null)
mkdir -p "$work/xterm" "$work/fit"
tar -xzf "$work/xterm-xterm-$XTERM_VERSION.tgz" -C "$work/xterm"
tar -xzf "$work/xterm-addon-fit-$FIT_VERSION.tgz" -C "$work/fit"

# Written whole or not at all: the stamp last, so that an interrupted run fetches again.
mkdir -p "$vendor"
rm -f "$stamp"
# No sourceMappingURL: the maps are not vendored, and a browser would ask for them.
sed '/^\/\/# sourceMappingURL=/d' "$work/xterm/package/lib/xterm.js" >"$vendor/xterm.js"
sed '/^\/\/# sourceMappingURL=/d' "$work/fit/package/lib/addon-fit.js" >"$vendor/addon-fit.js"
cp "$work/xterm/package/css/xterm.css" "$vendor/xterm.css"
cp "$work/xterm/package/LICENSE" "$vendor/LICENSE.xterm"
echo "$want" >"$stamp"
echo "wrote $vendor ($want)" >&2
