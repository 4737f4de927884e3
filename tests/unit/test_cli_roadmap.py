"""kubectl lab on roadmaps: the learner's map, next, enroll, cohort (CSV), report,
certificate, public-key, verify (offline), kubeconfig --enrollment, and refusals."""

from __future__ import annotations

import argparse
import copy
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from test_cli import NOW, FakeApi, Harness, Utf8Out, api_error, catalog_dir, cond, make_lab, ts
from test_cli_learner import write_kubeconfig

from roadlab.api import certificates as certs
from roadlab.api import naming
from roadlab.cli import app as cli
from roadlab.cli import (
    common,
    completion,
    kubeconfig_lab,
    roadmap_view,
    session,
    verbs_labs,
    verbs_roadmap,
)
from roadlab.cli.waiting import WaitStep
from roadlab.kube.lab_client import LabClient

__all__ = ["catalog_dir"]  # the autouse fixture of test_cli: a catalog of the smoke lab

Manifest = dict[str, Any]
ROADMAP = "k8s-basics"
ENROLLMENT = "k8s-basics-alice"
START_ANN = naming.ANNOTATION_START_REQUESTED
TOKEN = str(int(NOW.timestamp() * 1000))  # new_extension_token(NOW)
CLUSTER = {"server": "https://10.200.0.1:6443", "insecure-skip-tls-verify": True}


def make_roadmap(name: str = ROADMAP, **status: Any) -> Manifest:
    return {
        "apiVersion": naming.API_VERSION,
        "kind": "Roadmap",
        "metadata": {"name": name, "managedFields": [{"manager": "kubectl"}]},
        "spec": {
            "title": "Kubernetes basics",
            "description": "From a first pod to GitOps.",
            "source": "https://roadmap.sh/kubernetes",
            "milestones": [
                {"id": "pods", "title": "Run a pod", "lab": "smoke"},
                {
                    "id": "scale",
                    "title": "Scale a Deployment",
                    "lab": "smoke",
                    "parameters": {"replicas": 2},
                    "requires": ["pods"],
                    "ttl": "1h",
                },
                {
                    "id": "hpa",
                    "title": "Autoscale",
                    "lab": "hpa",
                    "requires": ["scale"],
                    "optional": True,
                },
                {"id": "ingress", "title": "Expose it", "lab": "smoke", "requires": ["scale"]},
                {"id": "gitops", "title": "GitOps", "requires": ["ingress"]},
            ],
        },
        **({"status": status} if status else {}),
    }


def record(id_: str, state: str, **fields: Any) -> Manifest:
    return {"id": id_, "state": state, **fields}


def make_enrollment(
    name: str = ENROLLMENT,
    learner: str = "alice",
    *,
    milestones: list[Manifest] | None = None,
    labels: dict[str, str] | None = None,
    **status: Any,
) -> Manifest:
    records = (
        milestones
        if milestones is not None
        else [
            record(
                "pods",
                "Completed",
                lab=f"{name}-pods",
                attempts=1,
                startedAt=ts(timedelta(hours=-2)),
                completedAt=ts(timedelta(hours=-1, minutes=-30)),
                timeSpentSeconds=1500,
                checksRun=3,
                certificate="pods.jws",
            ),
            record(
                "scale",
                "Running",
                lab=f"{name}-scale",
                attempts=1,
                startedAt=ts(timedelta(minutes=-5)),
                checksRun=1,
            ),
            record("hpa", "Available"),
            record("ingress", "Locked", message="requires scale"),
            record("gitops", "Coming"),
        ]
    )
    body: Manifest = {
        "conditions": [cond("Ready", "True", "InProgress", "working on scale")],
        "milestones": records,
        "current": "scale",
        "progress": "1/3",
        **status,
    }
    metadata: Manifest = {"name": name, "managedFields": [{"manager": "kubectl"}]}
    if labels:
        metadata["labels"] = labels
    return {
        "apiVersion": naming.API_VERSION,
        "kind": "Enrollment",
        "metadata": metadata,
        "spec": {"roadmap": ROADMAP, "learner": learner, "advance": "OnRequest"},
        "status": body,
    }


def api_with(*enrollments: Manifest, roadmap: Manifest | None = None) -> FakeApi:
    api = FakeApi()
    api.enrollments = {e["metadata"]["name"]: e for e in enrollments}
    if roadmap is not None:
        api.roadmaps[roadmap["metadata"]["name"]] = roadmap
    return api


def utf8_harness(api: FakeApi) -> Harness:
    return Harness(api, out=Utf8Out())


def doc(manifest: Manifest) -> roadmap_view.EnrollmentDoc:
    return roadmap_view.parse_enrollment(manifest)


def enrollee_kubeconfig(tmp_path: Path, enrollment: str = ENROLLMENT) -> Path:
    document = verbs_labs.build_enrollment_kubeconfig(enrollment, CLUSTER, "tok")
    return write_kubeconfig(tmp_path / f"{enrollment}.kubeconfig", document)


def lab_kubeconfig(tmp_path: Path, lab: str) -> Path:
    document = verbs_labs.build_kubeconfig(lab, f"lab-{lab}", CLUSTER, "tok")
    return write_kubeconfig(tmp_path / f"{lab}.kubeconfig", document)


def with_kubeconfig(harness: Harness, path: Path) -> Harness:
    harness.app.env = {**harness.app.env, "KUBECONFIG": str(path)}
    return harness


# --- certificates made with a key of the test's own -----------------------------------------


@pytest.fixture(scope="module")
def private_pem() -> str:
    return certs.new_private_key_pem()


@pytest.fixture(scope="module")
def public_pem(private_pem: str) -> str:
    return certs.public_key_pem(private_pem)


def milestone_certificate(private_pem: str, learner: str = "alice") -> str:
    facts = certs.MilestoneFacts(
        learner=learner,
        enrollment=ENROLLMENT,
        roadmap=ROADMAP,
        roadmap_title="Kubernetes basics",
        milestone="pods",
        milestone_title="Run a pod",
        lab_id="smoke",
        lab_name=f"{ENROLLMENT}-pods",
        lab_definition_sha256="ab" * 32,
        parameters={"replicas": 2},
        tasks=[
            certs.TaskClaim("scale-web", "Passed", "cd" * 32),
            certs.TaskClaim("configmap-answer", "Passed", None),
        ],
        started_at=ts(timedelta(hours=-2)),
        completed_at=ts(timedelta(hours=-1, minutes=-30)),
        completed_epoch=int((NOW - timedelta(hours=1, minutes=30)).timestamp()),
        time_spent_seconds=1500,
        checks_run=3,
    )
    return certs.sign(certs.milestone_claims(facts), private_pem)


def roadmap_certificate(private_pem: str, pods: str) -> str:
    claims = certs.roadmap_claims(
        "alice",
        ENROLLMENT,
        ROADMAP,
        "Kubernetes basics",
        [certs.MilestoneCertificateRef("pods", ts(timedelta(hours=-1)), pods)],
        ts(timedelta(0)),
        int(NOW.timestamp()),
    )
    return certs.sign(claims, private_pem)


def tampered(certificate: str) -> str:
    """The same JWS with its payload's learner changed (the signature left as it was)."""
    header, payload, signature = certificate.split(".")
    claims = json.loads(certs.jwt.utils.base64url_decode(payload))
    claims["sub"] = "mallory"
    forged = certs.jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    return f"{header}.{forged}.{signature}"


