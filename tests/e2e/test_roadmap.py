"""Roadmaps on a real cluster: a learner follows a two-milestone roadmap with nothing but
the kubeconfig `kubectl lab kubeconfig --enrollment` gives; the first milestone's record
outlives its Lab, the second unlocks, the operator is killed between the two and
converges; a certificate verifies offline and a tampered one does not; a cohort of 20 is
enrolled and reported as CSV and JUnit; broken roadmaps and enrollments are reported,
with nothing half-made."""

from __future__ import annotations

import base64
import csv
import io
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client

from roadlab.api import naming

from .operator_fixtures import REPO, Labs, OperatorProcess
from .test_learner import Learner
from .test_operator import unique
from .waiting import wait_until

GROUP, VERSION = naming.GROUP, naming.VERSION


class Objects:
    """Roadmaps, Enrollments and Cohorts as the admin (the instructor) sees them."""

    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.made: list[tuple[str, str]] = []

    def create(self, plural: str, name: str, spec: dict[str, Any]) -> None:
        kind = {"roadmaps": "Roadmap", "enrollments": "Enrollment", "cohorts": "Cohort"}[plural]
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}}
        self.custom.create_cluster_custom_object(GROUP, VERSION, plural, {**body, "spec": spec})
        self.made.append((plural, name))

    def get(self, plural: str, name: str) -> dict[str, Any]:
        found = self.custom.get_cluster_custom_object(GROUP, VERSION, plural, name)
        return cast(dict[str, Any], found)

    def condition(self, plural: str, name: str, type_: str) -> dict[str, Any] | None:
        status = self.get(plural, name).get("status") or {}
        return next((c for c in status.get("conditions") or [] if c["type"] == type_), None)

    def milestone(self, enrollment: str, milestone: str) -> dict[str, Any]:
        status = self.get("enrollments", enrollment).get("status") or {}
        return next((m for m in status.get("milestones") or [] if m["id"] == milestone), {})

    def labs_of(self, enrollment: str) -> list[dict[str, Any]]:
        listing = cast(
            dict[str, Any],
            self.custom.list_cluster_custom_object(
                GROUP, VERSION, naming.PLURAL,
                label_selector=f"{naming.LABEL_ENROLLMENT}={enrollment}",
            ),
        )  # fmt: skip
        return cast(list[dict[str, Any]], listing["items"])

    def reason_is(self, plural: str, name: str, reason: str) -> Callable[[], bool]:
        return lambda: (self.condition(plural, name, "Ready") or {}).get("reason") == reason

    def cleanup(self) -> None:
        for plural, name in reversed(self.made):
            try:
                self.custom.delete_cluster_custom_object(GROUP, VERSION, plural, name)
            except client.ApiException as error:
                if error.status != 404:
                    raise


@pytest.fixture
def objects(api: client.ApiClient, operator: OperatorProcess) -> Iterator[Objects]:
    made = Objects(api)
    yield made
    made.cleanup()


def two_milestones(name: str, objects: Objects) -> None:
    objects.create(
        "roadmaps",
        name,
        {
            "title": "Two smoke steps",
            "milestones": [
                {"id": "first", "title": "Scale and answer", "lab": "smoke"},
                {"id": "second", "title": "Again, unlocked", "lab": "smoke", "requires": ["first"]},
                {"id": "later", "title": "A lab still to come", "requires": ["second"]},
            ],
        },
    )
    wait_until(
        lambda: (objects.condition("roadmaps", name, "Ready") or {}).get("status") == "True",
        f"Roadmap {name} Ready", timeout=30,
    )  # fmt: skip


