#!/usr/bin/env bash
# Pin the operator image's Python packages: resolve the package's dependencies as PyPI serves
# them today (pip's resolver, in an empty venv) and write every version to
# operator/constraints.txt, which operator/Dockerfile installs under. Run after changing
# the dependencies in pyproject.toml (make lock), then rebuild the images and run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check --dry-run --ignore-installed \
  --report "$venv/report.json" .
{
  echo "# The operator image's Python packages, as resolved by scripts/lock.sh (make lock)"
  echo "# from pyproject.toml's dependencies on $(date -u +%Y-%m-%d). Do not edit by hand."
  python3 -c 'import json, sys
report = json.load(open(sys.argv[1]))
for item in sorted(report["install"], key=lambda i: i["metadata"]["name"].lower()):
    meta = item["metadata"]
    if meta["name"] != "roadlab":
        print(meta["name"] + "==" + meta["version"])' "$venv/report.json"
} >"$venv/constraints.txt"
# Written whole or not at all: a failed resolution leaves the old pins in place.
mv "$venv/constraints.txt" operator/constraints.txt
echo "wrote operator/constraints.txt" >&2