# --- the map (pure) -------------------------------------------------------------------------

LAST_START = {
    "token": "1",
    "milestone": "scale",
    "state": "Accepted",
    "message": "started lab k8s-basics-alice-scale",
    "at": ts(timedelta(minutes=-5)),
}


def test_the_map_shows_every_state_in_the_roadmaps_order() -> None:
    enrollment = doc(make_enrollment(lastStart=LAST_START))
    roadmap = roadmap_view.parse_roadmap(make_roadmap())
    assert roadmap_view.format_map(enrollment, roadmap, NOW, True) == (
        "Roadmap:  Kubernetes basics (k8s-basics)\n"
        "Learner:  alice (enrollment k8s-basics-alice, advance OnRequest)\n"
        "Progress: 1/3\n"
        "Ready:    True (InProgress)\n"
        "\n"
        "  ✓  pods      Run a pod              completed 2026-11-21 08:30 UTC · 25m spent"
        " · 3 checks · 1 attempt\n"
        "  ▶  scale     Scale a Deployment     running in lab k8s-basics-alice-scale"
        " · started 5m ago · 1 check · attempt 1\n"
        "  ○  hpa       Autoscale (optional)   available\n"
        "  🔒 ingress   Expose it              locked: requires scale\n"
        "  …  gitops    GitOps                 coming: no lab yet\n"
        "\n"
        "Last start: Accepted 5m ago (scale): started lab k8s-basics-alice-scale\n"
        "In progress: kubectl lab status k8s-basics-alice-scale (then: guide, check, watch)\n"
        "Then: kubectl lab next (or kubectl lab next MILESTONE)\n"
    )


def test_the_map_in_ascii_repeats_the_enrollment_flag() -> None:
    records = [record("pods", "Available", attempts=1, message="the lab expired")]
    enrollment = doc(make_enrollment(milestones=records, current=None))
    text = roadmap_view.format_map(
        enrollment, None, NOW, False, flags=f" --enrollment {ENROLLMENT}"
    )
    assert "  o  pods   available, 1 attempt so far, the lab expired\n" in text
    assert text.endswith(
        f"Next: kubectl lab next --enrollment {ENROLLMENT} "
        f"(or kubectl lab next MILESTONE --enrollment {ENROLLMENT})\n"
    )


@pytest.mark.parametrize(
    ("state", "unicode", "mark"),
    [
        ("Completed", True, "✓"),
        ("Running", True, "▶"),
        ("Available", True, "○"),
        ("Locked", True, "🔒"),
        ("Coming", True, "…"),
        ("Completed", False, "+"),
        ("Locked", False, "#"),
        ("Unknown", True, "?"),
    ],
)
def test_milestone_marks(state: str, unicode: bool, mark: str) -> None:
    assert roadmap_view.milestone_mark(state, unicode) == mark


def test_a_milestone_not_recorded_yet_and_one_no_longer_on_the_roadmap() -> None:
    records = [record("pods", "Completed"), record("old", "Completed")]
    enrollment = doc(make_enrollment(milestones=records))
    roadmap = roadmap_view.parse_roadmap(make_roadmap())
    entries = roadmap_view.map_entries(enrollment, roadmap)
    assert [e.id for e in entries] == ["pods", "scale", "hpa", "ingress", "gitops", "old"]
    assert entries[1].state == "Unknown"
    text = roadmap_view.format_map(enrollment, roadmap, NOW, True)
    assert (
        "  ?  scale     Scale a Deployment     not recorded yet (waiting for the operator)\n"
        in (text)
    )


def test_a_locked_milestone_without_the_roadmap_says_the_operators_message() -> None:
    enrollment = doc(make_enrollment(milestones=[record("ingress", "Locked", message="why")]))
    assert "  🔒 ingress   locked: why\n" in roadmap_view.format_map(enrollment, None, NOW, True)


def test_a_completed_roadmap_points_to_its_certificate() -> None:
    records = [record("pods", "Completed", completedAt=ts(timedelta(hours=-1)))]
    completed = make_enrollment(
        milestones=records,
        completedAt=ts(timedelta(0)),
        conditions=[cond("Completed", "True", "AllMilestonesCompleted")],
    )
    text = roadmap_view.format_map(doc(completed), None, NOW, True)
    assert "Completed: 2026-11-21 10:00 UTC\n" in text
    assert text.endswith("\nRoadmap completed: kubectl lab certificate --roadmap-certificate\n")
    empty = roadmap_view.format_map(doc(make_enrollment(milestones=[])), None, NOW, True)
    assert "Milestones: none recorded yet (waiting for the operator)\n" in empty


def test_a_roadmap_and_the_list_of_them() -> None:
    manifest = make_roadmap()
    text = roadmap_view.format_roadmap(manifest, roadmap_view.parse_roadmap(manifest))
    assert text.startswith(
        "Roadmap:    k8s-basics\n"
        "Title:      Kubernetes basics\n"
        "Source:     https://roadmap.sh/kubernetes\n"
        "Ready:      -\n"
        "Milestones: 5 (4 with labs)\n"
        "\n"
        "Description:\n"
        "  From a first pod to GitOps.\n"
    )
    assert (
        "  2   scale     Scale a Deployment   smoke      pods       -          1h    replicas=2\n"
        in (text)
    )
    assert "  5   gitops    GitOps               (coming)   ingress" in text
    ready = make_roadmap("other", milestones=7, withLabs=6, conditions=[cond("Ready", "True", "R")])
    assert roadmap_view.format_roadmap_list([ready, make_roadmap()]) == (
        "NAME         TITLE               MILESTONES   WITH-LABS   READY\n"
        "k8s-basics   Kubernetes basics   5            4           -\n"
        "other        Kubernetes basics   7            6           True\n"
    )


# --- roadmap (the verb) ---------------------------------------------------------------------


def test_roadmap_lists_the_roadmaps_without_an_enrollment_in_view() -> None:
    harness = Harness(api_with(roadmap=make_roadmap()))
    assert harness.run("roadmap") == 0
    assert harness.out.startswith("NAME         TITLE               MILESTONES")
    harness = Harness(FakeApi())
    assert harness.run("roadmap") == 0
    assert harness.err == "no roadmaps found\n"
    harness = Harness(api_with(roadmap=make_roadmap()))
    assert harness.run("roadmap", "-o", "json") == 0
    listing = json.loads(harness.out)
    assert listing["kind"] == "List"
    assert "managedFields" not in listing["items"][0]["metadata"]


def test_roadmap_name_shows_its_milestones() -> None:
    harness = Harness(api_with(roadmap=make_roadmap()))
    assert harness.run("roadmap", ROADMAP) == 0
    assert "Milestones: 5 (4 with labs)" in harness.out
    harness = Harness(api_with(roadmap=make_roadmap()))
    assert harness.run("roadmap", ROADMAP, "-o", "yaml") == 0
    assert yaml.safe_load(harness.out)["spec"]["title"] == "Kubernetes basics"
    harness = Harness(FakeApi())
    assert harness.run("roadmap", "nope") == 3
    assert harness.err == "error: roadmap nope not found\n"


