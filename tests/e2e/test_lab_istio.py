"""The istio catalog lab on a real cluster with Istio's own CRDs (cluster/istio-crds.sh).

No istiod or sidecars run here: the checks read the learner's configuration, which the API
server has validated against Istio's real schemas. The learner's one right over their own
Namespace (the istio-injection label) and its limits are checked through the admission
policy the chart installs. Phase timings print with `pytest -s`.
"""

from __future__ import annotations

import json
import time

from .conftest import kubectl
from .lab_phases import Phases, check_now, check_solution, finished_run
from .operator_fixtures import Labs
from .test_operator import unique, wait_ready
from .test_validation import request_check, run_as_learner, tasks
from .waiting import wait_until

CHECK_SECONDS = 180


def as_learner(namespace: str, *args: str) -> tuple[int, str]:
    done = kubectl(*args, f"--as=system:serviceaccount:{namespace}:learner", check=False)
    return done.returncode, done.stdout + done.stderr


def test_learner_may_set_only_the_labs_namespace_labels(labs: Labs) -> None:
    name = unique("istio-ns")
    namespace = f"lab-{name}"
    labs.create(name, lab="istio")
    wait_ready(labs, name, timeout=120)

    code, out = as_learner(namespace, "label", "namespace", namespace, "istio-injection=enabled")
    assert code == 0, out
    code, out = as_learner(
        namespace, "label", "namespace", namespace, "--overwrite",
        "pod-security.kubernetes.io/enforce=privileged",
    )  # fmt: skip
    assert code != 0 and "only the labels [istio-injection] may change" in out, out
    code, out = as_learner(namespace, "label", "namespace", namespace, "team=blue")
    assert code != 0 and "Roadlab lab namespace" in out, out
    code, out = as_learner(namespace, "annotate", "namespace", namespace, "roadlab.dev/x=y")
    assert code != 0 and "managed by Roadlab" in out, out
    code, out = as_learner(
        namespace, "patch", "namespace", namespace, "--type=json",
        "-p", '[{"op": "remove", "path": "/metadata/ownerReferences"}]',
    )  # fmt: skip
    assert code != 0, out
    # Another lab's namespace is out of reach: no RBAC there at all.
    other = unique("istio-other")
    labs.create(other, lab="istio")
    wait_ready(labs, other, timeout=120)
    code, out = as_learner(namespace, "label", "namespace", f"lab-{other}", "istio-injection=x")
    assert code != 0 and "forbidden" in out.lower(), out

    labels = json.loads(kubectl("get", "namespace", namespace, "-o", "json").stdout)["metadata"][
        "labels"
    ]
    assert labels["istio-injection"] == "enabled"
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert "team" not in labels
    # The operator's own pass over the guardrails keeps the learner's label.
    request_check(name)
    time.sleep(3)
    labels = json.loads(kubectl("get", "namespace", namespace, "-o", "json").stdout)["metadata"][
        "labels"
    ]
    assert labels["istio-injection"] == "enabled"


def test_istio_lab_wrong_answer_then_solution(labs: Labs) -> None:
    phases = Phases("istio")
    name = unique("istio")
    namespace = f"lab-{name}"
    labs.create(name, lab="istio", parameters={"canaryWeight": 20})
    wait_ready(labs, name, timeout=180)
    phases.done("Lab Ready")

    wait_until(lambda: finished_run(labs, name), "the initial check", timeout=CHECK_SECONDS)
    before = tasks(labs, name)
    assert before["sidecar-injection"]["state"] == "Failed"
    assert (
        'metadata.labels["istio-injection"] is not set' in before["sidecar-injection"]["message"]
    ), before["sidecar-injection"]
    assert "DestinationRule reviews not found" in before["destination-rule"]["message"]
    assert "VirtualService reviews not found" in before["weighted-split"]["message"]
    assert "PeerAuthentication default not found" in before["strict-mtls"]["message"]
    assert all(task["hint"] for task in before.values())
    assert labs.get(name)["status"]["progress"] == "0/4"
    weights = kubectl(
        "-n", namespace, "get", "configmap", "assignment",
        "-o", "jsonpath={.data.stableWeight}/{.data.canaryWeight}",
    )  # fmt: skip
    assert weights.stdout == "80/20"
    phases.done("initial check")

    # The API server validates Istio objects with Istio's own schema.
    bad = kubectl(
        "-n", namespace, "apply", "-f", "-",
        f"--as=system:serviceaccount:{namespace}:learner",
        input='{"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",'
        ' "metadata": {"name": "typo"}, "spec": {"mtls": {"mode": "STRICTLY"}}}',
        check=False,
    )  # fmt: skip
    assert bad.returncode != 0 and "STRICTLY" in bad.stderr, bad.stderr

    run_as_learner(namespace, "labs/istio/solution/wrong/apply.sh")
    token = check_now(labs, name, "the wrong answer", timeout=CHECK_SECONDS)
    wrong = tasks(labs, name)
    assert wrong["sidecar-injection"]["state"] == "Failed"
    subsets = wrong["destination-rule"]["message"]
    assert 'spec.subsets[name=v1].labels.version is "1", expected "v1"' in subsets, subsets
    split = wrong["weighted-split"]["message"]
    assert "spec.http[0].route[destination.subset=v1].weight is 50, expected 80" in split, split
    assert "spec.http[0].route[destination.subset=v2].weight is 50, expected 20" in split, split
    mtls = wrong["strict-mtls"]["message"]
    assert 'spec.mtls.mode is "PERMISSIVE", expected "STRICT"' in mtls, mtls
    print(f"[istio lab] wrong answer: {split} | {subsets} | {mtls}")
    phases.done("wrong answer checked")

    run_as_learner(namespace, "labs/istio/solution/apply.sh")
    phases.done("solution applied")
    token, status = check_solution(labs, name, timeout=CHECK_SECONDS)
    assert status["progress"] == "4/4"
    assert status["lastCheck"]["token"] == token
    print(f"[istio lab] split: {tasks(labs, name)['weighted-split']['message']}")
    phases.done("solution checked: Completed")
