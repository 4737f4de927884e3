"""The observability catalog lab on a real cluster: the real Prometheus 3.16 and
Alertmanager 0.31 (built from their Go modules, cluster/project-images.sh) beside the web
app, configured with the learner's own permissions, judged by the checker through their
HTTP APIs while it sends the app real traffic.

The wrong answer (labs/observability/solution/wrong/README.md) must give, with the default
parameters (scrape interval 5 s, alert above 10 % errors):
  scrape-pods     Failed  'job "shop" has 1 target (shop:80), expected 2: one per pod, ...'
  recording-rule  Failed  'job:web_requests:rate1m is recorded as {}, without {job="shop"}'
  alert-fires     Failed  'alert ShopHighErrorRate is pending in Prometheus after ...: its
                           expression holds, but its `for` of 600 s is longer than ...'
"""

from __future__ import annotations

import pytest

from .conftest import kubectl
from .lab_phases import Phases, check_now, check_solution, finished_run
from .operator_fixtures import Labs
from .test_lab_mlflow import image_on_node
from .test_operator import unique, wait_ready
from .test_validation import run_as_learner, tasks
from .waiting import wait_until

IMAGES = (
    "localhost/roadlab/web:0.1.0",
    "localhost/roadlab/prometheus:0.1.0",
    "localhost/roadlab/alertmanager:0.1.0",
)
TASK_IDS = ["scrape-pods", "recording-rule", "alert-fires"]
# The lab's checkTimeoutSeconds (labs/observability/lab.yaml) and a margin for the check's
# pod to start and report.
CHECK_SECONDS = 300 + 60


def assert_initial_state(labs: Labs, name: str, namespace: str) -> None:
    """Right after provisioning Prometheus scrapes itself only and has no rules."""
    before = tasks(labs, name)
    assert sorted(before) == sorted(TASK_IDS)
    for task in TASK_IDS:
        assert before[task]["state"] == "Failed", before[task]
        assert before[task]["hint"]
    assert before["scrape-pods"]["message"] == (
        'Prometheus has no active target of job "shop" (targets API; jobs it scrapes: '
        'prometheus): add a scrape job "shop" to its configuration, and let Prometheus '
        "re-read it (waited 30 s)"
    )
    assert before["recording-rule"]["message"] == (
        'Prometheus has no recording rule "job:web_requests:rate1m" loaded (rules API; '
        "loaded: none): list its rule file under rule_files, and let Prometheus re-read its "
        "configuration"
    )
    assert before["alert-fires"]["message"].startswith(
        'Prometheus has no alerting rule "ShopHighErrorRate" loaded'
    )
    assert labs.get(name)["status"]["progress"] == "0/3"
    assignment = kubectl(
        "-n", namespace, "get", "configmap", "assignment", "-o", "jsonpath={.data.scrapeInterval}"
    )
    assert assignment.stdout == "5s"


def assert_wrong_answer_rejected(labs: Labs, name: str) -> None:
    wrong = tasks(labs, name)
    for task in TASK_IDS:
        assert wrong[task]["state"] == "Failed", wrong[task]
    assert wrong["scrape-pods"]["message"] == (
        'job "shop" has 1 target (shop:80), expected 2: one per pod, each scraped on its own '
        "(waited 30 s)"
    )
    assert wrong["recording-rule"]["message"] == (
        'job:web_requests:rate1m is recorded as {}, without {job="shop"}'
    )
    alert = wrong["alert-fires"]
    pending = "alert ShopHighErrorRate is pending in Prometheus after "
    assert alert["message"].startswith(pending), alert
    assert alert["message"].endswith(
        "its expression holds, but its `for` of 600 s is longer than the 150 s the check "
        "sends errors for, so a burst like this one never fires it"
    ), alert
    # The verdict comes with traffic: errors were sent before the alert was judged.
    assert alert["evidence"]["prometheusState"] == "pending"
    assert alert["evidence"]["errorResponses"] > 0
    assert labs.get(name)["status"]["progress"] == "0/3"
    for task in TASK_IDS:
        print(f"[observability lab] wrong answer, {task}: {wrong[task]['message']}")


def assert_solution_passes(labs: Labs, name: str, token: str) -> None:
    status = labs.get(name)["status"]
    assert status["progress"] == "3/3"
    assert status["lastCheck"]["token"] == token
    done = tasks(labs, name)
    targets = done["scrape-pods"]["evidence"]
    assert targets["up"] == 2 and targets["scrapeInterval"] == "5s", targets
    assert "shop:80" not in str(targets["instances"])  # the pods, not the Service
    rule = done["recording-rule"]["evidence"]
    assert rule["requests"] > 0
    assert rule["expected"] > 0
    assert abs(rule["recorded"] - rule["expected"]) <= 0.1 * rule["expected"], rule
    alert = done["alert-fires"]["evidence"]
    assert alert["inAlertmanager"] >= 1 and alert["prometheusState"] == "firing", alert
    # About 20 % of the check's requests went to /fail (twice the 10 % threshold).
    assert alert["errorResponses"] == pytest.approx(alert["requests"] * 0.2, abs=2), alert
    for task in TASK_IDS:
        print(f"[observability lab] solution, {task}: {done[task]['message']}")
        print(f"[observability lab] solution, {task} evidence: {done[task]['evidence']}")


def test_observability_lab_wrong_answer_then_solution(labs: Labs) -> None:
    for image in IMAGES:
        if not image_on_node(image):
            pytest.fail(f"{image} is not on the node: build and load it (make images)")
    phases = Phases("observability")
    name = unique("obs")
    namespace = f"lab-{name}"
    labs.create(name, lab="observability")  # default parameters: 5 s, 10 %
    wait_ready(labs, name, timeout=180)
    phases.done("Lab Ready")
    wait_until(lambda: finished_run(labs, name), "the initial check", timeout=CHECK_SECONDS)
    assert_initial_state(labs, name, namespace)
    phases.done("initial check")

    run_as_learner(namespace, "labs/observability/solution/wrong/apply.sh")
    phases.done("wrong answer applied (Prometheus restarted on it)")
    token = check_now(labs, name, "the wrong answer", timeout=CHECK_SECONDS)
    assert_wrong_answer_rejected(labs, name)
    phases.done("wrong answer checked")

    run_as_learner(namespace, "labs/observability/solution/apply.sh")
    phases.done("solution applied (Prometheus restarted on it)")
    token, _ = check_solution(labs, name, timeout=CHECK_SECONDS)
    assert_solution_passes(labs, name, token)
    phases.done("solution checked: Completed")