def test_roadmap_with_an_enrollment_shows_the_map() -> None:
    harness = utf8_harness(api_with(make_enrollment(), roadmap=make_roadmap()))
    assert harness.run("roadmap", "--enrollment", ENROLLMENT) == 0
    assert "  ▶  scale     Scale a Deployment     running in lab" in harness.out
    assert f"Then: kubectl lab next --enrollment {ENROLLMENT} (or" in harness.out
    # Without the Roadmap: the records, and a note.
    harness = utf8_harness(api_with(make_enrollment()))
    assert harness.run("roadmap", "--enrollment", ENROLLMENT, "-o", "table") == 0
    assert harness.err.startswith("note: roadmap k8s-basics not found")
    assert "  ✓  pods      completed" in harness.out
    harness = Harness(api_with(make_enrollment()))
    assert harness.run("roadmap", "--enrollment", ENROLLMENT, "-o", "json") == 0
    assert json.loads(harness.out)["status"]["current"] == "scale"
    harness = Harness(api_with(make_enrollment()))
    assert harness.run("roadmap", "other", "--enrollment", ENROLLMENT) == 2
    assert harness.err == f"error: enrollment {ENROLLMENT} follows roadmap k8s-basics, not other\n"
    harness = Harness(FakeApi())
    assert harness.run("roadmap", "--enrollment", "nobody") == 3
    assert harness.err == "error: enrollment nobody not found\n"


def test_roadmap_takes_the_enrollment_from_the_kubeconfig(tmp_path: Path) -> None:
    api = api_with(make_enrollment(), roadmap=make_roadmap())
    harness = with_kubeconfig(utf8_harness(api), enrollee_kubeconfig(tmp_path))
    assert harness.run("roadmap") == 0
    assert harness.out.startswith("Roadmap:  Kubernetes basics (k8s-basics)\n")
    assert "Then: kubectl lab next (or kubectl lab next MILESTONE)\n" in harness.out


def test_roadmap_takes_the_enrollment_from_the_kubeconfigs_lab(tmp_path: Path) -> None:
    lab = make_lab(f"{ENROLLMENT}-scale")
    lab["metadata"]["labels"] = {naming.LABEL_ENROLLMENT: ENROLLMENT}
    api = api_with(make_enrollment(), roadmap=make_roadmap())
    api.labs[lab["metadata"]["name"]] = lab
    harness = with_kubeconfig(utf8_harness(api), lab_kubeconfig(tmp_path, f"{ENROLLMENT}-scale"))
    assert harness.run("roadmap") == 0
    assert "Learner:  alice (enrollment k8s-basics-alice" in harness.out
    # A lab of no enrollment: the list of roadmaps.
    api.labs["alice-smoke"] = make_lab()
    harness = with_kubeconfig(Harness(api), lab_kubeconfig(tmp_path, "alice-smoke"))
    assert harness.run("roadmap") == 0
    assert harness.out.startswith("NAME ")


# --- next -----------------------------------------------------------------------------------


def answered(state: str, message: str, milestone: str = "hpa", token: str = TOKEN) -> Manifest:
    enrollment = make_enrollment()
    status = enrollment["status"]
    status["lastStart"] = {
        "token": token,
        "milestone": milestone,
        "state": state,
        "message": message,
        "at": ts(timedelta(0)),
    }
    if state == "Accepted":
        status["milestones"][2] = record("hpa", "Running", lab=f"{ENROLLMENT}-hpa", attempts=1)
        status["current"] = "hpa"
    return enrollment


def answer_start(api: FakeApi, answer: Manifest) -> None:
    def after_patch(name: str) -> None:
        annotations = api.enrollments[name]["metadata"]["annotations"]
        answer["metadata"]["annotations"] = dict(annotations)
        api.enrollment_script[name] = [copy.deepcopy(api.enrollments[name]), answer]

    api.after_enrollment_patch = after_patch


def test_the_start_request_and_its_answer() -> None:
    assert roadmap_view.start_patch("17") == {"metadata": {"annotations": {START_ANN: "17"}}}
    assert roadmap_view.start_patch("17", "hpa") == {
        "metadata": {"annotations": {START_ANN: "17/hpa"}}
    }
    pending = make_enrollment()
    assert not roadmap_view.start_wait_step(pending, "t").done
    assert roadmap_view.start_wait_step(None, "t").exit_code == common.EXIT_NOT_FOUND
    assert roadmap_view.start_wait_step(answered("Accepted", "ok", token="t"), "t") == (
        WaitStep(True, 0, "Accepted", "ok")
    )
    refused = roadmap_view.start_wait_step(answered("Refused", "no", token="t"), "t")
    assert (refused.exit_code, refused.reason) == (1, "Refused")
    newer = answered("Accepted", "ok", token="u")
    assert not roadmap_view.start_wait_step(newer, "t").done  # an older answer: not ours
    newer["metadata"]["annotations"] = {START_ANN: "u/hpa"}
    assert roadmap_view.start_wait_step(newer, "t").reason == "Superseded"


def test_next_accepted_names_the_lab_and_the_next_steps(tmp_path: Path) -> None:
    api = api_with(make_enrollment())
    answer_start(api, answered("Accepted", "started lab k8s-basics-alice-hpa"))
    harness = with_kubeconfig(Harness(api), enrollee_kubeconfig(tmp_path))
    assert harness.run("next", "hpa") == 0
    assert api.enrollment_patches == [
        (ENROLLMENT, {"metadata": {"annotations": {START_ANN: f"{TOKEN}/hpa"}}})
    ]
    assert harness.out == (
        "Accepted: started lab k8s-basics-alice-hpa\n"
        "milestone hpa: lab k8s-basics-alice-hpa\n"
        "next steps:\n"
        "  kubectl lab status k8s-basics-alice-hpa       its state and tasks"
        " (also: guide, watch, check, hint)\n"
        "  kubectl lab roadmap                           your map\n"
        "  kubectl lab kubeconfig k8s-basics-alice-hpa   for instructors:"
        " the lab's own kubeconfig\n"
    )
    assert harness.err == (
        "[   0s] k8s-basics-alice Requested: waiting for the operator to answer\n"
    )


def test_next_refused_exits_1_with_the_message() -> None:
    api = api_with(make_enrollment())
    answer_start(api, answered("Refused", "ingress requires scale, which is not completed"))
    harness = Harness(api)
    assert harness.run("next", "--enrollment", ENROLLMENT) == common.EXIT_FAILURE
    assert api.enrollment_patches[0][1] == {"metadata": {"annotations": {START_ANN: TOKEN}}}
    assert harness.out == "Refused: ingress requires scale, which is not completed\n"


def test_next_times_out_when_nobody_answers() -> None:
    harness = Harness(api_with(make_enrollment()))
    assert harness.run("next", "--enrollment", ENROLLMENT, "--wait", "5s") == common.EXIT_TIMEOUT
    assert (
        f"error: timed out after 5s waiting for enrollment {ENROLLMENT} to answer the start "
        "request (last: Requested: waiting for the operator to answer)\n"
    ) in harness.err


