#!/bin/sh
# Applies a wrong answer to the mlflow lab (for the e2e test and for trying the checks):
# the right training (the solution's train.sh), then champion on the newest version.
# Usage: LAB_NAMESPACE=lab-<name> solution/wrong/apply.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib.sh
. "$here/../lib.sh"

"$here/../train.sh"
k delete job promote-latest --ignore-not-found --wait=true
k apply -f "$here/promote-latest-job.yaml"
run_job promote-latest
