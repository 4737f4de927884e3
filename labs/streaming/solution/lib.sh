# Shared by the streaming lab's solution and its wrong answer (sourced, with solution_dir
# set to this directory): the assignment, read as a learner reads it, Kafka's tools in the
# lab's broker pod, and how the consumers are started.
: "${LAB_NAMESPACE:?set LAB_NAMESPACE to the lab namespace, e.g. lab-streaming-alice}"
: "${solution_dir:?set solution_dir to labs/streaming/solution before sourcing lib.sh}"
assigned() { kubectl -n "$LAB_NAMESPACE" get configmap assignment -o jsonpath="{.data.$1}"; }
partitions=$(assigned partitions)
retention_ms=$(assigned retentionMs)

# kafka TOOL ARGS...: one of Kafka's tools in the broker pod, against the broker itself.
kafka() {
  tool=$1
  shift
  kubectl -n "$LAB_NAMESPACE" exec -i deploy/kafka -- "$tool" --bootstrap-server localhost:9092 "$@"
}

# run_counter DEPLOYMENT_YAML REPLICAS: the ConfigMap counter (the reference counter.py),
# the consumers' Deployment, scaled and rolled out.
run_counter() {
  kubectl -n "$LAB_NAMESPACE" create configmap counter --from-file=counter.py="$solution_dir/counter.py" \
    --dry-run=client -o yaml | kubectl -n "$LAB_NAMESPACE" apply -f -
  kubectl -n "$LAB_NAMESPACE" apply -f "$1"
  kubectl -n "$LAB_NAMESPACE" scale deployment/counter --replicas="$2"
  kubectl -n "$LAB_NAMESPACE" rollout restart deployment/counter
  kubectl -n "$LAB_NAMESPACE" rollout status deployment/counter --timeout=180s
}
