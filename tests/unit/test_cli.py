"""The `kubectl lab` plugin: pure helpers, and the commands over a stand-in for LabClient."""

from __future__ import annotations

import copy
import importlib.metadata
import io
import json
import shutil
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml
from hypothesis import given
from hypothesis import strategies as st
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from roadlab.api import conditions, naming
from roadlab.catalog.loader import load_catalog
from roadlab.catalog.schema import LabDefinition, ParameterError
from roadlab.cli import app as cli
from roadlab.cli import common, output, parameters, session, verbs_labs, waiting

NOW = datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)
TOKEN = "2026-11-21T10:00:00.000Z"  # new_check_token(NOW)
REPO_ROOT = Path(__file__).resolve().parents[2]
REPO_LABS = REPO_ROOT / "labs"
ANN = naming.ANNOTATION_CHECK_REQUESTED

Manifest = dict[str, Any]


def ts(delta: timedelta) -> str:
    return (NOW + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def cond(type_: str, status: str, reason: str, message: str = "") -> Manifest:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": ts(timedelta(minutes=-5)),
    }


SCALE_TITLE = "Scale the web Deployment to 2 replicas"
ANSWER_TITLE = 'Create a ConfigMap named answer with data.answer set to "42"'
ANSWER_HINT = "kubectl create configmap answer --from-literal=answer=42"


def task(id_: str, title: str, state: str, message: str = "", hint: str | None = None) -> Manifest:
    result: Manifest = {"id": id_, "title": title, "state": state, "message": message}
    if hint is not None:
        result["hint"] = hint
    return result


