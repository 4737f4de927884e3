"""The mesh probes: traffic_split against a real local server answering by version, and
plaintext_refused against a server that closes plain connections as a STRICT sidecar does."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from probe_support import FakeContext, closed_port, local_server, pod

from roadlab.probes import run_check, validate_check
from roadlab.probes.mesh import expected_counts, fits, judge_split

WEIGHTS = {"v1": 90, "v2": 10}

# --- the statistics ------------------------------------------------------------------------------


def test_expected_counts_are_binomial() -> None:
    expected = expected_counts(WEIGHTS, 200, 4)
    assert expected["v1"].count == 180
    assert expected["v1"].tolerance == pytest.approx(16.97, abs=0.01)  # 4·sqrt(200·.9·.1)
    assert expected["v2"].describe() == "20 ± 17"
    # A weight of 0 or 100 admits exactly its count.
    edge = expected_counts({"v1": 100, "v2": 0}, 50, 4)
    assert edge["v2"].admits(0) and not edge["v2"].admits(1)


@pytest.mark.parametrize(
    ("v1", "v2", "passes"),
    [(180, 20, True), (164, 36, True), (196, 4, True), (163, 37, False), (100, 100, False)],
)
def test_fits_within_the_tolerance(v1: int, v2: int, passes: bool) -> None:
    assert fits({"v1": v1, "v2": v2}, WEIGHTS, 200, 4) is passes


def test_judge_names_an_inverted_split() -> None:
    passed, message = judge_split({"v1": 22, "v2": 178}, WEIGHTS, 200, 4)
    assert not passed
    assert message.startswith(
        "the split is inverted: v1 22 (expected 180 ± 17), v2 178 (expected 20 ± 17)"
    )
    assert "subsets' labels swapped" in message


def test_judge_names_an_even_split() -> None:
    passed, message = judge_split({"v1": 96, "v2": 104}, WEIGHTS, 200, 4)
    assert not passed
    assert message.startswith("the requests were spread evenly")


def test_judge_names_a_version_that_never_answered() -> None:
    passed, message = judge_split({"v1": 0, "v2": 200}, WEIGHTS, 200, 4)
    assert not passed
    assert message.startswith(
        "no answer came from v1: v1 0 (expected 180 ± 17), v2 200 (expected 20 ± 17); are its "
        "pods ready"
    )


def test_judge_otherwise_shows_the_counts() -> None:
    passed, message = judge_split({"v1": 140, "v2": 60}, WEIGHTS, 200, 4)
    assert (passed, message) == (
        False,
        "the measured split is not the assigned one: v1 140 (expected 180 ± 17), "
        "v2 60 (expected 20 ± 17)",
    )


# --- traffic_split over real HTTP ----------------------------------------------------------------


def versions_server(every_tenth: str = "v2", rest: str = "v1", status: int = 200) -> Any:
    """Answers "hello from reviews-<version> (<version>)": request n is every_tenth when n is
    a multiple of 10 (a 90/10 split, exactly)."""
    seen = [0]

    def route(method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        seen[0] += 1
        version = every_tenth if seen[0] % 10 == 0 else rest
        if status != 200:
            return status, "no healthy upstream"
        return 200, f"hello from reviews-{version}-abc ({version})\n"

    return local_server(route)


def split_args(**overrides: Any) -> dict[str, Any]:
    return {"service": "reviews", "weights": {"v1": "90", "v2": "10"}, **overrides}


def test_traffic_split_passes_with_the_counts_as_evidence() -> None:
    with versions_server() as server:
        result = run_check(
            FakeContext(services={"reviews": server.port}), "traffic_split", split_args()
        )
    assert result.state == "Passed", result.message
    assert result.message == (
        "measured split of 200 responses: v1 180 (expected 180 ± 17), v2 20 (expected 20 ± 17)"
        " (tolerance 4 binomial standard deviations)"
    )
    assert result.evidence["count.v1"] == 180
    assert result.evidence["count.v2"] == 20
    assert result.evidence["expected.v2"] == "20 ± 17"
    assert result.evidence["requests"] == 200
    assert len(server.requests) == 200


def test_traffic_split_inverted() -> None:
    with versions_server(every_tenth="v1", rest="v2") as server:
        result = run_check(
            FakeContext(services={"reviews": server.port}),
            "traffic_split",
            split_args(requests=100),
        )
    assert result.state == "Failed"
    assert result.message.startswith("the split is inverted: v1 10 (expected 90 ± 12), v2 90")


def test_traffic_split_503_says_what_it_means() -> None:
    with versions_server(status=503) as server:
        result = run_check(
            FakeContext(services={"reviews": server.port}), "traffic_split", split_args(requests=20)
        )
    assert result.state == "Failed"
    assert result.message.startswith("20 of 20 requests to http://127.0.0.1:")
    assert '20 requests got status 503 ("no healthy upstream")' in result.message
    assert "a subset selects no ready pod" in result.message


def test_traffic_split_unknown_version_and_unmatched_body() -> None:
    with versions_server(every_tenth="v3") as server:
        result = run_check(
            FakeContext(services={"reviews": server.port}), "traffic_split", split_args(requests=20)
        )
    assert result.state == "Failed"
    assert result.message == (
        "answers came from versions the split does not name (v3 2); expected only v1, v2"
    )
    with versions_server() as server:
        result = run_check(
            FakeContext(services={"reviews": server.port}),
            "traffic_split",
            split_args(requests=20, versionPattern=r"version=(\w+)"),
        )
    assert result.state == "Failed"
    assert result.message.startswith("20 answers of 20 carried no version matching version=")


def test_traffic_split_unreachable_is_an_error() -> None:
    ctx = FakeContext(services={"reviews": closed_port()})
    result = run_check(ctx, "traffic_split", split_args(requests=20))
    assert result.state == "Error"
    assert result.message.startswith("could not reach Service reviews port 80")


def test_traffic_split_stops_before_the_deadline() -> None:
    with versions_server() as server:
        ctx = FakeContext(services={"reviews": server.port})
        ctx.deadline = ctx.clock.now + 3  # less than one request's timeout and the margin
        result = run_check(ctx, "traffic_split", split_args(requests=20))
    assert result.state == "Error"
    assert result.message.startswith("the check's time ran out after 0 of 20 requests")


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (split_args(weights={"v1": 90, "v2": 20}), "weights add up to 110, not 100"),
        (split_args(versionPattern=r"v\d"), "versionPattern needs exactly one group"),
        (split_args(weights={"v1": 100}), "weights: Dictionary should have at least 2 items"),
        (split_args(requests=5), "requests: Input should be greater than or equal to 20"),
    ],
)
def test_traffic_split_refuses_bad_args(args: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match="invalid args") as raised:
        validate_check("traffic_split", args)
    assert problem in str(raised.value)


# --- plaintext_refused -------------------------------------------------------------------------


@contextmanager
def closing_server(host: str = "127.0.0.1", port: int = 0) -> Iterator[int]:
    """Accepts and closes every connection without a byte: what a STRICT sidecar does to a
    client that sends plain text."""
    listener = socket.create_server((host, port))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        listener.close()


def meshed_pod(name: str, ip: str, sidecar: bool = True, native: bool = False) -> dict[str, Any]:
    containers = ("reviews", "istio-proxy") if sidecar and not native else ("reviews",)
    found = pod(
        name,
        {"app": "reviews"},
        containers=containers,
        init_sidecars=("istio-proxy",) if native else (),
    )
    found["status"]["podIP"] = ip
    return found


def plaintext_args(port: int) -> dict[str, Any]:
    return {"labelSelector": "app=reviews", "port": port}


def test_plaintext_refused_passes_when_every_sidecar_closes_plain_text() -> None:
    with closing_server() as port:
        ctx = FakeContext().add(meshed_pod("reviews-v1-a", "127.0.0.1"))
        ctx.add(meshed_pod("reviews-v2-b", "127.0.0.1", native=True))
        result = run_check(ctx, "plaintext_refused", plaintext_args(port))
    assert result.state == "Passed", result.message
    # Closed before or after the request was read: a clean close or a reset.
    assert re.fullmatch(
        rf"plain text to port {port} of 2 pods \(reviews-v1-a, reviews-v2-b\) was refused by "
        r"their sidecars \((RemoteDisconnected: Remote end closed connection without response|"
        r"ConnectionResetError: \[Errno 104\] Connection reset by peer)\): mutual TLS is STRICT",
        result.message,
    )
    assert result.evidence["refused"] == 2


def test_plaintext_answered_fails() -> None:
    def route(method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        return 200, "hello from reviews (v1)"

    with local_server(route) as server:
        ctx = FakeContext().add(meshed_pod("reviews-v1-a", "127.0.0.1"))
        result = run_check(ctx, "plaintext_refused", plaintext_args(server.port))
    assert result.state == "Failed"
    assert result.message.startswith(
        "plain text from a client without a mesh identity got answers (reviews-v1-a 200): "
        "mutual TLS is not STRICT"
    )


def test_plaintext_refused_needs_sidecars_and_pods() -> None:
    ctx = FakeContext().add(meshed_pod("reviews-v1-a", "127.0.0.1", sidecar=False))
    result = run_check(ctx, "plaintext_refused", plaintext_args(8080))
    assert result.state == "Failed"
    assert result.message.startswith(
        "1 pod without an istio-proxy sidecar (reviews-v1-a): nothing enforces mutual TLS"
    )
    assert ctx.urls == []  # no request: a refusal without a sidecar would prove nothing
    empty = run_check(FakeContext(), "plaintext_refused", plaintext_args(8080))
    assert (empty.state, empty.message) == (
        "Failed",
        "no ready pod matches app=reviews in namespace lab-x",
    )


def test_plaintext_refused_by_nothing_listening_proves_nothing() -> None:
    ctx = FakeContext().add(meshed_pod("reviews-v1-a", "127.0.0.1"))
    result = run_check(ctx, "plaintext_refused", plaintext_args(closed_port()))
    assert result.state == "Error"
    assert "connection refused" in result.message
