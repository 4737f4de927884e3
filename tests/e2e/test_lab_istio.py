"""The istio catalog lab on a real mesh: Istio's CRDs, istiod, istio-cni and sidecars of
pilot-agent and upstream Envoy, built here (cluster/istio.sh).

The configuration checks read what the API server validated against Istio's own schemas;
the behavioural ones run in a check Job with a sidecar of its own: they count 200 real
responses by version and send plain text past the check's sidecar to each pod. The
learner's one right over their own Namespace (the istio-injection label) and its limits
are checked through the admission policy the chart installs. Phase timings print with
`pytest -s`.
"""

from __future__ import annotations

import json
import time
from typing import Any

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

    # Istio routing names only this lab's Services: another lab's would reach that lab's
    # clients (and its meshed checks), since Istio applies routing mesh-wide by default.
    foreign = f"reviews.lab-{other}.svc.cluster.local"
    for kind, host_field in (("VirtualService", "hosts"), ("DestinationRule", "host")):
        for host, allowed in ((foreign, False), ("*", False), (f"reviews.{namespace}.svc", True)):
            value = [host] if host_field == "hosts" else host
            spec: dict[str, Any] = {host_field: value}
            if kind == "VirtualService":
                spec["http"] = [{"route": [{"destination": {"host": "reviews"}}]}]
            manifest = {
                "apiVersion": "networking.istio.io/v1",
                "kind": kind,
                "metadata": {"name": "probe-hosts"},
                "spec": spec,
            }
            done = kubectl(
                "-n", namespace, "apply", "-f", "-",
                f"--as=system:serviceaccount:{namespace}:learner",
                input=json.dumps(manifest), check=False,
            )  # fmt: skip
            if allowed:
                assert done.returncode == 0, done.stderr
                kubectl("-n", namespace, "delete", kind, "probe-hosts")
            else:
                assert done.returncode != 0, (kind, host)
                assert "Istio routing names only Services of its own namespace" in done.stderr
                assert host in done.stderr, done.stderr

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


def assert_off_the_mesh(before: dict[str, Any]) -> None:
    """The initial check: nothing done yet, and the pods have no sidecars."""
    assert before["sidecar-injection"]["state"] == "Failed"
    assert (
        'metadata.labels["istio-injection"] is not set' in before["sidecar-injection"]["message"]
    ), before["sidecar-injection"]
    assert "lack a container named istio-proxy" in before["sidecars-running"]["message"]
    assert "DestinationRule reviews not found" in before["destination-rule"]["message"]
    assert "VirtualService reviews not found" in before["weighted-split"]["message"]
    assert "PeerAuthentication default not found" in before["strict-mtls"]["message"]
    # Off the mesh, the Service's own load balancing spreads requests evenly.
    even = before["measured-split"]["message"]
    assert even.startswith("the requests were spread evenly"), even
    bare = before["plaintext-refused"]["message"]
    assert "2 pods without an istio-proxy sidecar" in bare, bare
    assert all(task["hint"] for task in before.values())


def assert_wrong_answer(wrong: dict[str, Any]) -> None:
    """Subsets swapped and PERMISSIVE, on the mesh: the configuration checks and the
    measured behaviour both say so."""
    assert wrong["sidecar-injection"]["state"] == "Passed"
    assert wrong["sidecars-running"]["state"] == "Passed", wrong["sidecars-running"]
    subsets = wrong["destination-rule"]["message"]
    assert 'spec.subsets[name=v1].labels.version is "v2", expected "v1"' in subsets, subsets
    assert wrong["weighted-split"]["state"] == "Passed", wrong["weighted-split"]
    inverted = wrong["measured-split"]
    assert inverted["state"] == "Failed", inverted
    assert inverted["message"].startswith("the split is inverted: v1 "), inverted
    assert "subsets' labels swapped" in inverted["message"], inverted
    mtls = wrong["strict-mtls"]["message"]
    assert 'spec.mtls.mode is "PERMISSIVE", expected "STRICT"' in mtls, mtls
    plain = wrong["plaintext-refused"]
    assert plain["state"] == "Failed", plain
    assert "plain text from a client without a mesh identity got answers" in plain["message"]


def test_istio_lab_wrong_answer_then_solution(labs: Labs) -> None:
    phases = Phases("istio")
    name = unique("istio")
    namespace = f"lab-{name}"
    labs.create(name, lab="istio", parameters={"canaryWeight": 20})
    wait_ready(labs, name, timeout=180)
    phases.done("Lab Ready")

    wait_until(lambda: finished_run(labs, name), "the initial check", timeout=CHECK_SECONDS)
    # The initial check may run before both versions are ready (then one version answers
    # alone): check again once both serve, so the split is the Service's own.
    for deployment in ("reviews-v1", "reviews-v2"):
        kubectl("-n", namespace, "rollout", "status", f"deployment/{deployment}", "--timeout=120s")
    check_now(labs, name, "the lab off the mesh", timeout=CHECK_SECONDS)
    assert_off_the_mesh(tasks(labs, name))
    assert labs.get(name)["status"]["progress"] == "0/7"
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
    phases.done("wrong answer applied (pods restarted with sidecars)")
    check_now(labs, name, "the wrong answer", timeout=CHECK_SECONDS)
    wrong = tasks(labs, name)
    assert_wrong_answer(wrong)
    print(
        f"[istio lab] wrong answer: {wrong['measured-split']['message']} | "
        f"{wrong['plaintext-refused']['message']}"
    )
    phases.done("wrong answer checked")

    run_as_learner(namespace, "labs/istio/solution/apply.sh")
    phases.done("solution applied")
    token, status = check_solution(labs, name, timeout=CHECK_SECONDS)
    assert status["progress"] == "7/7"
    assert status["lastCheck"]["token"] == token
    solved = tasks(labs, name)
    split = solved["measured-split"]
    assert split["message"].startswith("measured split of 200 responses: v1 "), split
    counts = split["evidence"]
    assert counts["count.v1"] + counts["count.v2"] == 200, counts
    assert counts["expected.v2"] == "40 ± 23", counts  # 4·sqrt(200·0.2·0.8)
    refused = solved["plaintext-refused"]["message"]
    assert refused.startswith("plain text to port 8080 of 2 pods"), refused
    print(f"[istio lab] {split['message']} | {refused}")
    phases.done("solution checked: Completed")