def make_lab(
    name: str = "alice-smoke",
    learner: str = "alice",
    *,
    status: Manifest | None = None,
    created: timedelta = timedelta(minutes=-6),
) -> Manifest:
    lab: Manifest = {
        "apiVersion": naming.API_VERSION,
        "kind": naming.KIND,
        "metadata": {
            "name": name,
            "creationTimestamp": ts(created),
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {"lab": "smoke", "learner": learner, "ttl": "2h"},
    }
    if status is not None:
        lab["status"] = status
    return lab


def ready_status(
    tasks: list[Manifest] | None = None,
    last_check: Manifest | None = None,
    progress: str = "1/2",
) -> Manifest:
    status: Manifest = {
        "conditions": [
            cond("Ready", "True", "Ready", "the lab environment is ready"),
            cond("Provisioned", "True", "Provisioned", "all objects applied"),
            cond("Completed", "False", "TasksPending", "1 of 2 tasks passed"),
            cond("Expired", "False", "WithinTTL", "expires in 1h52m"),
        ],
        "namespace": "lab-alice-smoke",
        "progress": progress,
        "startedAt": ts(timedelta(minutes=-8)),
        "expiresAt": ts(timedelta(hours=1, minutes=52)),
        "tasks": tasks
        if tasks is not None
        else [
            task("scale-web", SCALE_TITLE, "Passed", "spec.replicas is 2"),
            task(
                "configmap-answer",
                ANSWER_TITLE,
                "Failed",
                "ConfigMap answer not found",
                ANSWER_HINT,
            ),
        ],
    }
    if last_check is not None:
        status["lastCheck"] = last_check
    return status


def with_conditions(status: Manifest, *conditions: Manifest) -> Manifest:
    result = copy.deepcopy(status)
    replaced = {c["type"] for c in conditions}
    result["conditions"] = [c for c in result["conditions"] if c["type"] not in replaced] + list(
        conditions
    )
    return result


def api_error(status: int, message: str = "") -> ApiException:
    body = json.dumps({"kind": "Status", "message": message, "code": status})
    return ApiException(status=status, reason="x", body=body)


class FakeApi:
    """Stand-in for the LabClient methods the CLI uses; records every call."""

    def __init__(self, *labs: Manifest) -> None:
        self.labs: dict[str, Manifest] = {lab["metadata"]["name"]: lab for lab in labs}
        # Successive answers of get_lab per name (the last one repeats), for waits.
        self.script: dict[str, list[Manifest | None]] = {}
        self.gets = 0
        self.created: list[Manifest] = []
        self.patches: list[tuple[str, Manifest]] = []
        self.deleted: list[str] = []
        self.tokens: list[tuple[str, str, int]] = []
        self.fail_with: Exception | None = None
        self.after_patch: Callable[[str], None] | None = None
        # What successive watch_lab calls give: the Labs of one stream, or an error to raise
        # (none left: a stream that ends at once, as a server's watch timeout ends it).
        self.watches: list[list[Manifest] | Exception] = []
        self.watch_calls: list[tuple[str, int]] = []
        # Roadmaps, Enrollments, Cohorts and ConfigMaps ((namespace, name) -> data).
        self.roadmaps: dict[str, Manifest] = {}
        self.enrollments: dict[str, Manifest] = {}
        self.cohorts: dict[str, Manifest] = {}
        self.config_maps: dict[tuple[str, str], dict[str, str]] = {}
        # Successive answers of get_enrollment per name (the last one repeats), for waits.
        self.enrollment_script: dict[str, list[Manifest | None]] = {}
        self.enrollment_patches: list[tuple[str, Manifest]] = []
        self.after_enrollment_patch: Callable[[str], None] | None = None
        self.enrollment_selectors: list[str | None] = []
        self.applied: list[Manifest] = []

    def _maybe_fail(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    def get_lab(self, name: str) -> Manifest | None:
        self._maybe_fail()
        self.gets += 1
        answers = self.script.get(name)
        if answers:
            return answers.pop(0) if len(answers) > 1 else answers[0]
        return copy.deepcopy(self.labs.get(name))

    def list_labs(self) -> list[Manifest]:
        self._maybe_fail()
        return [copy.deepcopy(lab) for lab in self.labs.values()]

    def create_lab(self, manifest: Manifest) -> Manifest:
        self._maybe_fail()
        name = manifest["metadata"]["name"]
        if name in self.labs:
            raise api_error(409, f'labs.roadlab.dev "{name}" already exists')
        self.created.append(copy.deepcopy(manifest))
        stored = copy.deepcopy(manifest)
        stored["metadata"]["creationTimestamp"] = ts(timedelta(0))
        self.labs[name] = stored
        return copy.deepcopy(stored)

    def patch_lab(self, name: str, patch: Manifest) -> Manifest:
        self._maybe_fail()
        if name not in self.labs:
            raise api_error(404, f'labs.roadlab.dev "{name}" not found')
        self.patches.append((name, copy.deepcopy(patch)))
        annotations = self.labs[name]["metadata"].setdefault("annotations", {})
        annotations.update(patch["metadata"]["annotations"])
        if self.after_patch is not None:
            self.after_patch(name)
        return copy.deepcopy(self.labs[name])

    def delete_lab(self, name: str) -> bool:
        self._maybe_fail()
        self.deleted.append(name)
        return self.labs.pop(name, None) is not None

    def watch_lab(self, name: str, timeout_seconds: int) -> Iterator[Manifest]:
        self._maybe_fail()
        self.watch_calls.append((name, timeout_seconds))
        stream = self.watches.pop(0) if self.watches else []
        if isinstance(stream, Exception):
            raise stream
        for lab in stream:
            yield copy.deepcopy(lab)

    def create_service_account_token(
        self, namespace: str, service_account: str, expiration_seconds: int
    ) -> tuple[str, str | None]:
        self._maybe_fail()
        self.tokens.append((namespace, service_account, expiration_seconds))
        return "token-abc", ts(timedelta(seconds=expiration_seconds))

    def kubeconfig_cluster(self) -> Manifest:
        return {"server": "https://10.200.0.1:6443", "certificate-authority-data": "Q0EK"}

    def config_map_data(self, namespace: str, name: str) -> dict[str, str] | None:
        self._maybe_fail()
        found = self.config_maps.get((namespace, name))
        return dict(found) if found is not None else None

    def get_roadmap(self, name: str) -> Manifest | None:
        self._maybe_fail()
        return copy.deepcopy(self.roadmaps.get(name))

    def list_roadmaps(self) -> list[Manifest]:
        self._maybe_fail()
        return [copy.deepcopy(roadmap) for roadmap in self.roadmaps.values()]

    def get_enrollment(self, name: str) -> Manifest | None:
        self._maybe_fail()
        answers = self.enrollment_script.get(name)
        if answers:
            return answers.pop(0) if len(answers) > 1 else answers[0]
        return copy.deepcopy(self.enrollments.get(name))

    def list_enrollments(self, label_selector: str | None = None) -> list[Manifest]:
        self._maybe_fail()
        self.enrollment_selectors.append(label_selector)
        found = list(self.enrollments.values())
        if label_selector is not None:
            key, _, value = label_selector.partition("=")
            found = [e for e in found if (e["metadata"].get("labels") or {}).get(key) == value]
        return [copy.deepcopy(enrollment) for enrollment in found]

    def create_enrollment(self, manifest: Manifest) -> Manifest:
        self._maybe_fail()
        name = manifest["metadata"]["name"]
        if name in self.enrollments:
            raise api_error(409, f'enrollments.roadlab.dev "{name}" already exists')
        self.created.append(copy.deepcopy(manifest))
        stored = copy.deepcopy(manifest)
        stored["metadata"]["creationTimestamp"] = ts(timedelta(0))
        self.enrollments[name] = stored
        return copy.deepcopy(stored)

    def patch_enrollment(self, name: str, patch: Manifest) -> Manifest:
        self._maybe_fail()
        if name not in self.enrollments:
            raise api_error(404, f'enrollments.roadlab.dev "{name}" not found')
        self.enrollment_patches.append((name, copy.deepcopy(patch)))
        annotations = self.enrollments[name]["metadata"].setdefault("annotations", {})
        annotations.update(patch["metadata"]["annotations"])
        if self.after_enrollment_patch is not None:
            self.after_enrollment_patch(name)
        return copy.deepcopy(self.enrollments[name])

    def list_cohorts(self) -> list[Manifest]:
        self._maybe_fail()
        return [copy.deepcopy(cohort) for cohort in self.cohorts.values()]

    def apply_cohort(self, manifest: Manifest) -> Manifest:
        self._maybe_fail()
        self.applied.append(copy.deepcopy(manifest))
        self.cohorts[manifest["metadata"]["name"]] = copy.deepcopy(manifest)
        return copy.deepcopy(manifest)


class Utf8Out(io.StringIO):
    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


class TtyErr(io.StringIO):
    def isatty(self) -> bool:
        return True


class Harness:
    """An App over a FakeApi with captured streams and a fake clock."""

    default_catalog = REPO_LABS  # set per test by the catalog_dir fixture

    def __init__(
        self,
        api: FakeApi,
        *,
        catalog_dir: Path | None = None,
        out: io.StringIO | None = None,
        err: io.StringIO | None = None,
    ) -> None:
        self.api = api
        self.clock = 0.0
        self.sleeps: list[float] = []
        self.connected: list[tuple[str | None, str | None]] = []
        self.app = session.App(
            connect=self._connect,
            catalog_dir=catalog_dir or self.default_catalog,
            out=out or io.StringIO(),
            err=err or io.StringIO(),
            now=lambda: NOW,
            monotonic=lambda: self.clock,
            sleep=self._sleep,
            # No kubeconfig: a command without a lab name finds no lab in one.
            env={"USER": "alice", "HOME": "/nonexistent-home"},
        )

    def _connect(self, kubeconfig: str | None, context: str | None) -> FakeApi:
        self.connected.append((kubeconfig, context))
        return self.api

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock += seconds

    def run(self, *argv: str) -> int:
        return cli.run(self.app, list(argv))

    @property
    def out(self) -> str:
        return self.app.out.getvalue()  # type: ignore[attr-defined, no-any-return]

    @property
    def err(self) -> str:
        return self.app.err.getvalue()  # type: ignore[attr-defined, no-any-return]


@pytest.fixture(autouse=True)
def catalog_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A catalog of just the smoke lab, so that labs added to the repo change no output."""
    root = tmp_path_factory.mktemp("labs")
    shutil.copytree(REPO_LABS / "smoke", root / "smoke")
    Harness.default_catalog = root
    return root


@pytest.fixture
def smoke_definition(catalog_dir: Path) -> LabDefinition:
    return load_catalog(catalog_dir)["smoke"]


# --- names and parameters -------------------------------------------------------------------


def test_default_name_is_learner_dash_lab_sanitized() -> None:
    assert parameters.default_lab_name("Alice.Smith@Example.com", "smoke") == (
        "alice-smith-example-com-smoke"
    )
    assert parameters.default_lab_name("__", "smoke") == "smoke"


def test_long_learner_is_shortened_but_the_lab_id_is_kept() -> None:
    name = parameters.default_lab_name("a" * 63, "istio-traffic-management")
    assert len(name) == naming.MAX_LAB_NAME_LENGTH
    assert name.endswith("-istio-traffic-management")
    assert parameters.valid_lab_name(name)


@given(
    learner=st.text(max_size=80),
    lab_id=st.from_regex(r"[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?", fullmatch=True),
)
def test_default_name_is_always_a_valid_lab_name(learner: str, lab_id: str) -> None:
    name = parameters.default_lab_name(learner, lab_id)
    assert parameters.valid_lab_name(name)
    naming.namespace_for(name)  # does not raise


@pytest.mark.parametrize(
    ("raw", "declared", "expected"),
    [
        ("3", "integer", 3),
        (" -2 ", "integer", -2),
        ("true", "boolean", True),
        ("No", "boolean", False),
        ("1", "boolean", True),
        ("42", "string", "42"),
        ("true", "string", "true"),
        ("7", None, 7),
        ("false", None, False),
        ("hi there", None, "hi there"),
    ],
)
def test_parameters_are_typed_by_their_declaration(
    raw: str, declared: str | None, expected: object
) -> None:
    value = parameters.type_parameter("p", raw, declared)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(("raw", "declared"), [("2.5", "integer"), ("maybe", "boolean")])
def test_mistyped_parameters_are_rejected(raw: str, declared: str) -> None:
    with pytest.raises(ParameterError, match="parameter 'p'"):
        parameters.type_parameter("p", raw, declared)


def test_parse_parameters_uses_the_catalog(smoke_definition: LabDefinition) -> None:
    assert parameters.parse_parameters(["replicas=2", "greeting=hi there"], smoke_definition) == {
        "replicas": 2,
        "greeting": "hi there",
    }
    assert parameters.parse_parameters([], smoke_definition) == {}


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["replicas"], "expected NAME=VALUE"),
        (["=3"], "expected NAME=VALUE"),
        (["replicas=1", "replicas=2"], "more than once"),
        (["colour=red"], r"unknown parameter\(s\) colour for lab smoke \(declared: greeting"),
        (["replicas=9"], "expected an integer >= 1 and <= 3"),
        (["greeting=HELLO"], "matching"),
    ],
)
def test_parse_parameters_rejects_bad_input(
    smoke_definition: LabDefinition, pairs: list[str], message: str
) -> None:
    with pytest.raises(ParameterError, match=message):
        parameters.parse_parameters(pairs, smoke_definition)


def test_without_a_catalog_parameter_types_are_inferred() -> None:
    assert parameters.parse_parameters(["n=3", "on=true", "s=x=y"], None) == {
        "n": 3,
        "on": True,
        "s": "x=y",
    }


def test_lab_manifest() -> None:
    assert parameters.lab_manifest("bob-smoke", "smoke", "bob", "90m", {"replicas": 2}) == {
        "apiVersion": "roadlab.dev/v1alpha1",
        "kind": "Lab",
        "metadata": {"name": "bob-smoke"},
        "spec": {"lab": "smoke", "learner": "bob", "ttl": "90m", "parameters": {"replicas": 2}},
    }
    with pytest.raises(ValidationError, match="ttl"):
        parameters.lab_manifest("bob-smoke", "smoke", "bob", "8d", {})


# --- formatting -----------------------------------------------------------------------------


def test_format_table_aligns_columns_without_trailing_blanks() -> None:
    table = output.format_table(("A", "LONGER", "C"), [["xyz", "1", ""], ["p", "22", "q"]])
    assert table == "A     LONGER   C\nxyz   1\np     22       q\n"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (59.9, "59s"),
        (60, "1m"),
        (3599, "59m"),
        (3600, "1h"),
        (6720, "1h52m"),
        (86399, "23h59m"),
        (86400, "1d"),
        (2 * 86400 + 4 * 3600 + 59, "2d4h"),
        (-125, "2m"),
    ],
)
def test_short_duration(seconds: float, text: str) -> None:
    assert output.short_duration(seconds) == text


def test_relative_time() -> None:
    assert output.relative_time(NOW + timedelta(hours=1, minutes=52), NOW) == "in 1h52m"
    assert output.relative_time(NOW - timedelta(minutes=3), NOW) == "3m ago"
    assert output.relative_or_dash(None, NOW) == "-"
    assert output.relative_or_dash("garbage", NOW) == "-"
    assert output.age(ts(timedelta(seconds=30)), NOW) == "0s"  # clock skew: never negative


def test_task_marks_fall_back_to_ascii() -> None:
    states = ["Passed", "Failed", "Error", "Pending", "Weird"]
    assert [output.task_mark(s, True) for s in states] == ["✓", "✗", "!", "·", "·"]
    assert [output.task_mark(s, False) for s in states] == ["+", "x", "!", ".", "."]
    assert output.uses_unicode(Utf8Out())
    assert not output.uses_unicode(io.StringIO())


def test_format_list() -> None:
    labs = [
        make_lab("bob-smoke", "bob", created=timedelta(seconds=-30)),
        make_lab(status=ready_status()),
    ]
    assert output.format_list(labs, NOW) == (
        "NAME          LAB     LEARNER   READY   PROGRESS   EXPIRES    AGE\n"
        "alice-smoke   smoke   alice     True    1/2        in 1h52m   6m\n"
        "bob-smoke     smoke   bob       -       -          -          30s\n"
    )


def test_format_status_ascii() -> None:
    last = {
        "token": "t1",
        "job": "check-alice-smoke-1",
        "state": "Failed",
        "requestedAt": ts(timedelta(minutes=-3)),
        "finishedAt": ts(timedelta(minutes=-2)),
    }
    lab = make_lab(status=ready_status(last_check=last))
    assert output.format_status(lab, NOW, unicode=False) == (
        "Lab:         alice-smoke\n"
        "Catalog lab: smoke\n"
        "Learner:     alice\n"
        "Namespace:   lab-alice-smoke\n"
        "Ready:       True (Ready)\n"
        "Completed:   False (TasksPending): 1 of 2 tasks passed\n"
        "Progress:    1/2\n"
        "Expires:     in 1h52m (2026-11-21T11:52:00Z)\n"
        "Last check:  Failed, finished 2m ago\n"
        "\n"
        "Tasks:\n"
        f"  + scale-web          {SCALE_TITLE}\n"
        f"  x configmap-answer   {ANSWER_TITLE}\n"
        "      ConfigMap answer not found\n"
        f"      hint: {ANSWER_HINT}\n"
    )


def test_format_status_unicode_error_and_pending_tasks() -> None:
    tasks = [
        task("a", "First", "Error", "probe crashed:\ntimeout", "multi\nline hint"),
        task("bb", "Second", "Pending"),
        task("c", "Third", "Passed", "ok", "never shown"),
    ]
    last = {"token": "t", "job": "check-x", "state": "Running", "requestedAt": ts(timedelta(0))}
    text = output.format_status(make_lab(status=ready_status(tasks, last)), NOW, unicode=True)
    assert "Last check:  Running (job check-x, requested in 0s)\n" in text
    assert text.endswith(
        "Tasks:\n"
        "  ! a    First\n"
        "      probe crashed:\n"
        "      timeout\n"
        "      hint: multi\n"
        "            line hint\n"
        "  · bb   Second\n"
        "  ✓ c    Third\n"
    )


def test_format_status_of_a_failed_lab_without_tasks() -> None:
    status = {
        "conditions": [
            cond("Ready", "False", "InvalidParameters", "parameter 'replicas': got 9"),
        ]
    }
    text = output.format_status(make_lab(status=status), NOW, unicode=False)
    assert "Ready:       False (InvalidParameters): parameter 'replicas': got 9\n" in text
    assert "Completed:   -\n" in text
    assert "Namespace:   -\n" in text
    assert "Last check:  never\n" in text
    assert text.endswith("\nTasks: none reported yet\n")


def test_format_catalog(catalog_dir: Path) -> None:
    assert output.format_catalog(load_catalog(catalog_dir)) == (
        "ID      TITLE        DIFFICULTY   DURATION   PREREQUISITES   TASKS\n"
        "smoke   Smoke test   beginner     5m         -               2\n"
    )


def test_format_catalog_entry(smoke_definition: LabDefinition) -> None:
    text = output.format_catalog_entry(smoke_definition)
    assert text.startswith("ID:          smoke\nTitle:       Smoke test\n")
    assert (
        "Parameters:\n"
        "  NAME       TYPE      DEFAULT   DESCRIPTION\n"
        '  greeting   string    "hello"   Text served in the welcome ConfigMap.\n'
        "  replicas   integer   1         Initial replicas of the web Deployment.\n"
    ) in text
    assert text.endswith(
        f"Tasks:\n  1. scale-web: {SCALE_TITLE}\n  2. configmap-answer: {ANSWER_TITLE}\n"
    )


# --- checks, waits, exit codes --------------------------------------------------------------


def test_check_token_is_utc_with_milliseconds() -> None:
    moment = datetime(2026, 11, 21, 11, 0, 0, 123456, tzinfo=UTC) + timedelta(0)
    assert waiting.new_check_token(moment) == "2026-11-21T11:00:00.123Z"
    assert waiting.new_check_token(NOW) == TOKEN
    assert waiting.check_patch("t") == {"metadata": {"annotations": {ANN: "t"}}}


@pytest.mark.parametrize(
    ("states", "run_state", "code"),
    [
        (["Passed", "Passed"], "Passed", 0),
        (["Passed", "Failed"], "Failed", 1),
        (["Passed", "Passed"], "TimedOut", 1),
        (["Passed", "Error"], "Error", 1),
    ],
)
def test_check_exit_code(states: list[str], run_state: str, code: int) -> None:
    tasks = [task(f"t{i}", "T", s) for i, s in enumerate(states)]
    last = {"token": "x", "job": "j", "state": run_state, "finishedAt": ts(timedelta(0))}
    assert waiting.check_exit_code(make_lab(status=ready_status(tasks, last))) == code


def test_start_wait_step() -> None:
    provisioning = {
        "conditions": [cond("Ready", "Unknown", "Provisioning", "creating the namespace")]
    }
    assert waiting.start_wait_step(make_lab()) == waiting.WaitStep(
        False, reason="Pending", message="waiting for the operator"
    )
    assert waiting.start_wait_step(make_lab(status=provisioning)) == waiting.WaitStep(
        False, reason="Provisioning", message="creating the namespace"
    )
    assert waiting.start_wait_step(make_lab(status=ready_status())) == waiting.WaitStep(
        True, 0, "Ready", "the lab environment is ready"
    )
    prerequisite = {"conditions": [cond("Ready", "False", "PrerequisiteMissing", "no metrics")]}
    assert not waiting.start_wait_step(
        make_lab(status=prerequisite)
    ).done  # retried by the operator
    for reason in ("UnknownLab", "InvalidParameters", "InvalidSpec", "RenderFailed"):
        failed = {"conditions": [cond("Ready", "False", reason, "why")]}
        assert waiting.start_wait_step(make_lab(status=failed)) == waiting.WaitStep(
            True, 1, reason, "why"
        )
    expired = with_conditions(ready_status(), cond("Expired", "True", "Expired", "ttl 2h over"))
    assert waiting.start_wait_step(make_lab(status=expired)) == waiting.WaitStep(
        True, 1, "Expired", "ttl 2h over"
    )
    assert waiting.start_wait_step(None).exit_code == common.EXIT_NOT_FOUND


def test_check_wait_step() -> None:
    def lab_with(last: Manifest | None, annotation: str = TOKEN, **kwargs: Any) -> Manifest:
        lab = make_lab(status=ready_status(last_check=last, **kwargs))
        lab["metadata"]["annotations"] = {ANN: annotation}
        return lab

    finished = ts(timedelta(seconds=5))
    old = {"token": "older", "job": "j0", "state": "Passed", "finishedAt": finished}
    running = {"token": TOKEN, "job": "check-j1", "state": "Running"}
    failed = {**running, "state": "Failed", "finishedAt": finished}
    assert waiting.check_wait_step(lab_with(old), TOKEN) == waiting.WaitStep(
        False, reason="Requested", message="waiting for the operator to start the check"
    )
    assert waiting.check_wait_step(lab_with(running), TOKEN) == waiting.WaitStep(
        False, reason="Running", message="check job check-j1 is running"
    )
    assert waiting.check_wait_step(lab_with(failed), TOKEN) == waiting.WaitStep(
        True, 1, "Failed", ""
    )
    passed_tasks = [task("a", "A", "Passed"), task("b", "B", "Passed")]
    passed = {**failed, "state": "Passed"}
    assert waiting.check_wait_step(lab_with(passed, tasks=passed_tasks), TOKEN).exit_code == 0
    # Someone asked again after us: their finished run answers our request too.
    newer = {**passed, "token": "newer"}
    assert waiting.check_wait_step(lab_with(newer, "newer", tasks=passed_tasks), TOKEN).done
    not_ready = make_lab(status={"conditions": [cond("Ready", "Unknown", "Provisioning", "")]})
    assert waiting.check_wait_step(not_ready, TOKEN).message == (
        "waiting for the operator to start the check (lab not ready: Provisioning)"
    )


def test_spinner_line_keeps_the_elapsed_time_when_cut() -> None:
    assert waiting.spinner_line(0, "lab Provisioning", "creating", 3.7, 80, False) == (
        "| lab Provisioning: creating (3s)"
    )
    assert waiting.spinner_line(1, "r", "", 0, 80, True) == "⠙ r (0s)"
    line = waiting.spinner_line(2, "lab Provisioning", "x" * 200, 12, 40, False)
    assert line == "- lab Provisioning: xxxxxxxxxx... (12s)"
    assert len(line) == 39
    assert waiting.plain_progress_line("Provisioning", "creating", 12.5) == (
        "[  12s] Provisioning: creating"
    )


def test_token_lifetime_is_bounded_by_the_lab_expiry_and_the_api_minimum() -> None:
    in_1h = ts(timedelta(hours=1))
    assert verbs_labs.token_lifetime(timedelta(minutes=30), in_1h, NOW) == 1800
    assert verbs_labs.token_lifetime(timedelta(hours=2), in_1h, NOW) == 3600
    assert verbs_labs.token_lifetime(timedelta(hours=2), None, NOW) == 7200
    assert verbs_labs.token_lifetime(timedelta(minutes=1), in_1h, NOW) == 600
    assert verbs_labs.token_lifetime(timedelta(hours=1), ts(timedelta(minutes=2)), NOW) == 600
    with pytest.raises(common.CliError, match="expired"):
        verbs_labs.token_lifetime(timedelta(hours=1), ts(timedelta(seconds=-1)), NOW)


def test_build_kubeconfig_is_loadable_by_a_kubernetes_client() -> None:
    cluster = {"server": "https://10.200.0.1:6443", "insecure-skip-tls-verify": True}
    document = verbs_labs.build_kubeconfig("alice-smoke", "lab-alice-smoke", cluster, "tok")
    assert document == {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "roadlab-alice-smoke", "cluster": cluster}],
        "users": [{"name": "roadlab-alice-smoke-learner", "user": {"token": "tok"}}],
        "contexts": [
            {
                "name": "roadlab-alice-smoke",
                "context": {
                    "cluster": "roadlab-alice-smoke",
                    "user": "roadlab-alice-smoke-learner",
                    "namespace": "lab-alice-smoke",
                    # The lab's name, so that `kubectl lab status` needs none.
                    "extensions": [
                        {"name": "roadlab.dev/lab", "extension": {"lab": "alice-smoke"}}
                    ],
                },
            }
        ],
        "current-context": "roadlab-alice-smoke",
        "preferences": {},
    }
    configuration = client.Configuration()
    config.load_kube_config_from_dict(document, client_configuration=configuration)  # type: ignore[no-untyped-call]
    assert configuration.host == "https://10.200.0.1:6443"
    assert list(configuration.api_key.values()) == ["Bearer tok"]


@pytest.mark.parametrize(
    ("status", "lab", "expected"),
    [
        (404, "x", ("lab x not found", 3)),
        (404, None, ("not found: gone (is the Roadlab CRD installed?)", 3)),
        (403, "x", ("not allowed: gone", 1)),
        (
            401,
            "x",
            (
                "unauthorized: the API server rejected your credentials (check your kubeconfig)",
                1,
            ),
        ),
        (409, "x", ("conflict: gone", 1)),
        (422, "x", ("invalid: gone", 1)),
        (500, "x", ("API error 500: gone", 1)),
    ],
)
def test_api_error_message(status: int, lab: str | None, expected: tuple[str, int]) -> None:
    body = json.dumps({"message": "gone"})
    assert common.api_error_message(status, body, lab) == expected


def test_api_error_message_with_a_non_json_body() -> None:
    assert common.api_error_message(502, "Bad Gateway\nmore", None) == (
        "API error 502: Bad Gateway",
        1,
    )


# --- commands -------------------------------------------------------------------------------


def test_catalog_command_text_and_json() -> None:
    harness = Harness(FakeApi())
    assert harness.run("catalog") == 0
    assert harness.out.startswith("ID      TITLE        DIFFICULTY")
    assert harness.connected == []  # no cluster needed

    harness = Harness(FakeApi())
    assert harness.run("-o", "json", "catalog") == 0
    entries = json.loads(harness.out)
    assert [e["id"] for e in entries] == ["smoke"]
    assert entries[0]["parameters"]["replicas"] == {
        "type": "integer",
        "description": "Initial replicas of the web Deployment.",
        "default": 1,
        "minimum": 1,
        "maximum": 3,
    }
    assert [t["id"] for t in entries[0]["tasks"]] == ["scale-web", "configmap-answer"]

    harness = Harness(FakeApi())
    assert harness.run("-o", "json", "catalog", "smoke") == 0
    assert json.loads(harness.out)["title"] == "Smoke test"


def test_a_broken_catalog_entry_is_skipped_with_a_warning(catalog_dir: Path) -> None:
    broken = catalog_dir / "broken"
    broken.mkdir()
    (broken / "lab.yaml").write_text("id: broken\n")
    try:
        harness = Harness(FakeApi())
        assert harness.run("catalog") == 0
        assert harness.out.splitlines()[1].startswith("smoke ")
        assert harness.err.startswith("warning: skipping a broken catalog entry: ")
        assert "broken/lab.yaml" in harness.err
    finally:
        shutil.rmtree(broken)


def test_catalog_errors(tmp_path: Path) -> None:
    harness = Harness(FakeApi())
    assert harness.run("catalog", "nope") == 3
    assert harness.err == "error: catalog lab nope not found (known: smoke)\n"
    harness = Harness(FakeApi(), catalog_dir=tmp_path / "missing")
    assert harness.run("catalog") == 1
    assert "catalog directory does not exist" in harness.err
    assert "ROADLAB_CATALOG" in harness.err


def test_start_creates_a_typed_lab() -> None:
    api = FakeApi()
    harness = Harness(api)
    code = harness.run(
        "--kubeconfig", "/k", "--context", "c", "start", "smoke",
        "--param", "replicas=2", "--param", "greeting=hi there", "--ttl", "90m",
    )  # fmt: skip
    assert code == 0
    assert harness.connected == [("/k", "c")]
    assert api.created == [
        {
            "apiVersion": "roadlab.dev/v1alpha1",
            "kind": "Lab",
            "metadata": {"name": "alice-smoke"},
            "spec": {
                "lab": "smoke",
                "learner": "alice",
                "ttl": "90m",
                "parameters": {"replicas": 2, "greeting": "hi there"},
            },
        }
    ]
    assert harness.out == (
        "lab alice-smoke created (lab smoke for alice, ttl 90m)\n"
        "follow it with: kubectl lab status alice-smoke\n"
    )
    assert harness.err == ""


def test_start_with_name_and_learner_and_json_output() -> None:
    api = FakeApi()
    harness = Harness(api)
    assert harness.run("-o", "json", "start", "smoke", "--learner", "bob@example.com") == 0
    created = json.loads(harness.out)
    assert created["metadata"]["name"] == "bob-example-com-smoke"
    assert created["spec"]["learner"] == "bob@example.com"
    assert "parameters" not in created["spec"] or created["spec"]["parameters"] == {}

    harness = Harness(FakeApi())
    assert harness.run("start", "smoke", "--name", "mine") == 0
    assert harness.out.startswith("lab mine created")


@pytest.mark.parametrize(
    ("argv", "code", "error"),
    [
        (["start", "smoke", "--param", "replicas=9"], 2, "expected an integer >= 1 and <= 3"),
        (["start", "smoke", "--param", "size=1"], 2, "unknown parameter(s) size"),
        (["start", "smoke", "--ttl", "8d"], 2, "invalid lab: ttl: Value error, ttl '8d'"),
        (["start", "smoke", "--name", "Bad.Name"], 2, "lab name 'Bad.Name' must be"),
        (["start", "smoke", "--learner", "no spaces"], 2, "not a valid learner id"),
        (["start", "nope"], 3, "catalog lab nope not found (known: smoke)"),
    ],
)
def test_start_rejects_bad_input_before_calling_the_api(
    argv: list[str], code: int, error: str
) -> None:
    api = FakeApi()
    harness = Harness(api)
    assert harness.run(*argv) == code
    assert harness.err.startswith("error: ")
    assert error in harness.err
    assert harness.err.count("\n") == 1
    assert api.created == []


def test_start_of_an_existing_lab() -> None:
    harness = Harness(FakeApi(make_lab()))
    assert harness.run("start", "smoke") == 1
    assert harness.err == "error: lab alice-smoke already exists\n"


@pytest.mark.parametrize("where", ["missing", "."])
def test_start_without_a_catalog_infers_parameter_types(tmp_path: Path, where: str) -> None:
    api = FakeApi()
    harness = Harness(api, catalog_dir=tmp_path / where)
    assert harness.run("start", "anything", "--param", "replicas=2") == 0
    assert api.created[0]["spec"]["parameters"] == {"replicas": 2}
    assert harness.err.startswith("note: no lab catalog at")


def test_start_wait_until_ready_shows_each_change_once() -> None:
    api = FakeApi()
    provisioning = make_lab(
        status={"conditions": [cond("Ready", "Unknown", "Provisioning", "applying objects")]}
    )
    api.script["alice-smoke"] = [
        make_lab(),
        copy.deepcopy(provisioning),
        copy.deepcopy(provisioning),
        make_lab(status=ready_status()),
    ]
    harness = Harness(api)
    assert harness.run("start", "smoke", "--wait") == 0
    assert harness.err == (
        "[   0s] alice-smoke Pending: waiting for the operator\n"
        "[   1s] alice-smoke Provisioning: applying objects\n"
    )
    assert harness.out.endswith(
        "lab alice-smoke is ready in namespace lab-alice-smoke\n"
        "get a kubeconfig: kubectl lab kubeconfig alice-smoke > alice-smoke.kubeconfig\n"
    )
    assert harness.sleeps == [1.0, 1.0, 1.0]


def test_start_wait_on_a_tty_draws_a_spinner() -> None:
    api = FakeApi()
    api.script["alice-smoke"] = [make_lab(), make_lab(status=ready_status())]
    harness = Harness(api, err=TtyErr())
    assert harness.run("start", "smoke", "--wait") == 0
    frames = "".join(
        f"\r\x1b[K{frame} alice-smoke Pending: waiting for the operator (0s)" for frame in "|/-\\"
    )
    assert harness.err == frames + "\r\x1b[K"  # redrawn in place, then cleared
    assert harness.sleeps == [0.25] * 4  # one poll per second, four frames in between


def test_start_wait_stops_at_a_permanent_failure() -> None:
    api = FakeApi()
    failed = {"conditions": [cond("Ready", "False", "RenderFailed", "templates/app.yaml: boom")]}
    api.script["alice-smoke"] = [make_lab(status=failed)]
    harness = Harness(api)
    assert harness.run("start", "smoke", "--wait") == 1
    assert harness.err == "error: lab alice-smoke failed: RenderFailed: templates/app.yaml: boom\n"


def test_start_wait_json_prints_the_final_lab() -> None:
    api = FakeApi()
    api.script["alice-smoke"] = [make_lab(status=ready_status())]
    harness = Harness(api)
    assert harness.run("-o", "json", "start", "smoke", "--wait") == 0
    lab = json.loads(harness.out)
    assert lab["status"]["namespace"] == "lab-alice-smoke"
    assert "managedFields" not in lab["metadata"]


def test_start_wait_times_out() -> None:
    api = FakeApi()
    api.script["alice-smoke"] = [make_lab()]
    harness = Harness(api)
    assert harness.run("start", "smoke", "--wait", "--timeout", "3") == 4
    assert harness.err.endswith(
        "error: timed out after 3s waiting for lab alice-smoke to become ready "
        "(last: Pending: waiting for the operator)\n"
    )
    assert sum(harness.sleeps) == 3


def test_list_command() -> None:
    api = FakeApi(
        make_lab(status=ready_status()),
        make_lab("bob-smoke", "bob", created=timedelta(seconds=-30)),
    )
    harness = Harness(api)
    assert harness.run("list") == 0
    assert harness.out == (
        "NAME          LAB     LEARNER   READY   PROGRESS   EXPIRES    AGE\n"
        "alice-smoke   smoke   alice     True    1/2        in 1h52m   6m\n"
        "bob-smoke     smoke   bob       -       -          -          30s\n"
    )
    harness = Harness(api)
    assert harness.run("list", "--learner", "bob") == 0
    assert harness.out == (
        "NAME        LAB     LEARNER   READY   PROGRESS   EXPIRES   AGE\n"
        "bob-smoke   smoke   bob       -       -          -         30s\n"
    )
    harness = Harness(api)
    assert harness.run("list", "--learner", "carol") == 0
    assert (harness.out, harness.err) == ("", "no labs found\n")


def test_list_json() -> None:
    harness = Harness(FakeApi(make_lab("b", "bob"), make_lab("a")))
    assert harness.run("-o", "json", "list") == 0
    listing = json.loads(harness.out)
    assert listing["kind"] == "List"
    assert [item["metadata"]["name"] for item in listing["items"]] == ["a", "b"]
    assert all("managedFields" not in item["metadata"] for item in listing["items"])


def test_status_command() -> None:
    lab = make_lab(status=ready_status())
    harness = Harness(FakeApi(lab))
    assert harness.run("status", "alice-smoke") == 0
    assert harness.out == output.format_status(lab, NOW, unicode=False)
    harness = Harness(FakeApi(lab), out=Utf8Out())
    assert harness.run("status", "alice-smoke") == 0
    assert "  ✗ configmap-answer" in harness.out
    harness = Harness(FakeApi(lab))
    assert harness.run("-o", "json", "status", "alice-smoke") == 0
    assert json.loads(harness.out)["status"] == lab["status"]


def test_status_of_a_missing_lab() -> None:
    harness = Harness(FakeApi())
    assert harness.run("status", "nope") == 3
    assert (harness.out, harness.err) == ("", "error: lab nope not found\n")


def test_check_requests_a_run_with_a_fresh_token() -> None:
    api = FakeApi(make_lab(status=ready_status()))
    harness = Harness(api)
    assert harness.run("check", "alice-smoke") == 0
    assert api.patches == [("alice-smoke", {"metadata": {"annotations": {ANN: TOKEN}}})]
    assert harness.out == (
        f"check requested for lab alice-smoke (token {TOKEN})\n"
        "see the results with: kubectl lab status alice-smoke\n"
    )


def finish_check(api: FakeApi, states: list[str], run_state: str) -> None:
    """After the patch, the lab goes Running, then finishes with the given task states."""

    def after_patch(name: str) -> None:
        base = api.labs[name]
        running = copy.deepcopy(base)
        running["status"]["lastCheck"] = {"token": TOKEN, "job": "check-j", "state": "Running"}
        done = copy.deepcopy(running)
        done["status"]["lastCheck"].update(state=run_state, finishedAt=ts(timedelta(seconds=4)))
        done["status"]["tasks"] = [
            task(t["id"], t["title"], s, "" if s == "Passed" else "not yet", t.get("hint"))
            for t, s in zip(base["status"]["tasks"], states, strict=True)
        ]
        api.script[name] = [running, done]

    api.after_patch = after_patch


def test_check_wait_passes_when_every_task_passes() -> None:
    api = FakeApi(make_lab(status=ready_status()))
    finish_check(api, ["Passed", "Passed"], "Passed")
    harness = Harness(api)
    assert harness.run("check", "alice-smoke", "--wait") == 0
    assert harness.err == "[   0s] alice-smoke Running: check job check-j is running\n"
    assert "Last check:  Passed, finished in 4s\n" in harness.out
    assert f"  + configmap-answer   {ANSWER_TITLE}\n" in harness.out


def test_check_wait_fails_when_a_task_fails_and_prints_the_status() -> None:
    api = FakeApi(make_lab(status=ready_status()))
    finish_check(api, ["Passed", "Failed"], "Failed")
    harness = Harness(api)
    assert harness.run("check", "alice-smoke", "--wait") == 1
    assert harness.out.endswith(
        f"  x configmap-answer   {ANSWER_TITLE}\n      not yet\n      hint: {ANSWER_HINT}\n"
    )


def test_check_wait_json() -> None:
    api = FakeApi(make_lab(status=ready_status()))
    finish_check(api, ["Passed", "Passed"], "Passed")
    harness = Harness(api)
    assert harness.run("-o", "json", "check", "alice-smoke", "--wait") == 0
    assert json.loads(harness.out)["status"]["lastCheck"]["token"] == TOKEN


def test_check_wait_times_out() -> None:
    api = FakeApi(make_lab(status=ready_status()))
    harness = Harness(api)
    assert harness.run("check", "alice-smoke", "--wait", "--timeout", "2") == 4
    assert "error: timed out after 2s waiting for lab alice-smoke to be checked" in harness.err


def test_check_of_an_expired_lab_is_refused_without_a_patch() -> None:
    status = with_conditions(ready_status(), cond("Expired", "True", "Expired", "ttl over"))
    api = FakeApi(make_lab(status=status))
    harness = Harness(api)
    assert harness.run("check", "alice-smoke") == 1
    assert harness.err == "error: lab alice-smoke cannot be checked: Expired: ttl over\n"
    assert api.patches == []


def test_check_of_a_missing_lab() -> None:
    harness = Harness(FakeApi())
    assert harness.run("check", "nope", "--wait") == 3
    assert harness.err == "error: lab nope not found\n"


def test_hint_from_the_status_then_the_catalog() -> None:
    tasks = [task("scale-web", SCALE_TITLE, "Pending"), task("configmap-answer", "A", "Failed")]
    tasks[1]["hint"] = "from the status"
    harness = Harness(FakeApi(make_lab(status=ready_status(tasks))))
    assert harness.run("hint", "alice-smoke", "configmap-answer") == 0
    assert harness.out == "from the status\n"
    harness = Harness(FakeApi(make_lab(status=ready_status(tasks))))
    assert harness.run("hint", "alice-smoke", "scale-web") == 0
    assert harness.out == "kubectl scale deployment web --replicas=2\n"
    harness = Harness(FakeApi(make_lab()))  # no status yet: the catalog knows
    assert harness.run("hint", "alice-smoke", "configmap-answer") == 0
    assert harness.out == ANSWER_HINT + "\n"
    harness = Harness(FakeApi(make_lab()))
    assert harness.run("hint", "alice-smoke", "nope") == 3
    assert harness.err == "error: task nope not found in lab alice-smoke\n"


def test_kubeconfig_command() -> None:
    api = FakeApi(make_lab(status=ready_status()))
    harness = Harness(api)
    assert harness.run("kubeconfig", "alice-smoke") == 0
    # Asked for 2h, the lab expires in 1h52m: the token stops with the lab.
    assert api.tokens == [("lab-alice-smoke", "learner", 6720)]
    document = yaml.safe_load(harness.out)
    assert document == verbs_labs.build_kubeconfig(
        "alice-smoke", "lab-alice-smoke", api.kubeconfig_cluster(), "token-abc"
    )
    assert harness.err == (
        "note: token lifetime set to 1h52m\n"
        "token for learner in lab-alice-smoke expires at 2026-11-21T11:52:00Z\n"
    )
    harness = Harness(api)
    assert harness.run("-o", "json", "kubeconfig", "alice-smoke", "--duration", "30m") == 0
    assert api.tokens[-1] == ("lab-alice-smoke", "learner", 1800)
    assert json.loads(harness.out)["current-context"] == "roadlab-alice-smoke"


def test_kubeconfig_errors() -> None:
    harness = Harness(FakeApi(make_lab()))
    assert harness.run("kubeconfig", "alice-smoke") == 1
    assert harness.err == (
        "error: lab alice-smoke is not provisioned yet (see: kubectl lab status alice-smoke)\n"
    )
    harness = Harness(FakeApi(make_lab(status=ready_status())))
    assert harness.run("kubeconfig", "alice-smoke", "--duration", "soon") == 2
    api = FakeApi(make_lab(status=ready_status()))
    api.create_service_account_token = _raise(api_error(404, "serviceaccounts not found"))  # type: ignore[method-assign]
    harness = Harness(api)
    assert harness.run("kubeconfig", "alice-smoke") == 3
    assert harness.err.endswith(
        "error: service account learner not found in namespace lab-alice-smoke\n"
    )


def _raise(error: Exception) -> Callable[..., Any]:
    def fail(*_: Any) -> Any:
        raise error

    return fail


def test_delete_command() -> None:
    api = FakeApi(make_lab())
    harness = Harness(api)
    assert harness.run("delete", "alice-smoke") == 0
    assert harness.out == "lab alice-smoke deletion requested\n"
    harness = Harness(api)
    assert harness.run("delete", "alice-smoke") == 3
    assert harness.err == "error: lab alice-smoke not found\n"


def test_delete_wait_until_the_operator_has_cleaned_up() -> None:
    api = FakeApi(make_lab(status=ready_status()))
    api.script["alice-smoke"] = [make_lab(status=ready_status()), None]
    harness = Harness(api)
    assert harness.run("delete", "alice-smoke", "--wait") == 0
    assert harness.err == "[   0s] alice-smoke Deleting: cleaning up namespace lab-alice-smoke\n"
    assert harness.out == "lab alice-smoke deleted\n"


def test_api_errors_become_one_line() -> None:
    api = FakeApi()
    api.fail_with = api_error(403, 'labs.roadlab.dev is forbidden: User "bob" cannot list')
    harness = Harness(api)
    assert harness.run("list") == 1
    assert harness.err == (
        'error: not allowed: labs.roadlab.dev is forbidden: User "bob" cannot list\n'
    )
    api.fail_with = api_error(404, "no")
    harness = Harness(api)
    assert harness.run("status", "gone") == 3
    assert harness.err == "error: lab gone not found\n"


def test_an_unreachable_cluster_is_reported_clearly() -> None:
    api = FakeApi()
    api.fail_with = urllib3.exceptions.MaxRetryError(
        None,  # type: ignore[arg-type]
        "/apis",
        urllib3.exceptions.NewConnectionError(
            object(),  # type: ignore[arg-type]
            "<urllib3.connection.HTTPSConnection object at 0x7f00>: "
            "Failed to establish a new connection: [Errno 111] Connection refused",
        ),
    )
    harness = Harness(api)
    assert harness.run("list") == 1
    assert harness.err == (
        "error: cannot reach the Kubernetes API server: "
        "Failed to establish a new connection: [Errno 111] Connection refused\n"
    )


def test_a_broken_kubeconfig_is_reported_clearly() -> None:
    harness = Harness(FakeApi())

    def connect(kubeconfig: str | None, context: str | None) -> FakeApi:
        raise config.ConfigException("Invalid kube-config file. No configuration found.")

    harness.app.connect = connect
    assert harness.run("list") == 1
    assert harness.err == "error: kubeconfig: Invalid kube-config file. No configuration found.\n"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["start", "smoke", "--timeout", "0"],
        ["start", "smoke", "--timeout", "soon"],
        ["start", "smoke", "--ttl", "0"],
        ["start", "smoke", "--ttl", "1.5"],
        ["kubeconfig", "alice-smoke", "--duration", "-5m"],
        ["-o", "xml", "list"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    harness = Harness(FakeApi())
    assert harness.run(*argv) == 2
    assert "usage: kubectl lab" in capsys.readouterr().err
    assert harness.connected == []


# --- output formats, version, durations -----------------------------------------------------


def test_yaml_output_is_the_json_document() -> None:
    lab = make_lab(status=ready_status())
    for argv in (["list"], ["status", "alice-smoke"], ["catalog"], ["catalog", "smoke"]):
        as_json, as_yaml = Harness(FakeApi(lab)), Harness(FakeApi(lab))
        assert as_json.run("-o", "json", *argv) == 0
        assert as_yaml.run(*argv, "-o", "yaml") == 0
        assert yaml.safe_load(as_yaml.out) == json.loads(as_json.out), argv
    harness = Harness(FakeApi(lab))
    assert harness.run("-o", "yaml", "status", "alice-smoke") == 0
    assert harness.out.startswith("apiVersion: roadlab.dev/v1alpha1\nkind: Lab\n")


def test_name_output_is_kubectls_resource_slash_name() -> None:
    api = FakeApi(make_lab("b", "bob", status=ready_status()), make_lab("a"))
    harness = Harness(api)
    assert harness.run("list", "-o", "name") == 0
    assert harness.out == "lab.roadlab.dev/a\nlab.roadlab.dev/b\n"
    for argv in (["status", "b"], ["check", "b"], ["delete", "b"]):
        harness = Harness(api)
        assert harness.run("-o", "name", *argv) == 0, argv
        assert harness.out == "lab.roadlab.dev/b\n", argv
    harness = Harness(FakeApi())
    assert harness.run("-o", "name", "start", "smoke") == 0
    assert harness.out == "lab.roadlab.dev/alice-smoke\n"
    harness = Harness(FakeApi())
    assert harness.run("list", "-o", "name") == 0
    assert (harness.out, harness.err) == ("", "no labs found\n")
    # Catalog labs are no API objects: -o name gives their bare ids, one per line.
    harness = Harness(FakeApi())
    assert harness.run("catalog", "-o", "name") == 0
    assert harness.out == "smoke\n"


def test_start_wait_name_output_prints_the_name_once_ready() -> None:
    api = FakeApi()
    api.script["alice-smoke"] = [make_lab(status=ready_status())]
    harness = Harness(api)
    assert harness.run("start", "smoke", "--wait", "-o", "name") == 0
    assert harness.out == "lab.roadlab.dev/alice-smoke\n"


def test_wide_output_adds_columns() -> None:
    lab = make_lab(
        status=ready_status(last_check={"state": "Failed", "finishedAt": ts(timedelta(0))})
    )
    harness = Harness(FakeApi(lab))
    assert harness.run("list", "-o", "wide") == 0
    assert harness.out == (
        "NAME          LAB     LEARNER   READY   PROGRESS   EXPIRES    AGE   NAMESPACE"
        "         TTL   COMPLETED   LAST CHECK\n"
        "alice-smoke   smoke   alice     True    1/2        in 1h52m   6m    lab-alice-smoke"
        "   2h    False       Failed\n"
    )
    harness = Harness(FakeApi())
    assert harness.run("catalog", "-o", "wide") == 0
    header, row = harness.out.splitlines()
    assert header.endswith("TASKS   PARAMETERS          CHECK TIMEOUT")
    assert row.endswith("2       greeting,replicas   180s")


def test_kubeconfig_yaml_output() -> None:
    api = FakeApi(make_lab(status=ready_status()))
    harness = Harness(api)
    assert harness.run("kubeconfig", "alice-smoke", "-o", "yaml") == 0
    assert yaml.safe_load(harness.out)["current-context"] == "roadlab-alice-smoke"


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ["-o", "wide", "status", "alice-smoke"],
            "status has no -o wide (it takes: text, json, yaml, name)",
        ),
        (
            ["hint", "alice-smoke", "scale-web", "-o", "json"],
            "hint has no -o json (it takes: text)",
        ),
        (
            ["-o", "name", "kubeconfig", "alice-smoke"],
            "kubeconfig has no -o name (it takes: text, json, yaml)",
        ),
        (["delete", "alice-smoke", "-o", "yaml"], "delete has no -o yaml (it takes: text, name)"),
    ],
)
def test_an_output_format_a_command_lacks_is_a_usage_error(argv: list[str], error: str) -> None:
    harness = Harness(FakeApi(make_lab(status=ready_status())))
    assert harness.run(*argv) == 2
    assert (harness.out, harness.err) == ("", f"error: {error}\n")
    assert harness.connected == []


def test_version() -> None:
    version = importlib.metadata.version("roadlab")
    harness = Harness(FakeApi())
    assert harness.run("--version") == 0
    assert harness.out == f"kubectl lab {version}\n"
    harness = Harness(FakeApi())
    assert harness.run("version") == 0
    assert harness.out == f"kubectl lab {version}\n"
    harness = Harness(FakeApi())
    assert harness.run("version", "-o", "json") == 0
    assert json.loads(harness.out) == {"package": "roadlab", "version": version}
    assert harness.connected == []


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("1h30m", 5400), ("2h", 7200), ("3", 3), ("2.5", 2.5)],
)
def test_wait_timeouts_take_durations_or_seconds(text: str, seconds: float) -> None:
    api = FakeApi()
    api.script["alice-smoke"] = [make_lab()]
    harness = Harness(api)
    assert harness.run("start", "smoke", "--wait", "--timeout", text) == 4
    assert sum(harness.sleeps) == seconds
    assert f"timed out after {int(seconds)}s" in harness.err


@pytest.mark.parametrize(("text", "ttl"), [("90m", "90m"), ("1h30m", "1h30m"), ("5400", "1h30m")])
def test_ttl_takes_durations_or_whole_seconds(text: str, ttl: str) -> None:
    api = FakeApi()
    harness = Harness(api)
    assert harness.run("start", "smoke", "--ttl", text) == 0
    assert api.created[0]["spec"]["ttl"] == ttl


@pytest.mark.parametrize(("text", "seconds"), [("45m", 2700), ("1h", 3600), ("1800", 1800)])
def test_token_duration_takes_durations_or_seconds(text: str, seconds: int) -> None:
    api = FakeApi(make_lab(status=ready_status()))
    harness = Harness(api)
    assert harness.run("kubeconfig", "alice-smoke", "--duration", text) == 0
    assert api.tokens == [("lab-alice-smoke", "learner", seconds)]


def test_main_is_the_console_script(
    catalog_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["kubectl-lab"] == "roadlab.cli.app:main"
    assert pyproject["project"]["scripts"]["kubectl_complete-lab"] == (
        "roadlab.cli.completion:kubectl_complete"
    )
    monkeypatch.setenv("ROADLAB_CATALOG", str(catalog_dir))
    assert cli.main(["catalog", "smoke"]) == 0
    assert capsys.readouterr().out.startswith("ID:          smoke\n")


def test_global_flags_may_follow_the_command() -> None:
    parser = cli.build_parser()
    after = parser.parse_args(["list", "-o", "json", "--kubeconfig", "k"])
    before = parser.parse_args(["-o", "json", "--kubeconfig", "k", "list"])
    assert (after.output, after.kubeconfig) == (before.output, before.kubeconfig) == ("json", "k")
    assert parser.parse_args(["list"]).output == "text"
    assert parser.parse_args(["-o", "json", "list"]).output == "json"


def test_the_cli_gives_up_on_the_reasons_the_operator_does_not_retry() -> None:
    """One source of truth: kubectl lab's permanent reasons are the contract's."""
    assert common.PERMANENT_REASONS is conditions.PERMANENT_REASONS
    for reason in sorted(conditions.PERMANENT_REASONS):
        lab = {"status": {"conditions": [cond(conditions.READY, conditions.FALSE, reason, "m")]}}
        step = waiting.start_wait_step(lab)
        assert (step.done, step.exit_code, step.reason) == (True, common.EXIT_FAILURE, reason)