def enrollee(enrollment: str, directory: Path) -> Learner:
    """The enrolled learner's kubeconfig, as the instructor hands it out."""
    done = subprocess.run(
        [sys.executable, "-m", "roadlab.cli", "kubeconfig", "--enrollment", enrollment],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    path = directory / "enrollee.kubeconfig"
    path.write_text(done.stdout)
    return Learner(path, lab="")  # no lab of its own: its Enrollment's


def solve_smoke(learner: Learner, lab: str) -> None:
    solution = (REPO / "labs/smoke/solution/solution.yaml").read_text()
    applied = learner.kubectl("-n", f"lab-{lab}", "apply", "-f", "-", stdin=solution)
    assert applied.returncode == 0, applied.stderr
    scaled = learner.kubectl("-n", f"lab-{lab}", "scale", "deployment", "web", "--replicas=2")
    assert scaled.returncode == 0, scaled.stderr


def wait_lab_ready(labs: Labs, lab: str) -> None:
    wait_until(
        lambda: (labs.condition(lab, "Ready") or {}).get("status") == "True",
        f"Lab {lab} Ready", timeout=180,
    )  # fmt: skip


def complete_milestone(me: Learner, labs: Labs, enrollment: str, milestone: str) -> str:
    """As the learner: start the next milestone, solve its lab, have it checked."""
    started = me.lab_cli("next")
    assert started.returncode == 0, started.stdout + started.stderr
    lab = naming.milestone_lab_name(enrollment, milestone)
    assert lab in started.stdout, started.stdout
    wait_lab_ready(labs, lab)
    # The same credential does the lab's work and asks for its checks.
    solve_smoke(me, lab)
    checked = me.lab_cli("check", lab, "--wait", "--timeout", "90s")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return lab


def check_certificates(me: Learner, directory: Path, learner: str) -> None:
    """Exported by the learner, verified offline; a tampered one refused."""
    cert_file, key_file = directory / "first.jws", directory / "roadlab.pem"
    exported = me.lab_cli("certificate", "first", "-o", str(cert_file))
    assert exported.returncode == 0, exported.stderr
    published = me.lab_cli("public-key", "-o", str(key_file))
    assert published.returncode == 0, published.stderr
    verified = me.lab_cli("verify", str(cert_file), "--key", str(key_file))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert learner in verified.stdout and "smoke" in verified.stdout, verified.stdout
    header, payload, signature = cert_file.read_text().strip().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"  # another learner's name, the signature kept
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    tampered = directory / "tampered.jws"
    tampered.write_text(f"{header}.{forged}.{signature}")
    refused = me.lab_cli("verify", str(tampered), "--key", str(key_file))
    assert refused.returncode == 1 and "REFUSED" in refused.stderr, refused.stderr
    whole = me.lab_cli("certificate", "--roadmap-certificate")
    assert whole.returncode == 0 and whole.stdout.count(".") >= 2, whole.stderr


def curious_learner(me: Learner, enrollment: str) -> None:
    """No list of Enrollments, no spec edit, no malformed request."""
    assert me.kubectl("get", "enrollments").returncode != 0
    edit = me.kubectl(
        "patch", f"enrollment.roadlab.dev/{enrollment}", "--type=merge",
        "-p", '{"spec":{"advance":"Automatic"}}',
    )  # fmt: skip
    assert edit.returncode != 0 and "cannot change their Enrollment's spec" in edit.stderr, (
        edit.stderr
    )
    malformed = me.kubectl(
        "annotate", f"enrollment.roadlab.dev/{enrollment}", "--overwrite",
        "roadlab.dev/start-requested=bad value!",
    )  # fmt: skip
    assert malformed.returncode != 0, malformed.stdout


def test_a_learner_follows_a_roadmap_and_the_record_outlives_each_lab(
    objects: Objects, labs: Labs, operator: OperatorProcess
) -> None:
    roadmap, enrollment = unique("two"), unique("enr")
    learner = f"{enrollment}-me"
    two_milestones(roadmap, objects)
    objects.create("enrollments", enrollment, {"roadmap": roadmap, "learner": learner})
    wait_until(
        lambda: objects.milestone(enrollment, "second").get("state") == "Locked",
        "the second milestone locked", timeout=30,
    )  # fmt: skip
    assert objects.milestone(enrollment, "first")["state"] == "Available"
    assert objects.milestone(enrollment, "later")["state"] == "Coming"

    with tempfile.TemporaryDirectory() as tmp:
        me = enrollee(enrollment, Path(tmp))
        shown = me.lab_cli("roadmap")
        assert shown.returncode == 0, shown.stderr
        assert "first" in shown.stdout and "second" in shown.stdout, shown.stdout
        locked = me.lab_cli("next", "second")
        assert locked.returncode == 1, locked.stdout + locked.stderr
        assert "locked" in locked.stdout + locked.stderr

        first_lab = complete_milestone(me, labs, enrollment, "first")
        wait_until(
            lambda: objects.milestone(enrollment, "first").get("state") == "Completed",
            "milestone 1 recorded Completed", timeout=30,
        )  # fmt: skip
        record = objects.milestone(enrollment, "first")
        assert record["checksRun"] >= 1 and record["timeSpentSeconds"] >= 0
        assert record["certificate"].count(".") == 2
        assert objects.milestone(enrollment, "second")["state"] == "Available"

        # Killed between the two milestones, the Lab deleted meanwhile: it waits (its
        # record finalizer) until the operator is back, which converges.
        operator.kill()
        labs.delete(first_lab)
        time.sleep(2)
        assert labs.get(first_lab)["metadata"]["deletionTimestamp"]
        operator.start()
        wait_until(lambda: not labs.exists(first_lab), "the first Lab gone", timeout=60)
        kept = objects.milestone(enrollment, "first")
        assert kept["state"] == "Completed" and kept["certificate"] == record["certificate"]

        second_lab = complete_milestone(me, labs, enrollment, "second")
        wait_until(
            lambda: (objects.condition("enrollments", enrollment, "Completed") or {}).get(
                "status"
            ) == "True",
            "the roadmap completed", timeout=30,
        )  # fmt: skip
        made = [lab["metadata"]["name"] for lab in objects.labs_of(enrollment)]
        assert made == [second_lab]  # no duplicate

        check_certificates(me, Path(tmp), learner)
        curious_learner(me, enrollment)


def test_a_cohort_is_enrolled_and_reported(objects: Objects, tmp_path: Path) -> None:
    roadmap, cohort = unique("two"), unique("cohort")
    two_milestones(roadmap, objects)
    learners = [f"learner{i:02d}@example.org" for i in range(20)]
    objects.create("cohorts", cohort, {"roadmap": roadmap, "learners": learners})
    wait_until(
        lambda: (objects.get("cohorts", cohort).get("status") or {}).get("enrolled") == 20,
        "20 learners enrolled", timeout=60,
    )  # fmt: skip

    def report(output: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "roadlab.cli", "report", "--cohort", cohort, "-o", output],
            capture_output=True, text=True, cwd=REPO, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    wait_until(
        lambda: report("csv").count("Locked") == 20, "every Enrollment reconciled", timeout=60
    )
    rows = list(csv.DictReader(io.StringIO(report("csv"))))
    assert len(rows) == 60  # 20 learners x 3 milestones
    assert sorted({r["learner"] for r in rows}) == sorted(learners)
    junit = report("junit")
    (tmp_path / "report.xml").write_text(junit)
    suites = ET.fromstring(junit).findall("testsuite")
    assert len(suites) == 20
    assert all(len(s.findall("testcase")) == 3 for s in suites)
    assert sum(len(s.findall("testcase/skipped")) for s in suites) == 20  # the coming one
    assert sum(len(s.findall("testcase/failure")) for s in suites) == 40  # not done yet


def test_bad_roadmaps_and_enrollments_are_reported_and_nothing_is_half_made(
    objects: Objects, api: client.ApiClient
) -> None:
    broken, forward = unique("broken"), unique("fwd")
    objects.create(
        "roadmaps",
        broken,
        {"title": "Broken", "milestones": [{"id": "a", "title": "A", "lab": "no-such-lab"}]},
    )
    objects.create(
        "roadmaps",
        forward,
        {
            "title": "Forward",
            "milestones": [
                {"id": "a", "title": "A", "lab": "smoke", "requires": ["b"]},
                {"id": "b", "title": "B", "lab": "smoke", "parameters": {"nope": 1}},
            ],
        },
    )

    def ready(plural: str, name: str) -> dict[str, Any]:
        return objects.condition(plural, name, "Ready") or {}

    for name, words in ((broken, "not in the catalog"), (forward, "comes later")):
        wait_until(
            objects.reason_is("roadmaps", name, "InvalidRoadmap"), f"{name} invalid", timeout=30
        )
        assert words in ready("roadmaps", name)["message"]
    assert "unknown parameter" in ready("roadmaps", forward)["message"]

    nowhere, on_broken = unique("nowhere"), unique("onbroken")
    objects.create("enrollments", nowhere, {"roadmap": "no-such-roadmap", "learner": "x"})
    objects.create("enrollments", on_broken, {"roadmap": broken, "learner": "y"})
    for name, reason in ((nowhere, "RoadmapNotFound"), (on_broken, "RoadmapInvalid")):
        wait_until(objects.reason_is("enrollments", name, reason), f"{name}: {reason}", timeout=30)
        assert objects.labs_of(name) == []
        rbac = client.RbacAuthorizationV1Api(api)
        with pytest.raises(client.ApiException) as missing:
            rbac.read_cluster_role(naming.enrollee_name(name))
        assert missing.value.status == 404

    # Refused by the schema: a milestone id that is no DNS label, a learner with a space.
    with pytest.raises(client.ApiException) as invalid:
        objects.create(
            "roadmaps",
            unique("bad"),
            {"title": "x", "milestones": [{"id": "Not OK", "title": "x"}]},
        )
    assert invalid.value.status == 422
    with pytest.raises(client.ApiException) as invalid:
        objects.create("enrollments", unique("bad"), {"roadmap": broken, "learner": "a b"})
    assert invalid.value.status == 422