def test_next_without_waiting_json_and_a_deleted_enrollment() -> None:
    api = api_with(make_enrollment())
    harness = Harness(api)
    assert harness.run("next", "--enrollment", ENROLLMENT, "--no-wait") == 0
    assert harness.out == (
        f"start of the next milestone requested for enrollment {ENROLLMENT} (token {TOKEN})\n"
        f"see the answer with: kubectl lab roadmap --enrollment {ENROLLMENT}\n"
    )
    api = api_with(make_enrollment())
    answer_start(api, answered("Accepted", "ok"))
    harness = Harness(api)
    assert harness.run("-o", "json", "next", "--enrollment", ENROLLMENT) == 0
    assert json.loads(harness.out)["status"]["lastStart"]["token"] == TOKEN
    api = api_with(make_enrollment())
    api.after_enrollment_patch = lambda name: api.enrollment_script.update({name: [None]})
    harness = Harness(api)
    assert harness.run("next", "--enrollment", ENROLLMENT) == common.EXIT_NOT_FOUND
    assert harness.err.endswith(
        f"error: enrollment {ENROLLMENT}: Deleted: the enrollment was deleted\n"
    )


def test_next_usage_errors() -> None:
    harness = Harness(api_with(make_enrollment()))
    assert harness.run("next", "Not_An_Id", "--enrollment", ENROLLMENT) == 2
    assert harness.err == "error: next: 'Not_An_Id' is not a milestone id\n"
    assert harness.connected == []
    harness = Harness(api_with(make_enrollment()))
    assert harness.run("next", "nope", "--enrollment", ENROLLMENT) == 2
    assert harness.err == (
        "error: milestone nope is not on roadmap k8s-basics "
        "(its milestones: pods, scale, hpa, ingress, gitops)\n"
    )
    harness = Harness(FakeApi())  # no kubeconfig, no --enrollment
    assert harness.run("next") == 2
    assert harness.err.startswith("error: next: no enrollment given and the kubeconfig names none")


# --- enroll ---------------------------------------------------------------------------------


def test_enroll_creates_an_enrollment() -> None:
    api = api_with(roadmap=make_roadmap())
    harness = Harness(api)
    assert harness.run("enroll", "alice", "--roadmap", ROADMAP, "--lab-ttl", "90m") == 0
    assert api.created == [
        {
            "apiVersion": "roadlab.dev/v1alpha1",
            "kind": "Enrollment",
            "metadata": {"name": ENROLLMENT},
            "spec": {
                "roadmap": ROADMAP,
                "learner": "alice",
                "advance": "OnRequest",
                "labTTL": "90m",
            },
        }
    ]
    assert harness.out == (
        f"enrollment {ENROLLMENT} created: alice on roadmap k8s-basics (advance OnRequest)\n"
        f"the learner's kubeconfig: kubectl lab kubeconfig --enrollment {ENROLLMENT} "
        f"> {ENROLLMENT}.kubeconfig\n"
        f"their map: kubectl lab roadmap --enrollment {ENROLLMENT}\n"
    )
    assert harness.err == ""


def test_enroll_names_a_learner_with_capitals_validly_and_warns_of_a_missing_roadmap() -> None:
    api = FakeApi()
    harness = Harness(api)
    assert harness.run("-o", "name", "enroll", "Alice.Smith@x.org", "--roadmap", ROADMAP) == 0
    name = naming.cohort_enrollment_name(ROADMAP, "Alice.Smith@x.org")
    assert harness.out == f"enrollment.roadlab.dev/{name}\n"
    assert naming.is_dns1123_label(name)
    assert harness.err == "warning: roadmap k8s-basics not found (yet): the operator waits for it\n"
    harness = Harness(api)
    argv = ["enroll", "bob", "--roadmap", ROADMAP, "--name", "b1", "--advance", "Automatic"]
    assert harness.run(*argv) == 0
    assert api.enrollments["b1"]["spec"]["advance"] == "Automatic"


def test_enroll_twice() -> None:
    api = api_with(roadmap=make_roadmap())
    assert Harness(api).run("enroll", "alice", "--roadmap", ROADMAP) == 0
    harness = Harness(api)
    assert harness.run("enroll", "alice", "--roadmap", ROADMAP) == 0
    assert harness.out == f"enrollment {ENROLLMENT} already exists, with the same spec\n"
    harness = Harness(api)
    assert harness.run("enroll", "alice", "--roadmap", ROADMAP, "--advance", "Automatic") == 1
    assert harness.err == (
        f"error: enrollment {ENROLLMENT} already exists with another spec (roadmap k8s-basics, "
        "learner alice, advance OnRequest, labTTL None); delete it or pick another --name\n"
    )


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["enroll", "bob smith", "--roadmap", ROADMAP], "learner 'bob smith' is not a valid"),
        (["enroll", "bob", "--roadmap", "Bad.Map"], "roadmap 'Bad.Map' is not a valid name"),
        (["enroll", "bob", "--roadmap", ROADMAP, "--name", "B"], "enrollment name 'B' must be"),
        (["enroll", "bob", "--roadmap", ROADMAP, "--lab-ttl", "1m"], "invalid enrollment: "),
    ],
)
def test_enroll_usage_errors(argv: list[str], error: str) -> None:
    harness = Harness(FakeApi())
    assert harness.run(*argv) == 2
    assert harness.err.startswith(f"error: {error}")
    assert harness.connected == []


# --- cohort ---------------------------------------------------------------------------------


def test_csv_with_a_learner_column_comments_and_blank_lines() -> None:
    text = "# the spring cohort\nname,Learner,email\n\nAlice,alice,a@x\n  # later\nBob,bob@x.org,\n"
    assert verbs_roadmap.parse_learners_csv(text) == verbs_roadmap.CsvLearners(
        ["alice", "bob@x.org"], []
    )


def test_csv_without_a_header_takes_the_first_column() -> None:
    parsed = verbs_roadmap.parse_learners_csv("alice,Alice A\nbob\n")
    assert parsed.learners == ["alice", "bob"]


def test_csv_bad_rows_are_all_reported_with_their_line() -> None:
    text = "learner\nalice\nbob smith\n\n-bob\nalice\n,nobody\n" + "x" * 64 + "\n"
    parsed = verbs_roadmap.parse_learners_csv(text)
    assert parsed.learners == ["alice"]
    assert [(b.line, b.value) for b in parsed.bad] == [
        (3, "bob smith"),
        (5, "-bob"),
        (6, "alice"),
        (7, ""),
        (8, "x" * 64),
    ]
    assert parsed.bad[2].reason == "a repeat of line 2"
    assert parsed.bad[3].reason == "no learner in this row"


def write_csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "learners.csv"
    path.write_text(text)
    return str(path)


def test_cohort_with_bad_rows_creates_nothing(tmp_path: Path) -> None:
    api = FakeApi()
    harness = Harness(api)
    path = write_csv(tmp_path, "learner\nalice\nbob smith\nal!ce\n")
    assert harness.run("cohort", "spring", "--roadmap", ROADMAP, "--csv", path) == 2
    assert harness.err == (
        f"error: {path}: 2 invalid rows; nothing was created:\n"
        "  line 3: 'bob smith': not a valid learner id (letters, digits and -_.@, at most 63 "
        "characters, starting and ending with a letter or digit)\n"
        "  line 4: 'al!ce': not a valid learner id (letters, digits and -_.@, at most 63 "
        "characters, starting and ending with a letter or digit)\n"
    )
    assert api.applied == []
    assert harness.connected == []


