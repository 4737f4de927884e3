"""Operator log lines about a Lab carry the Lab: the same `k8s_ref` extra as Kopf's
per-object logger, shown by main.py's formats as "object" (JSON) or a [name] prefix."""

from __future__ import annotations

import ast
import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kopf
import pytest
from kubernetes.client.exceptions import ApiException

from roadlab.api import naming
from roadlab.controller import actions, handlers, main, memory, reconciler, state, ticking
from roadlab.controller.settings import Settings

NOW = datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)
LAB: dict[str, Any] = {
    "apiVersion": naming.API_VERSION,
    "kind": naming.KIND,
    "metadata": {"name": "alice-hpa", "uid": "u1"},
    "spec": {"lab": "hpa"},
}
QUOTA = {
    "kind": "ResourceQuota",
    "metadata": {"name": "lab-quota", "labels": {naming.LABEL_LAB: "alice-hpa"}},
}
PACKAGE = Path(handlers.__file__).parents[1]


class NoJobs:
    def get(self, *_: Any) -> None:
        return None


@pytest.fixture(autouse=True)
def runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    rt = state.Runtime(Settings.from_environment(), NoJobs(), {})  # type: ignore[arg-type]
    monkeypatch.setattr(state, "_runtime", rt)
    monkeypatch.setattr(state, "now", lambda: NOW)


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


def about(records: pytest.LogCaptureFixture, text: str) -> logging.LogRecord:
    [record] = [r for r in records.records if text in r.getMessage()]
    return record


def assert_about_alice(record: logging.LogRecord) -> None:
    ref = getattr(record, "k8s_ref", None)
    assert ref is not None, f"no object on {record.getMessage()!r}"
    assert ref["name"] == "alice-hpa"
    assert ref["kind"] == naming.KIND
    entry = json.loads(main.JsonFormatter().format(record))
    assert entry["object"]["name"] == "alice-hpa"
    assert entry["object"] == {
        "apiVersion": naming.API_VERSION,
        "kind": naming.KIND,
        "name": "alice-hpa",
        "uid": "u1",
    }
    assert f"[alice-hpa] {record.getMessage()}" in main.PlainFormatter().format(record)


def test_expiry_is_logged_with_the_lab(
    monkeypatch: pytest.MonkeyPatch, records: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(actions, "reconcile_and_report", lambda *_: None)
    body = {**LAB, "status": {"expiresAt": "2026-11-21T09:00:00Z"}}
    ticking.tick_lab(body)
    assert_about_alice(about(records, "expired at"))


def test_a_lost_check_job_is_logged_with_the_lab(
    monkeypatch: pytest.MonkeyPatch, records: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(actions, "check_now", lambda *_, **__: None)
    last_check = {"token": "t1", "job": "check-alice-hpa-1", "state": "Running"}
    ticking.tick_lab({**LAB, "status": {"lastCheck": last_check}})
    assert_about_alice(about(records, "check job check-alice-hpa-1 is gone"))


def test_a_guardrail_not_restored_is_logged_with_the_lab(
    monkeypatch: pytest.MonkeyPatch, records: pytest.LogCaptureFixture
) -> None:
    def refused(*_: Any) -> bool:
        raise ApiException(status=403, reason="Forbidden")

    monkeypatch.setattr(reconciler, "restore_guardrail", refused)
    actions.restore("MODIFIED", LAB, QUOTA)
    assert_about_alice(about(records, "guardrail ResourceQuota lab-quota not restored"))


def test_a_failed_tick_is_logged_with_the_lab_from_its_thread(
    monkeypatch: pytest.MonkeyPatch, records: pytest.LogCaptureFixture
) -> None:
    class StopError(Exception):
        pass

    def fail(body: Any) -> None:
        raise RuntimeError("boom")

    def stop() -> None:
        raise StopError  # ends the endless loop after one round

    monkeypatch.setattr(ticking, "tick_lab", fail)
    monkeypatch.setattr(memory, "release_free_memory", stop)
    monkeypatch.setitem(state.labs, "alice-hpa", LAB)
    with pytest.raises(StopError):
        asyncio.run(ticking.tick_forever(0, logging.getLogger("kopf.activities.startup")))
    record = about(records, "tick failed")
    assert record.exc_info is not None
    assert_about_alice(record)
    assert "RuntimeError: boom" in json.loads(main.JsonFormatter().format(record))["exception"]


def test_kopfs_object_logger_shows_the_object_in_both_formats(
    records: pytest.LogCaptureFixture,
) -> None:
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False  # no Event queue outside an operator
    logger = kopf.ObjectLogger(body=kopf.Body(dict(LAB)), settings=settings)  # type: ignore[arg-type]
    logger.info("Handler 'reconcile' succeeded.")
    assert_about_alice(about(records, "Handler 'reconcile' succeeded."))


def test_lines_about_no_object_are_as_before(records: pytest.LogCaptureFixture) -> None:
    logging.getLogger("roadlab.test").info("catalog %s", "labs")
    record = about(records, "catalog labs")
    assert "object" not in json.loads(main.JsonFormatter().format(record))
    assert main.PlainFormatter().format(record).endswith("INFO roadlab.test catalog labs")


def test_a_namespaced_object_is_prefixed_with_its_namespace() -> None:
    record = logging.makeLogRecord(
        {"msg": "restored", "k8s_ref": {"kind": "ResourceQuota", "name": "q", "namespace": "n"}}
    )
    assert main.PlainFormatter().format(record).endswith("[n/q] restored")
    assert record.getMessage() == "restored"  # other handlers see the message unchanged


def test_the_module_loggers_are_used_only_through_lab_logger() -> None:
    """A line logged straight to a module's logger would have no Lab: in the modules that
    handle Labs, the module logger is only used to make a lab_logger."""
    modules = [
        "controller/handlers.py",
        "controller/actions.py",
        "controller/ticking.py",
        "controller/reconciler.py",
        "controller/state.py",
    ]
    modules += [str(path.relative_to(PACKAGE)) for path in sorted((PACKAGE / "kube").glob("*.py"))]
    for module in modules:
        tree = ast.parse((PACKAGE / module).read_text())
        users = {
            function.name
            for function in ast.walk(tree)
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
            for node in ast.walk(function)
            if isinstance(node, ast.Name) and node.id == "log"
        }
        assert users <= {"lab_logger"}, f"{module}: {sorted(users)} log without the Lab"
