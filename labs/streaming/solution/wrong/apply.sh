#!/bin/sh
# Applies a wrong answer to the streaming lab (for the e2e test and for trying the checks).
# Usage: LAB_NAMESPACE=lab-<name> solution/wrong/apply.sh
# Two near misses, each one a learner makes (labs/streaming/solution/wrong/README.md): a
# test order sent before the topic is made, so the broker creates it with its defaults (1
# partition, 7 days), and consumers that each take their pod's name as group.id.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
solution_dir=$(dirname "$here")
. "$solution_dir/lib.sh"

printf '%s\n' 'p-test:{"order": "o-test", "product": "p-test", "quantity": 1}' |
  kafka kafka-console-producer --topic orders --property parse.key=true --property key.separator=:
kafka kafka-topics --describe --topic orders

run_counter "$here/counter.yaml" "$partitions"