def test_cohort_limits(tmp_path: Path) -> None:
    harness = Harness(FakeApi())
    path = write_csv(tmp_path, "".join(f"learner{i}\n" for i in range(501)))
    assert harness.run("cohort", "big", "--roadmap", ROADMAP, "--csv", path) == 2
    assert "501 learners; a Cohort holds at most 500" in harness.err
    harness = Harness(FakeApi())
    path = write_csv(tmp_path, "learner\n# nobody yet\n")
    assert harness.run("cohort", "empty", "--roadmap", ROADMAP, "--csv", path) == 2
    assert harness.err == f"error: {path}: no learners in it\n"
    harness = Harness(FakeApi())
    assert harness.run("cohort", "x", "--roadmap", ROADMAP, "--csv", str(tmp_path / "no")) == 1
    assert harness.err.startswith(f"error: cannot read {tmp_path / 'no'}: ")
    assert harness.connected == []


def test_cohort_dry_run_prints_the_cohort(tmp_path: Path) -> None:
    harness = Harness(FakeApi())
    path = write_csv(tmp_path, "alice\nbob\n")
    argv = ["cohort", "spring", "--roadmap", ROADMAP, "--csv", path, "--dry-run"]
    assert harness.run(*argv, "--lab-ttl", "2h", "--advance", "Automatic") == 0
    assert yaml.safe_load(harness.out) == {
        "apiVersion": "roadlab.dev/v1alpha1",
        "kind": "Cohort",
        "metadata": {"name": "spring"},
        "spec": {
            "roadmap": ROADMAP,
            "learners": ["alice", "bob"],
            "advance": "Automatic",
            "labTTL": "2h",
        },
    }
    assert harness.connected == []


def test_cohort_applies_the_cohort(tmp_path: Path) -> None:
    api = api_with(roadmap=make_roadmap())
    harness = Harness(api)
    path = write_csv(tmp_path, "learner\nalice\nbob\n")
    assert harness.run("cohort", "spring", "--roadmap", ROADMAP, "--csv", path) == 0
    [applied] = api.applied
    assert applied["spec"] == {
        "roadmap": ROADMAP,
        "learners": ["alice", "bob"],
        "advance": "OnRequest",
    }
    assert harness.out == (
        "cohort spring applied: 2 learners on roadmap k8s-basics (advance OnRequest); the "
        "operator enrolls each as spring-<learner>\n"
        "follow them: kubectl lab report --cohort spring\n"
    )
    harness = Harness(api)  # again, with one learner fewer: applied again
    path = write_csv(tmp_path, "learner\nalice\n")
    assert harness.run("-o", "name", "cohort", "spring", "--roadmap", ROADMAP, "--csv", path) == 0
    assert harness.out == "cohort.roadlab.dev/spring\n"
    assert api.cohorts["spring"]["spec"]["learners"] == ["alice"]


def test_cohort_reads_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("alice\n"))
    harness = Harness(FakeApi())
    assert harness.run("cohort", "c", "--roadmap", ROADMAP, "--csv", "-", "--dry-run") == 0
    assert yaml.safe_load(harness.out)["spec"]["learners"] == ["alice"]


# --- report (the verb; the formats are in test_report) --------------------------------------


def cohort_enrollments() -> list[Manifest]:
    alice = make_enrollment("spring-alice", labels={naming.LABEL_COHORT: "spring"})
    bob = make_enrollment("autumn-bob", "bob", labels={naming.LABEL_COHORT: "autumn"})
    bob["spec"]["roadmap"] = "other"
    return [alice, bob]


def test_report_of_a_cohort_or_a_roadmap() -> None:
    api = api_with(*cohort_enrollments(), roadmap=make_roadmap())
    harness = Harness(api)
    assert harness.run("report", "--cohort", "spring", "-o", "csv") == 0
    assert api.enrollment_selectors == ["roadlab.dev/cohort=spring"]
    lines = harness.out.splitlines()
    assert lines[0] == (
        "learner,enrollment,roadmap,milestone,state,completedAt,timeSpentSeconds,checksRun,attempts"
    )
    assert lines[1] == "alice,spring-alice,k8s-basics,pods,Completed,2026-11-21T08:30:00Z,1500,3,1"
    assert len(lines) == 6
    harness = Harness(api)
    assert harness.run("report", "--roadmap", "other", "-o", "json") == 0
    assert {row["learner"] for row in json.loads(harness.out)} == {"bob"}
    harness = Harness(api)
    assert harness.run("report") == 0
    assert harness.out.startswith("LEARNER   ENROLLMENT     ROADMAP")
    harness = Harness(api)
    assert harness.run("report", "--roadmap", "nothing") == 0
    assert (harness.out, harness.err) == ("", "no enrollments found\n")


def test_report_junit_and_usage_errors() -> None:
    api = api_with(*cohort_enrollments(), roadmap=make_roadmap())
    harness = Harness(api)
    assert harness.run("report", "-o", "junit") == 0
    assert harness.out.startswith("<?xml version='1.0' encoding='utf-8'?>\n<testsuites")
    harness = Harness(api)
    assert harness.run("report", "--cohort", "a", "--roadmap", "b") == 2
    harness = Harness(api)
    assert harness.run("report", "--cohort", "A,b") == 2
    assert harness.err == (
        "error: cohort 'A,b' is not a valid name (lowercase letters, digits and '-', at most "
        "40 characters)\n"
    )


# --- certificate ----------------------------------------------------------------------------


def certified_enrollment(private_pem: str, *, whole: bool = False) -> Manifest:
    pods = milestone_certificate(private_pem)
    enrollment = make_enrollment()
    enrollment["status"]["milestones"][0]["certificate"] = pods
    later = record(
        "extra", "Completed", completedAt=ts(timedelta(minutes=-10)), certificate="extra.jws"
    )
    enrollment["status"]["milestones"].append(later)
    if whole:
        enrollment["status"]["certificate"] = roadmap_certificate(private_pem, pods)
    return enrollment


def test_certificate_of_the_latest_a_given_milestone_or_the_roadmap(private_pem: str) -> None:
    api = api_with(certified_enrollment(private_pem, whole=True))
    harness = Harness(api)
    assert harness.run("certificate", "--enrollment", ENROLLMENT) == 0
    assert harness.out == "extra.jws\n"  # completed last
    harness = Harness(api)
    assert harness.run("certificate", "pods", "--enrollment", ENROLLMENT) == 0
    assert harness.out == milestone_certificate(private_pem) + "\n"
    harness = Harness(api)
    assert harness.run("certificate", "--roadmap-certificate", "--enrollment", ENROLLMENT) == 0
    assert certs.verify(harness.out, [certs.public_key_pem(private_pem)]).kind == "roadmap"


def test_certificate_to_a_file(private_pem: str, tmp_path: Path) -> None:
    harness = Harness(api_with(certified_enrollment(private_pem)))
    target = tmp_path / "pods.jws"
    assert harness.run("certificate", "pods", "--enrollment", ENROLLMENT, "-o", str(target)) == 0
    assert target.read_text() == milestone_certificate(private_pem) + "\n"
    assert harness.out == ""
    assert harness.err == (
        f"wrote the certificate of milestone pods to {target}; check it with: "
        f"kubectl lab verify {target}\n"
    )


