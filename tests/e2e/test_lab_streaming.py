"""The streaming catalog lab on a real cluster: the real Kafka 4.1 (its jars from Maven
Central) and Redis 7 (Debian's), the learner's consumers on the stream-worker image,
set up with the learner's own permissions (kubectl exec into the broker for Kafka's tools,
a ConfigMap and a Deployment), judged by the checker through Kafka's admin API, orders it
produces itself and what Redis holds.

The wrong answer (labs/streaming/solution/wrong/README.md) must give, with the default
parameters (3 partitions, 24 hours):
  topic           Failed  'topic orders has 1 partition, expected 3 ...'; retention.ms is
                          604800000 (the broker's default), expected 86400000
  consumer-group  Failed  no consumer has joined group order-counter
  counts          Failed  no offset committed by order-counter, and every count 3 times
                          what the check produced (three groups of one)
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import kubectl
from .lab_phases import Phases, check_now, check_solution, finished_run
from .operator_fixtures import Labs
from .test_lab_mlflow import image_on_node
from .test_operator import unique, wait_ready
from .test_validation import run_as_learner, tasks
from .waiting import wait_until

IMAGES = (
    "localhost/roadlab/kafka:0.1.0",
    "localhost/roadlab/redis:0.1.0",
    "localhost/roadlab/stream-worker:0.1.0",
)
TASK_IDS = ["topic", "consumer-group", "counts"]
PARTITIONS = 3  # the lab's defaults
RETENTION_MS = 24 * 3600 * 1000
MESSAGES = 300  # what the counts check produces (labs/streaming/lab.yaml)
# The lab's checkTimeoutSeconds and a margin for the check's pod to start and report,
# twice: a requested check waits for the operator's re-check after the learner's changes,
# which a wrong answer makes wait out its windows too.
CHECK_SECONDS = 2 * (180 + 30)


def show(labs: Labs, name: str, what: str) -> None:
    for task, result in tasks(labs, name).items():
        print(f"[streaming lab] {what}, {task} ({result['state']}): {result['message']}")
        print(f"[streaming lab] {what}, {task} evidence: {result.get('evidence')}")


def assert_initial_state(labs: Labs, name: str, namespace: str) -> None:
    """Right after provisioning the broker has no topic and no group."""
    before = tasks(labs, name)
    assert sorted(before) == sorted(TASK_IDS)
    for task in TASK_IDS:
        assert before[task]["state"] == "Failed", before[task]
        assert before[task]["hint"]
        # Said at once: waiting does not make a topic.
        assert before[task]["message"].startswith("topic orders does not exist ("), before[task]
        assert "waited" not in before[task]["message"]
    assert before["topic"]["message"].endswith(
        "create it with `kafka-topics --bootstrap-server kafka:9092 --create --topic orders "
        f"--partitions {PARTITIONS} --config retention.ms={RETENTION_MS}`"
    )
    assert before["counts"]["message"].endswith("(the check produced nothing)")
    assert labs.get(name)["status"]["progress"] == "0/3"
    assigned = kubectl(
        "-n", namespace, "get", "configmap", "assignment", "-o", "jsonpath={.data.retentionMs}"
    )  # fmt: skip
    assert assigned.stdout == str(RETENTION_MS)
    # The broker answers the learner's tools in its pod, and no topic was made for them.
    topics = kubectl(
        "-n", namespace, "exec", "deploy/kafka", "--",
        "kafka-topics", "--bootstrap-server", "localhost:9092", "--list",
    )  # fmt: skip
    assert "orders" not in topics.stdout.split()


def assert_wrong_answer_rejected(labs: Labs, name: str) -> None:
    wrong = tasks(labs, name)
    for task in TASK_IDS:
        assert wrong[task]["state"] == "Failed", wrong[task]
    topic = wrong["topic"]
    assert topic["message"].startswith("topic orders has 1 partition, expected 3"), topic
    assert "retention.ms is 604800000" in topic["message"], topic
    group = wrong["consumer-group"]
    assert "order-counter" in group["message"], group
    counts: dict[str, Any] = wrong["counts"]
    assert "order-counter" in counts["message"], counts
    # Three groups of one: each consumer read every order the check produced.
    assert "every count is 3 times what was produced" in counts["message"], counts
    assert counts["evidence"]["behind"] == MESSAGES, counts  # none committed by order-counter
    assert counts["evidence"]["wrongProducts"] == 6, counts
    assert labs.get(name)["status"]["progress"] == "0/3"


def assert_solution_passes(status: dict[str, Any], labs: Labs, name: str) -> None:
    assert status["progress"] == "3/3"
    done = tasks(labs, name)
    topic = done["topic"]["evidence"]
    assert topic["partitions"] == PARTITIONS, topic
    group = done["consumer-group"]["evidence"]
    assert group["members"] == PARTITIONS, group
    counts = done["counts"]["evidence"]
    assert counts["messages"] == MESSAGES, counts
    assert counts["behind"] == 0, counts
    assert counts["wrongProducts"] == 0 and counts["missingProducts"] == 0, counts


def test_streaming_lab_wrong_answer_then_solution(labs: Labs) -> None:
    for image in IMAGES:
        if not image_on_node(image):
            pytest.fail(f"{image} is not on the node: build and load it (make images)")
    phases = Phases("streaming")
    name = unique("stream")
    namespace = f"lab-{name}"
    labs.create(name, lab="streaming")  # default parameters: 3 partitions, 24 hours
    wait_ready(labs, name, timeout=240)
    phases.done("Lab Ready")
    wait_until(lambda: finished_run(labs, name), "the initial check", timeout=CHECK_SECONDS)
    show(labs, name, "initial")
    assert_initial_state(labs, name, namespace)
    phases.done("initial check")

    run_as_learner(namespace, "labs/streaming/solution/wrong/apply.sh")
    phases.done("wrong answer applied (a test order, consumers in groups of their own)")
    check_now(labs, name, "the wrong answer", timeout=CHECK_SECONDS)
    show(labs, name, "wrong answer")
    assert_wrong_answer_rejected(labs, name)
    phases.done("wrong answer checked")

    run_as_learner(namespace, "labs/streaming/solution/apply.sh")
    phases.done("solution applied (partitions raised, retention set, one group)")
    _, status = check_solution(labs, name, timeout=CHECK_SECONDS)
    show(labs, name, "solution")
    assert_solution_passes(status, labs, name)
    phases.done("solution checked: Completed")
