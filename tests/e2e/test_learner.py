"""The learner's own loop, with nothing but the kubeconfig `kubectl lab kubeconfig` gives:
status, check, hint, fix, the re-check that follows a change, Completed, extend; and every
other write to Labs, to other labs and to the check machinery, refused.

Every `kubectl lab` call here runs with that kubeconfig alone (KUBECONFIG set to it, no
admin credentials in reach); the admin client only creates the Labs and reads back facts.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from .operator_fixtures import OPERATOR_NAMESPACE, REPO, Labs, learner_kubeconfig
from .test_operator import unique, wait_ready
from .waiting import wait_until


@dataclass
class Learner:
    kubeconfig: Path
    lab: str

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG",)}
        return {**env, "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.kubeconfig.parent)}

    def lab_cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["python3", "-m", "roadlab.cli", *args],
            capture_output=True, text=True, env=self.env(), cwd=REPO, timeout=timeout,
            check=False,
        )  # fmt: skip

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", *args],
            input=stdin, capture_output=True, text=True, env=self.env(), timeout=60, check=False,
        )  # fmt: skip

    def refused(self, *args: str, stdin: str | None = None) -> str:
        done = self.kubectl(*args, stdin=stdin)
        assert done.returncode != 0, f"kubectl {' '.join(args)} was allowed: {done.stdout}"
        assert "forbidden" in done.stderr.lower() or "denied" in done.stderr.lower(), done.stderr
        return done.stderr


@pytest.fixture(scope="module")
def learner(labs_module: Labs) -> Iterator[tuple[Learner, str]]:
    """The learner of a smoke lab, and the name of another learner's lab."""
    mine, theirs = unique("learner-a"), unique("learner-b")
    for name in (mine, theirs):
        labs_module.create(name, lab="smoke", extensions={"maxExtensions": 1, "maxTTL": "3h"})
    for name in (mine, theirs):
        wait_ready(labs_module, name, timeout=180)
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = learner_kubeconfig(mine, Path(tmp))
        yield Learner(kubeconfig, mine), theirs


def tasks_of(labs: Labs, name: str) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in (labs.get(name).get("status") or {}).get("tasks") or []}


def test_the_kubeconfig_names_its_lab(learner: tuple[Learner, str]) -> None:
    me, _ = learner
    config = json.loads(me.kubectl("config", "view", "--raw", "-o", "json").stdout)
    context = config["contexts"][0]["context"]
    assert context["namespace"] == f"lab-{me.lab}"
    extensions = {e["name"]: e["extension"] for e in context.get("extensions") or []}
    assert extensions["roadlab.dev/lab"] == {"lab": me.lab}


def test_the_whole_loop_as_the_learner(learner: tuple[Learner, str], labs_module: Labs) -> None:
    me, _ = learner
    status = me.lab_cli("status")
    assert status.returncode == 0, status.stderr
    assert me.lab in status.stdout and "scale-web" in status.stdout

    check = me.lab_cli("check", "--wait", "--timeout", "60s")
    # Not solved yet: the check answers, and says what is left (exit 1: tasks failing).
    assert "scale-web" in check.stdout, check.stdout + check.stderr
    assert tasks_of(labs_module, me.lab)["scale-web"]["state"] == "Failed"

    hint = me.lab_cli("hint", "scale-web")
    assert hint.returncode == 0, hint.stderr
    assert "kubectl scale deployment web --replicas=2" in hint.stdout

    guide = me.lab_cli("guide")
    assert guide.returncode == 0, guide.stderr
    assert f"lab-{me.lab}" in guide.stdout  # the assignment's values filled in

    # The fix, as the learner; no check asked for: the change itself brings the re-check.
    solution = (REPO / "labs/smoke/solution/solution.yaml").read_text()
    applied = me.kubectl("-n", f"lab-{me.lab}", "apply", "-f", "-", stdin=solution)
    assert applied.returncode == 0, applied.stderr
    fixed_at = time.monotonic()
    wait_until(
        lambda: tasks_of(labs_module, me.lab)["configmap-answer"]["state"] == "Passed",
        "the re-check after the ConfigMap was created", timeout=30, interval=0.2,
    )  # fmt: skip
    to_passed = time.monotonic() - fixed_at
    scaled = me.kubectl("-n", f"lab-{me.lab}", "scale", "deployment", "web", "--replicas=2")
    assert scaled.returncode == 0, scaled.stderr

    watch = me.lab_cli("watch", timeout=90)
    assert watch.returncode == 0, watch.stdout + watch.stderr  # it ends when Completed
    completed = labs_module.condition(me.lab, "Completed")
    assert completed and completed["status"] == "True"
    print(f"fix -> Passed without asking: {to_passed:.2f} s")
    assert labs_module.get(me.lab)["status"]["lastRecheck"]["token"].startswith("auto-")

    before = labs_module.get(me.lab)["status"]["expiresAt"]
    extend = me.lab_cli("extend", "30m")
    assert extend.returncode == 0, extend.stdout + extend.stderr
    status_after = labs_module.get(me.lab)["status"]
    assert status_after["expiresAt"] > before
    assert status_after["lastExtension"]["state"] == "Accepted"
    # maxExtensions 1: the second is refused, with the reason, and changes nothing.
    again = me.lab_cli("extend", "30m")
    assert again.returncode != 0
    assert "no extensions left" in again.stdout + again.stderr
    assert labs_module.get(me.lab)["status"]["expiresAt"] == status_after["expiresAt"]