@pytest.mark.parametrize(
    ("argv", "code", "error"),
    [
        (["scale"], 3, "milestone scale has no certificate yet (it is Running)"),
        (
            ["nope"],
            3,
            "milestone nope is not in enrollment k8s-basics-alice (milestones: pods, "
            "scale, hpa, ingress, gitops)",
        ),
        (
            ["--roadmap-certificate"],
            3,
            "enrollment k8s-basics-alice has no roadmap certificate "
            "yet (progress 1/3): it comes once every required milestone is completed",
        ),
        (
            ["pods", "--roadmap-certificate"],
            2,
            "certificate: give a MILESTONE or --roadmap-certificate, not both",
        ),
    ],
)
def test_certificate_errors(argv: list[str], code: int, error: str) -> None:
    harness = Harness(api_with(make_enrollment()))
    assert harness.run("certificate", "--enrollment", ENROLLMENT, *argv) == code
    assert harness.err == f"error: {error}\n"


def test_no_certificate_before_a_completed_milestone() -> None:
    harness = Harness(api_with(make_enrollment(milestones=[record("pods", "Running")])))
    assert harness.run("certificate", "--enrollment", ENROLLMENT) == 3
    assert harness.err == "error: no milestone of enrollment k8s-basics-alice is completed yet\n"


# --- public-key and verify ------------------------------------------------------------------


def publish(api: FakeApi, public_pem: str) -> str:
    kid = certs.key_id(public_pem)
    api.config_maps[(naming.DEFAULT_OPERATOR_NAMESPACE, naming.PUBLIC_KEYS_CONFIGMAP)] = {
        f"{kid}.pem": public_pem,
        "README": "not a key",
    }
    return kid


def test_public_key_prints_the_published_keys(public_pem: str, tmp_path: Path) -> None:
    api = FakeApi()
    kid = publish(api, public_pem)
    harness = Harness(api)
    assert harness.run("public-key") == 0
    assert harness.out == public_pem
    assert harness.err == (
        f"1 public key (key id {kid}); verify certificates offline with: "
        "kubectl lab verify FILE --key KEYFILE\n"
    )
    harness = Harness(api)
    target = tmp_path / "roadlab.pem"
    assert harness.run("public-key", "-o", str(target)) == 0
    assert target.read_text() == public_pem
    assert harness.err == f"wrote 1 public key (key id {kid}) to {target}\n"
    harness = Harness(api)
    assert harness.run("public-key", "--operator-namespace", "elsewhere") == 3
    assert harness.err == (
        "error: no public keys: ConfigMap roadlab-public-keys not found in namespace elsewhere "
        "(is Roadlab installed there? see --operator-namespace)\n"
    )


def key_file(tmp_path: Path, public_pem: str) -> str:
    path = tmp_path / "roadlab.pem"
    other = certs.public_key_pem(certs.new_private_key_pem())
    path.write_text(f"# the published keys\n{other}{public_pem}")
    return str(path)


def test_verify_offline_with_a_key_file(private_pem: str, public_pem: str, tmp_path: Path) -> None:
    certificate = tmp_path / "pods.jws"
    certificate.write_text(milestone_certificate(private_pem) + "\n")
    harness = Harness(FakeApi(), out=Utf8Out())
    assert harness.run("verify", str(certificate), "--key", key_file(tmp_path, public_pem)) == 0
    assert harness.connected == []  # offline: no cluster at all
    kid = certs.key_id(public_pem)
    assert harness.out == (
        f"VERIFIED: a milestone certificate, signed by key {kid}\n"
        "Learner:    alice\n"
        "Roadmap:    Kubernetes basics (k8s-basics)\n"
        "Enrollment: k8s-basics-alice\n"
        "Milestone:  Run a pod (pods)\n"
        "Lab:        smoke (lab k8s-basics-alice-pods)\n"
        f"Definition: sha256 {'ab' * 32}\n"
        "Parameters: replicas=2\n"
        "Started:    2026-11-21T08:00:00Z\n"
        "Completed:  2026-11-21T08:30:00Z\n"
        "Time spent: 25m\n"
        "Checks run: 3\n"
        f"Key id:     {kid}\n"
        "Tasks:\n"
        f"  ✓ scale-web          Passed    evidence sha256 {'cd' * 32}\n"
        "  ✓ configmap-answer   Passed\n"
    )


def test_verify_refuses_a_tampered_certificate(
    private_pem: str, public_pem: str, tmp_path: Path
) -> None:
    forged = tmp_path / "forged.jws"
    forged.write_text(tampered(milestone_certificate(private_pem)))
    harness = Harness(FakeApi())
    assert harness.run("verify", str(forged), "--key", key_file(tmp_path, public_pem)) == 1
    assert harness.err == "REFUSED: the signature does not match: the certificate was altered\n"
    assert harness.out == ""
    assert harness.connected == []
    # Signed by another key, and not a certificate at all.
    stranger = tmp_path / "stranger.pem"
    stranger.write_text(certs.public_key_pem(certs.new_private_key_pem()))
    genuine = tmp_path / "pods.jws"
    genuine.write_text(milestone_certificate(private_pem))
    harness = Harness(FakeApi())
    assert harness.run("verify", str(genuine), "--key", str(stranger)) == 1
    assert harness.err.startswith(f"REFUSED: signed by key '{certs.key_id(public_pem)}', which")
    junk = tmp_path / "junk"
    junk.write_text("hello")
    harness = Harness(FakeApi())
    assert harness.run("verify", str(junk), "--key", str(stranger)) == 1
    assert harness.err.startswith("REFUSED: not a certificate (a compact JWS)")


