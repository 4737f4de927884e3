# shellcheck shell=sh
# Shared by apply.sh, train.sh and wrong/apply.sh (sourced): kubectl in the lab namespace,
# the assignment, and waiting for a Job with its log shown.
: "${LAB_NAMESPACE:?set LAB_NAMESPACE to the lab namespace, e.g. lab-mlflow-alice}"
k() { kubectl -n "$LAB_NAMESPACE" "$@"; }
assigned() { k get configmap assignment -o "jsonpath={.data.$1}"; }

# run_job NAME: wait until Job NAME succeeds (exit 0) or fails (exit 1), then show its log.
run_job() {
  job=$1 waited=0
  while :; do
    state=$(k get job "$job" -o 'jsonpath={.status.succeeded}/{.status.failed}')
    case $state in
      [1-9]*/*) k logs "job/$job" || true; return 0 ;;
      */[1-9]*) k logs "job/$job" >&2 || true; echo "Job $job failed" >&2; return 1 ;;
    esac
    if [ "$waited" -ge 300 ]; then
      echo "Job $job did not finish within 300 s" >&2
      return 1
    fi
    sleep 3
    waited=$((waited + 3))
  done
}