def test_every_other_write_is_refused(learner: tuple[Learner, str], labs_module: Labs) -> None:
    me, theirs = learner
    lab = f"lab.roadlab.dev/{me.lab}"
    # Labs: no list, no other Lab, no create or delete, no spec, labels, other annotations
    # or status, even of their own Lab.
    me.refused("get", "labs.roadlab.dev")
    me.refused("get", f"lab.roadlab.dev/{theirs}")
    me.refused("annotate", f"lab.roadlab.dev/{theirs}", "roadlab.dev/check-requested=x1")
    me.refused("delete", lab)
    me.refused("create", "-f", "-", stdin=json.dumps({
        "apiVersion": "roadlab.dev/v1alpha1", "kind": "Lab", "metadata": {"name": unique("mine")},
        "spec": {"lab": "smoke", "learner": "me"}}))  # fmt: skip
    me.refused("patch", lab, "--type=merge", "-p", '{"spec":{"ttl":"7d"}}')
    me.refused("patch", lab, "--type=merge", "-p",
               '{"spec":{"extensions":{"maxExtensions":10}}}')  # fmt: skip
    me.refused("label", lab, "roadlab.dev/lab=other")
    me.refused("annotate", lab, "note=mine")
    me.refused("annotate", "--overwrite", lab, "roadlab.dev/extend-requested=not a request")
    me.refused("patch", lab, "--subresource=status", "--type=merge", "-p",
               '{"status":{"progress":"2/2"}}')  # fmt: skip
    me.refused("patch", lab, "--type=merge", "-p", '{"metadata":{"finalizers":["x"]}}')
    # The check machinery: Jobs and the warm checker, its key, its proxy, its RBAC.
    me.refused("get", "jobs", "-n", OPERATOR_NAMESPACE)
    me.refused("create", "job", "-n", OPERATOR_NAMESPACE, "x", "--image=busybox")
    me.refused("get", "secret", "-n", OPERATOR_NAMESPACE, "roadlab-checker-key")
    proxy = f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/services/roadlab-checker:http/proxy"
    me.refused("get", "--raw", f"{proxy}/healthz")
    me.refused("create", "clusterrolebinding", "mine", "--clusterrole=cluster-admin",
               "--serviceaccount=lab-x:learner")  # fmt: skip
    me.refused("patch", "clusterrole", f"roadlab-learner-{me.lab}", "--type=merge", "-p",
               '{"rules":[]}')  # fmt: skip
    # What is allowed, the two requests, still is.
    allowed = me.kubectl("annotate", "--overwrite", lab, "roadlab.dev/check-requested=t-1")
    assert allowed.returncode == 0, allowed.stderr


def test_the_grants_by_subject_access_review(
    learner: tuple[Learner, str], api: client.ApiClient
) -> None:
    me, theirs = learner
    authz = client.AuthorizationV1Api(api)
    user = f"system:serviceaccount:lab-{me.lab}:learner"

    def allowed(verb: str, name: str | None = None, subresource: str | None = None) -> bool:
        review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
            user=user,
            groups=["system:serviceaccounts", f"system:serviceaccounts:lab-{me.lab}",
                    "system:authenticated"],
            resource_attributes=client.V1ResourceAttributes(
                group="roadlab.dev", resource="labs", verb=verb, name=name,
                subresource=subresource),
        ))  # fmt: skip
        return bool(authz.create_subject_access_review(review).status.allowed)

    for verb in ("get", "watch", "patch"):
        assert allowed(verb, me.lab), verb
    for verb in ("update", "delete"):
        assert not allowed(verb, me.lab), verb
    assert not allowed("patch", me.lab, "status")
    assert not allowed("list")
    assert not allowed("create")
    for verb in ("get", "watch", "patch"):
        assert not allowed(verb, theirs), verb
