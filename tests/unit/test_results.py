"""The result document: bounded encoding (checker side) and hostile-input parsing (operator)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roadlab.api.lab import TaskResult
from roadlab.api.results import (
    MAX_EVIDENCE_KEYS,
    MAX_MESSAGE,
    TERMINATION_MESSAGE_LIMIT,
    TaskOutcome,
    encode_results,
    parse_check_output,
    timed_out_results,
)

IDS = ["scale-web", "configmap-answer"]
STAMP = "2026-11-21T10:00:00Z"


def doc(*results: object, **extra: object) -> str:
    return json.dumps({"version": 1, "results": list(results), **extra})


def entry(task_id: str = "scale-web", state: str = "Passed", **extra: object) -> dict[str, object]:
    return {"id": task_id, "state": state, "message": "ok", **extra}


def by_id(results: list[TaskResult]) -> dict[str, TaskResult]:
    return {r.id: r for r in results}


# --- encoding ------------------------------------------------------------------------------


def test_encode_round_trip(now: datetime) -> None:
    outcomes = [
        TaskOutcome(
            "scale-web", "Passed", "Deployment web: spec.replicas is 2", {"spec.replicas": 2}
        ),
        TaskOutcome("configmap-answer", "Failed", "ConfigMap answer not found", {}),
    ]
    text = encode_results(outcomes)
    assert json.loads(text) == {
        "version": 1,
        "results": [
            {
                "id": "scale-web",
                "state": "Passed",
                "message": "Deployment web: spec.replicas is 2",
                "evidence": {"spec.replicas": 2},
            },
            {"id": "configmap-answer", "state": "Failed", "message": "ConfigMap answer not found"},
        ],
    }
    parsed = parse_check_output(text, IDS, now)
    assert parsed == [
        TaskResult(
            id="scale-web",
            state="Passed",
            message="Deployment web: spec.replicas is 2",
            evidence={"spec.replicas": 2},
            checked_at=STAMP,
        ),
        TaskResult(
            id="configmap-answer",
            state="Failed",
            message="ConfigMap answer not found",
            checked_at=STAMP,
        ),
    ]


def test_encode_huge_messages_stays_under_limit(now: datetime) -> None:
    ids = [f"task-{i}" for i in range(20)]
    outcomes = [
        TaskOutcome(
            task_id,
            "Failed",
            "x" * 100_000,
            {f"key-{k}" * 10: "v" * 5000 for k in range(30)} | {"n": 1.5, "ok": True},
        )
        for task_id in ids
    ]
    text = encode_results(outcomes)
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    parsed = parse_check_output(text, ids, now)
    assert [r.state for r in parsed] == ["Failed"] * 20  # every task kept its verdict
    assert all(len(r.message) <= MAX_MESSAGE for r in parsed)


def test_encode_caps_messages_and_evidence_when_it_fits() -> None:
    outcome = TaskOutcome(
        "t", "Failed", "m" * 2000, {f"k{i}": "v" * 1000 for i in range(20)} | {"nan": float("nan")}
    )
    decoded = json.loads(encode_results([outcome]))["results"][0]
    assert len(decoded["message"]) == MAX_MESSAGE
    assert decoded["message"].endswith("...")
    assert len(decoded["evidence"]) == MAX_EVIDENCE_KEYS
    assert all(len(v) <= 256 for v in decoded["evidence"].values())


def test_encode_multibyte_text_counts_bytes() -> None:
    outcomes = [TaskOutcome(f"t{i}", "Failed", "é✓" * 600) for i in range(12)]
    text = encode_results(outcomes)
    assert len(text.encode("utf-8")) <= TERMINATION_MESSAGE_LIMIT


def test_encode_drops_trailing_results_as_a_last_resort(now: datetime) -> None:
    ids = [f"task-{i:03d}-" + "x" * 50 for i in range(200)]
    text = encode_results([TaskOutcome(i, "Passed", "fine") for i in ids])
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    document = json.loads(text)
    assert 0 < len(document["results"]) < 200
    assert document["error"] == "results were dropped to fit the size limit"
    parsed = parse_check_output(text, ids, now)
    assert parsed[0].state == "Passed"
    assert parsed[-1].state == "Error"
    assert parsed[-1].message == (
        "no result for this task (results were dropped to fit the size limit)"
    )


def test_encode_error_note(now: datetime) -> None:
    text = encode_results([], error="the check spec was malformed: tasks: Field required")
    assert parse_check_output(text, ["a"], now)[0].message == (
        "no result for this task (the check spec was malformed: tasks: Field required)"
    )


@given(
    st.lists(
        st.builds(
            TaskOutcome,
            st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True),
            st.sampled_from(["Passed", "Failed", "Error"]),
            st.text(max_size=3000),
            st.dictionaries(
                st.text(max_size=80),
                st.one_of(st.text(max_size=500), st.integers(), st.floats(), st.booleans()),
                max_size=20,
            ),
        ),
        max_size=40,
    )
)
def test_encode_is_always_bounded_and_parseable(outcomes: list[TaskOutcome]) -> None:
    text = encode_results(outcomes)
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    ids = list(dict.fromkeys(o.id for o in outcomes))
    parsed = parse_check_output(text, ids, datetime(2026, 1, 1).astimezone())
    assert [r.id for r in parsed] == ids


# --- parsing: hostile input ----------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "   \n"])
def test_no_result(text: str | None, now: datetime) -> None:
    results = parse_check_output(text, IDS, now)
    assert [(r.id, r.state, r.message) for r in results] == [
        (i, "Error", "the check produced no result") for i in IDS
    ]
    assert all(r.checked_at == STAMP for r in results)


def test_oversized(now: datetime) -> None:
    megabyte = doc(entry(message="x" * 1_000_000))
    results = parse_check_output(megabyte, IDS, now)
    assert {r.message for r in results} == {"the check result was oversized"}
    multibyte = doc(entry(message="✓" * 1400))  # < 4096 characters, > 4096 bytes
    assert parse_check_output(multibyte, IDS, now)[0].message == "the check result was oversized"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('"Passed"', "expected a JSON object, got str"),
        ("null", "expected a JSON object, got NoneType"),
        ('{"results": []}', "unsupported version 'None'"),
        ('{"version": 2, "results": []}', "unsupported version '2'"),
        ('{"version": "1", "results": []}', "unsupported version '1'"),
        ('{"version": true, "results": []}', "unsupported version 'True'"),
        ('{"version": 1, "results": {"scale-web": "Passed"}}', "results is not a list"),
        ('{"version": 1, "results": ["scale-web"]}', "results[0] is not an object"),
        ('{"version": 1, "results": [{"id": 7, "state": "Passed"}]}', "results[0] is not an"),
        ('{"version": 1, "results": [], "x": NaN}', "not valid JSON"),
        ("[" * 3000 + "]" * 3000, "oversized"),
        ("[" * 2000 + "]" * 2000, "not valid JSON"),
    ],
)
def test_malformed(text: str, reason: str, now: datetime) -> None:
    results = parse_check_output(text, IDS, now)
    assert len(results) == 2
    assert all(r.state == "Error" for r in results)
    assert reason in results[0].message


@pytest.mark.parametrize("state", ["Passed\n", "passed", "PASSED", "Pending", "", None, 1, True])
def test_bad_state_is_error(state: object, now: datetime) -> None:
    results = by_id(parse_check_output(doc(entry(state=state)), IDS, now))  # type: ignore[arg-type]
    assert results["scale-web"].state == "Error"
    assert results["scale-web"].message.startswith("the check result was malformed: state ")
    assert "is not one of Passed, Failed, Error" in results["scale-web"].message
    assert results["configmap-answer"].message == "no result for this task"


def test_unknown_ids_are_ignored_and_missing_ids_are_errors(now: datetime) -> None:
    text = doc(
        entry("fake-task"),
        entry("../../etc"),
        entry("SCALE-WEB"),
        entry("configmap-answer", "Failed", message="nope"),
    )
    results = parse_check_output(text, IDS, now)
    assert [(r.id, r.state, r.message) for r in results] == [
        ("scale-web", "Error", "no result for this task"),
        ("configmap-answer", "Failed", "nope"),
    ]


def test_duplicate_ids_are_errors(now: datetime) -> None:
    text = doc(entry(), entry(state="Failed"), entry("configmap-answer"))
    results = by_id(parse_check_output(text, IDS, now))
    assert results["scale-web"].state == "Error"
    assert "more than one result" in results["scale-web"].message
    assert results["configmap-answer"].state == "Passed"


def test_messages_are_capped_and_cleaned(now: datetime) -> None:
    text = doc(
        entry(message="a\x00b\x1b[31mc\n" + "z" * 3000), entry("configmap-answer", message=5)
    )
    results = by_id(parse_check_output(text, IDS, now))
    message = results["scale-web"].message
    assert len(message) == MAX_MESSAGE
    assert message.startswith("a b [31mc\nzzz")
    assert message.endswith("...")
    assert results["configmap-answer"].state == "Error"
    assert results["configmap-answer"].message == (
        "the check result was malformed: message is not a string"
    )


def test_missing_message_defaults_to_empty(now: datetime) -> None:
    text = doc({"id": "scale-web", "state": "Passed"})
    assert parse_check_output(text, IDS, now)[0].message == ""


def test_evidence_is_scalars_only_and_bounded(now: datetime) -> None:
    evidence = {
        "replicas": 2,
        "ratio": 0.5,
        "ok": True,
        "name": "w" * 1000,
        "nested": {"a": 1},
        "list": [1, 2],
        "null": None,
        "huge": 10**30,
        "": "no key",
        **{f"k{i}": i for i in range(20)},
    }
    result = parse_check_output(doc(entry(evidence=evidence)), IDS, now)[0]
    assert result.evidence is not None
    assert len(result.evidence) == MAX_EVIDENCE_KEYS
    assert result.evidence["replicas"] == 2
    assert result.evidence["ok"] is True
    assert len(str(result.evidence["name"])) == 256
    assert not {"nested", "list", "null", "huge", ""} & set(result.evidence)
    for bad in ([1, 2], "text", 7, {"only": {"nested": 1}}):
        assert parse_check_output(doc(entry(evidence=bad)), IDS, now)[0].evidence is None


def test_result_validates_as_status(now: datetime) -> None:
    """Whatever comes out must be a valid TaskResult for the Lab status."""
    text = doc(entry(message="m" * 600, evidence={"x" * 500: "y" * 2000}))
    result = parse_check_output(text, IDS, now)[0]
    assert TaskResult.model_validate(result.to_wire()) == result


def test_timed_out_results(now: datetime) -> None:
    results = timed_out_results(IDS, 180, now)
    assert [(r.id, r.state, r.message, r.checked_at) for r in results] == [
        (i, "Error", "the check did not finish within 180 s", STAMP) for i in IDS
    ]


@given(st.text(max_size=5000))
def test_parse_never_raises(text: str) -> None:
    results = parse_check_output(text, IDS, datetime(2026, 1, 1).astimezone())
    assert [r.id for r in results] == IDS