def test_verify_a_roadmap_certificate_from_stdin_with_the_clusters_keys(
    private_pem: str, public_pem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pods = milestone_certificate(private_pem)
    monkeypatch.setattr("sys.stdin", io.StringIO(roadmap_certificate(private_pem, pods)))
    api = FakeApi()
    publish(api, public_pem)
    harness = Harness(api)
    assert harness.run("verify", "-") == 0
    assert harness.connected == [(None, None)]
    assert harness.out.startswith("VERIFIED: a roadmap certificate, signed by key ")
    assert "Milestones:\n  + pods   completed 2026-11-21T09:00:00Z   certificate sha256 " in (
        harness.out
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(pods))
    harness = Harness(api)
    assert harness.run("-o", "json", "verify", "-") == 0
    document = json.loads(harness.out)
    assert document["verified"] is True
    assert document["claims"]["sub"] == "alice"


def test_verify_key_file_errors(private_pem: str, tmp_path: Path) -> None:
    certificate = tmp_path / "pods.jws"
    certificate.write_text(milestone_certificate(private_pem))
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing here")
    harness = Harness(FakeApi())
    assert harness.run("verify", str(certificate), "--key", str(empty)) == 2
    assert harness.err == f"error: {empty}: no PEM public key in it\n"
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    harness = Harness(FakeApi())
    assert harness.run("verify", str(certificate), "--key", str(broken)) == 2
    assert harness.err.startswith(f"error: {broken}: not a PEM public key")
    harness = Harness(FakeApi())
    assert harness.run("verify", str(certificate)) == 3  # no ConfigMap in the cluster
    assert "ConfigMap roadlab-public-keys not found" in harness.err


def test_split_pem() -> None:
    block = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
    assert roadmap_view.split_pem(f"x\n{block}\ny\n{block}") == [block + "\n", block + "\n"]
    assert roadmap_view.split_pem("none") == []


# --- kubeconfig --enrollment ----------------------------------------------------------------


def test_the_enrolled_learners_kubeconfig_names_the_enrollment(tmp_path: Path) -> None:
    api = api_with(make_enrollment())
    harness = Harness(api)
    assert harness.run("kubeconfig", "--enrollment", ENROLLMENT) == 0
    account = f"roadlab-enrollee-{ENROLLMENT}"
    assert api.tokens == [("roadlab-system", account, 7200)]
    document = yaml.safe_load(harness.out)
    assert document == verbs_labs.build_enrollment_kubeconfig(
        ENROLLMENT, api.kubeconfig_cluster(), "token-abc"
    )
    [context] = document["contexts"]
    assert context["name"] == document["current-context"] == f"roadlab-enrollment-{ENROLLMENT}"
    assert context["context"]["extensions"] == [
        {"name": "roadlab.dev/enrollment", "extension": {"enrollment": ENROLLMENT}}
    ]
    assert "namespace" not in context["context"]
    assert document["users"] == [{"name": account, "user": {"token": "token-abc"}}]
    assert harness.err == (
        f"token for {account} in roadlab-system expires at 2026-11-21T12:00:00Z\n"
        "with it the learner runs: kubectl lab roadmap, kubectl lab next, kubectl lab "
        "certificate (no names needed)\n"
    )
    path = write_kubeconfig(tmp_path / "k", document)
    found = kubeconfig_lab.find_kubeconfig_lab(str(path), None, {})
    assert found == kubeconfig_lab.KubeconfigLab(context["name"], None, ENROLLMENT)


def test_kubeconfig_enrollment_options() -> None:
    api = api_with(make_enrollment())
    harness = Harness(api)
    argv = ["-o", "json", "kubeconfig", "--enrollment", ENROLLMENT, "--duration", "5m"]
    assert harness.run(*argv, "--operator-namespace", "rl") == 0
    assert api.tokens == [("rl", f"roadlab-enrollee-{ENROLLMENT}", 600)]
    assert json.loads(harness.out)["kind"] == "Config"
    assert harness.err.startswith("note: token lifetime set to 10m\n")


@pytest.mark.parametrize(
    ("argv", "code", "error"),
    [
        (
            ["kubeconfig"],
            2,
            "kubeconfig: give a lab name (or --enrollment NAME for an enrolled learner)",
        ),
        (
            ["kubeconfig", "alice-smoke", "--enrollment", ENROLLMENT],
            2,
            "kubeconfig: give a lab or --enrollment, not both",
        ),
        (["kubeconfig", "--enrollment", "nobody"], 3, "enrollment nobody not found"),
        (["kubeconfig", "--enrollment", "No.Such"], 2, "'No.Such' is not an Enrollment name"),
    ],
)
def test_kubeconfig_enrollment_errors(argv: list[str], code: int, error: str) -> None:
    harness = Harness(api_with(make_enrollment()))
    assert harness.run(*argv) == code
    assert harness.err == f"error: {error}\n"


def test_a_missing_enrollee_service_account() -> None:
    api = api_with(make_enrollment())

    def missing(*_: Any) -> tuple[str, str | None]:
        raise api_error(404, "serviceaccounts not found")

    api.create_service_account_token = missing  # type: ignore[method-assign]
    harness = Harness(api)
    assert harness.run("kubeconfig", "--enrollment", ENROLLMENT) == 3
    assert harness.err.startswith(
        f"error: service account roadlab-enrollee-{ENROLLMENT} not found in namespace "
        "roadlab-system (the operator makes it for each Enrollment"
    )


def test_the_lab_verbs_with_an_enrollees_kubeconfig_take_the_current_lab(tmp_path: Path) -> None:
    api = api_with(make_enrollment())
    api.labs[f"{ENROLLMENT}-scale"] = make_lab(f"{ENROLLMENT}-scale")
    harness = with_kubeconfig(Harness(api), enrollee_kubeconfig(tmp_path))
    assert harness.run("status") == 0
    assert harness.out.startswith(f"Lab:         {ENROLLMENT}-scale\n")
    idle = make_enrollment(milestones=[record("pods", "Available")], current=None)
    harness = with_kubeconfig(Harness(api_with(idle)), enrollee_kubeconfig(tmp_path))
    assert harness.run("status") == 2
    assert harness.err == (
        f"error: no lab name given and enrollment {ENROLLMENT} has no lab in progress; start "
        "the next milestone with: kubectl lab next\n"
    )


# --- refusals of a learner's credentials ----------------------------------------------------

FORBIDDEN = 'is forbidden: User "system:serviceaccount:roadlab-system:roadlab-enrollee-x"'


class EnrolleeApi(FakeApi):
    """What RBAC lets an enrolled learner do: their Enrollment, Roadmaps, their Labs."""

    def __init__(self, enrollment: str, labs: tuple[str, ...], *objects: Manifest) -> None:
        super().__init__()
        self.own, self.own_labs = enrollment, labs
        self.enrollments = {o["metadata"]["name"]: o for o in objects}

    def _refuse(self) -> None:
        raise api_error(403, f"enrollments.roadlab.dev {FORBIDDEN}")

    def get_enrollment(self, name: str) -> Manifest | None:
        if name != self.own:
            self._refuse()
        return super().get_enrollment(name)

    def get_lab(self, name: str) -> Manifest | None:
        if name not in self.own_labs:
            self._refuse()
        return super().get_lab(name)

    def list_enrollments(self, label_selector: str | None = None) -> list[Manifest]:
        self._refuse()
        return []

    def create_enrollment(self, manifest: Manifest) -> Manifest:
        self._refuse()
        return {}

    def config_map_data(self, namespace: str, name: str) -> dict[str, str] | None:
        self._refuse()
        return None


REACH = f"your kubeconfig's credentials reach only enrollment {ENROLLMENT}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report"], f"{REACH}; kubectl lab report needs an instructor's kubeconfig"),
        (["roadmap", "--enrollment", "k8s-basics-bob"], f"{REACH}, not enrollment k8s-basics-bob"),
        (
            ["public-key"],
            f"{REACH}, not the certificates' public keys; verify offline with kubectl lab "
            "verify FILE --key KEY.pem (the keys: kubectl lab public-key, run by an instructor)",
        ),
        (
            ["enroll", "bob", "--roadmap", ROADMAP],
            f"{REACH}; kubectl lab enroll needs an instructor's kubeconfig",
        ),
        (
            ["status", "bob-smoke"],
            f"{REACH} and its labs, not lab bob-smoke (see yours with: kubectl lab roadmap)",
        ),
    ],
)
def test_an_enrolled_learners_refusals_are_one_line(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    api = EnrolleeApi(ENROLLMENT, (f"{ENROLLMENT}-scale",), make_enrollment())
    api.roadmaps[ROADMAP] = make_roadmap()
    harness = with_kubeconfig(Harness(api), enrollee_kubeconfig(tmp_path))
    assert harness.run(*argv) == 1
    assert harness.err == f"error: {message}\n"


def test_a_lab_learners_refusals_on_roadmap_verbs(tmp_path: Path) -> None:
    api = FakeApi(make_lab())
    api.fail_with = api_error(403, "forbidden")
    harness = with_kubeconfig(Harness(api), lab_kubeconfig(tmp_path, "alice-smoke"))
    assert harness.run("report") == 1
    assert harness.err == (
        "error: your kubeconfig's credentials reach only lab alice-smoke; kubectl lab report "
        "needs an instructor's kubeconfig\n"
    )
    harness = with_kubeconfig(Harness(api), lab_kubeconfig(tmp_path, "alice-smoke"))
    assert harness.run("certificate", "--enrollment", ENROLLMENT) == 1
    assert harness.err == (
        "error: your kubeconfig's credentials reach only lab alice-smoke; kubectl lab "
        "certificate needs the enrollment's kubeconfig (an instructor makes it: kubectl lab "
        "kubeconfig --enrollment NAME)\n"
    )


def test_roadmap_refusal_message_without_a_learners_kubeconfig() -> None:
    nobody = kubeconfig_lab.KubeconfigLab("admin", None)
    assert kubeconfig_lab.roadmap_refusal_message("report", None, nobody) is None
    enrollee = kubeconfig_lab.KubeconfigLab("e", None, "e1")
    assert kubeconfig_lab.roadmap_refusal_message("next", "e1", enrollee) is None


# --- completion -----------------------------------------------------------------------------


COHORT = {"metadata": {"name": "spring"}, "spec": {"roadmap": ROADMAP, "learners": ["a", "b"]}}


def complete(words: list[str], own_enrollment: str | None = None) -> tuple[dict[str, str], int]:
    sources = completion.CompletionSources(
        labs=lambda _: [],
        catalog=lambda: {},
        contexts=lambda _: [],
        roadmaps=lambda _: [make_roadmap()],
        enrollments=lambda _: [make_enrollment(), make_enrollment("k8s-basics-bob", "bob")],
        cohorts=lambda _: [COHORT],
        kubeconfig_enrollment=lambda _: own_enrollment,
    )
    return completion.complete_words(cli.build_parser(), words, sources)


def test_completion_of_the_roadmap_verbs() -> None:
    assert complete(["enroll", "bob", "--roadmap", ""])[0] == {ROADMAP: "Kubernetes basics"}
    assert complete(["roadmap", ""])[0] == {ROADMAP: "Kubernetes basics"}
    assert complete(["kubeconfig", "--enrollment", "k8s-basics-b"])[0] == {
        "k8s-basics-bob": "bob on k8s-basics (1/3)"
    }
    assert complete(["report", "--cohort", ""])[0] == {"spring": "2 learners on k8s-basics"}
    milestones = complete(["next", "--enrollment", ENROLLMENT, ""])[0]
    assert milestones == {
        "gitops": "Coming",
        "hpa": "Available",
        "ingress": "Locked",
        "pods": "Completed",
        "scale": "Running",
    }
    assert list(complete(["certificate", "p"], own_enrollment=ENROLLMENT)[0]) == ["pods"]
    assert complete(["next", ""])[0] == {}  # no enrollment in view
    assert complete(["report", "-o", ""])[0].keys() == {"table", "csv", "json", "junit"}


def test_files_are_left_to_the_shell() -> None:
    for words in (["verify", ""], ["verify", "x", "--key", ""], ["cohort", "c", "--csv", ""]):
        assert complete(words)[1] == completion.DIRECTIVE_DEFAULT, words


def test_app_sources_give_an_enrolled_learner_their_enrollment(tmp_path: Path) -> None:
    api = EnrolleeApi(ENROLLMENT, (), make_enrollment())
    app = session.App(
        connect=lambda *_: api,
        catalog_dir=tmp_path,
        err=io.StringIO(),
        env={"KUBECONFIG": str(enrollee_kubeconfig(tmp_path))},
    )
    sources = completion.app_sources(app)
    args = argparse.Namespace(kubeconfig=None, context=None)
    assert sources.kubeconfig_enrollment(args) == ENROLLMENT
    assert [e["metadata"]["name"] for e in sources.enrollments(args)] == [ENROLLMENT]
    assert sources.roadmaps(args) == []


# --- LabClient: the requests it sends -------------------------------------------------------


class FakeResponse:
    """A urllib3 response as the generated client reads it."""

    def __init__(self, body: Manifest, status: int = 200) -> None:
        self.status, self.reason = status, "OK"
        self.data = json.dumps(body).encode()
        self.headers = {"content-type": "application/json"}

    def getheaders(self) -> dict[str, str]:
        return self.headers

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def read(self, *_: Any, **__: Any) -> bytes:
        return self.data

    def release_conn(self) -> None:
        pass


def recording_client(answer: Manifest, status: int = 200) -> tuple[Any, list[tuple[str, str, Any]]]:
    configuration = client.Configuration()
    configuration.host = "https://10.200.0.1:6443"
    api_client = client.ApiClient(configuration)
    calls: list[tuple[str, str, Any]] = []

    def request(method: str, url: str, **kwargs: Any) -> FakeResponse:
        calls.append((method, url, kwargs))
        return FakeResponse(answer, status)

    api_client.rest_client.pool_manager.request = request
    return LabClient(api_client), calls


def test_lab_client_applies_a_cohort_server_side() -> None:
    lab_client, calls = recording_client({"metadata": {"name": "spring"}})
    manifest = verbs_roadmap.cohort_manifest(
        "spring", verbs_roadmap.CohortSpec(roadmap=ROADMAP, learners=["alice"])
    )
    assert lab_client.apply_cohort(manifest) == {"metadata": {"name": "spring"}}
    [(method, url, kwargs)] = calls
    assert method == "PATCH"
    assert url == (
        "https://10.200.0.1:6443/apis/roadlab.dev/v1alpha1/cohorts/spring"
        "?fieldManager=kubectl-lab&force=true"
    )
    assert kwargs["headers"]["Content-Type"] == "application/apply-patch+yaml"
    assert json.loads(kwargs["body"]) == manifest


def test_lab_client_enrollments_and_config_maps() -> None:
    lab_client, calls = recording_client({"items": [make_enrollment()]})
    assert len(lab_client.list_enrollments("roadlab.dev/cohort=spring")) == 1
    assert calls[-1][1].endswith("/enrollments?labelSelector=roadlab.dev/cohort%3Dspring")
    lab_client.patch_enrollment(ENROLLMENT, roadmap_view.start_patch("1"))
    method, url, kwargs = calls[-1]
    assert (method, kwargs["headers"]["Content-Type"]) == ("PATCH", "application/merge-patch+json")
    assert url.endswith(f"/enrollments/{ENROLLMENT}")
    lab_client, calls = recording_client({"metadata": {"name": "k"}, "data": {"a.pem": "PEM"}})
    assert lab_client.config_map_data("roadlab-system", "k") == {"a.pem": "PEM"}
    assert calls[-1][1].endswith("/api/v1/namespaces/roadlab-system/configmaps/k")
    lab_client, _ = recording_client({"kind": "Status", "code": 404}, status=404)
    assert lab_client.config_map_data("roadlab-system", "k") is None
    assert lab_client.get_enrollment("nobody") is None
    assert lab_client.get_roadmap("nothing") is None
