"""The portal's sign-in, sessions and the walls around them: a link's token opens one Lab,
for a while, and nothing else; revoking the link ends it; no log line holds a token."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from portal_fake import ACCESS_TOKEN, LAB, PORTAL, Harness, make_lab
from starlette.testclient import TestClient, WebSocketDenialResponse

from roadlab.api import naming
from roadlab.portal.sessions import COOKIE_NAME

BOB = "bob-smoke"
BOB_TOKEN = "bob-access-token-0123456789abcdefghijklmnopqrs"
BOB_LAB_ABSENT = "carol-smoke"


@pytest.fixture
def harness() -> Harness:
    harness = Harness()
    harness.cluster.add_lab(make_lab(BOB, learner="bob"), BOB_TOKEN)
    return harness


def test_healthz() -> None:
    assert Harness().client.get("/healthz").text == "ok"


def test_a_good_link_signs_in_and_leaves_the_url(harness: Harness) -> None:
    answer = harness.sign_in()
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/labs/{LAB}"
    assert "token" not in answer.headers["location"]
    page = harness.client.get(f"/labs/{LAB}")
    assert page.status_code == 200
    assert "Scale the web Deployment to 2 replicas" in page.text
    # The Lab was read with the learner's token, which the portal asked for by TokenRequest.
    [(who, args)] = harness.cluster.calls_of("learner_token")
    assert who == PORTAL
    assert args == (f"lab-{LAB}", naming.LEARNER_SERVICE_ACCOUNT, 3600)
    assert {who for who, _ in harness.cluster.calls_of("get_lab")} == {harness.learner_token_of()}


def test_the_session_cookie_flags() -> None:
    for secure in (False, True):
        harness = Harness(secure_cookies=secure)
        cookie = harness.sign_in().headers["set-cookie"]
        parts = [part.strip().lower() for part in cookie.split(";")]
        assert parts[0].startswith(f"{COOKIE_NAME}=")
        assert "httponly" in parts
        assert "samesite=strict" in parts
        assert "path=/" in parts
        assert ("secure" in parts) is secure
        # The session ends with the Lab (1h52m from now), before the 12 h longest time.
        max_age = next(int(p.split("=")[1]) for p in parts if p.startswith("max-age="))
        assert max_age == int(timedelta(hours=1, minutes=52).total_seconds())


@pytest.mark.parametrize(
    "token", ["", "wrong", ACCESS_TOKEN[:-1], ACCESS_TOKEN + "x", BOB_TOKEN, ACCESS_TOKEN.upper()]
)
def test_a_bad_token_is_refused(harness: Harness, token: str) -> None:
    answer = harness.sign_in(token=token)
    assert answer.status_code == 403
    assert "invalid, expired or revoked" in answer.text
    assert COOKIE_NAME not in answer.headers.get("set-cookie", "")
    assert not harness.cluster.calls_of("get_lab")  # no Lab is read for a bad token


@pytest.mark.parametrize("lab", ["nobody-here", "Not_A-Name", "x" * 70])
def test_a_lab_that_is_not_there_is_refused_alike(harness: Harness, lab: str) -> None:
    answer = harness.sign_in(lab=lab)
    assert answer.status_code == 403
    assert "invalid, expired or revoked" in answer.text


def test_an_expired_lab_is_refused(harness: Harness) -> None:
    harness.cluster.labs[LAB] = make_lab(expired=True, expires_in=timedelta(minutes=-1))
    assert harness.sign_in().status_code == 403
    harness.cluster.labs[LAB] = make_lab(expires_in=timedelta(minutes=5))
    harness.clock.advance(6 * 60)  # past expiresAt, though the operator has not said so yet
    assert harness.sign_in().status_code == 403


def test_a_lab_whose_namespace_is_gone_is_refused(harness: Harness) -> None:
    harness.cluster.namespaces.discard(f"lab-{LAB}")  # no learner to ask a token for
    assert harness.sign_in().status_code == 403


def test_a_session_ends_with_the_lab() -> None:
    harness = Harness()
    harness.signed_in()
    harness.clock.advance(timedelta(hours=1, minutes=51).total_seconds())
    assert harness.client.get(f"/labs/{LAB}/status").status_code == 200
    harness.clock.advance(120)
    assert harness.client.get(f"/labs/{LAB}/status").status_code == 404


def test_an_extension_moves_the_session_end_up_to_twelve_hours() -> None:
    harness = Harness()
    harness.signed_in()
    harness.cluster.labs[LAB] = make_lab(expires_in=timedelta(days=2))
    assert harness.client.get(f"/labs/{LAB}/status").status_code == 200  # sees the new expiry
    harness.clock.advance(timedelta(hours=11, minutes=59).total_seconds())
    assert harness.client.get(f"/labs/{LAB}/status").status_code == 200
    harness.clock.advance(120)
    assert harness.client.get(f"/labs/{LAB}/status").status_code == 404


def test_revoking_a_link_refuses_it_and_ends_its_sessions_within_the_cache_time() -> None:
    harness = Harness(access_cache_seconds=10)
    harness.signed_in()
    harness.cluster.access_tokens[LAB] = "a-new-token-the-operator-made-0123456789abc"
    # Within the cache time the old token may still work; after it, never.
    harness.clock.advance(10)
    assert harness.sign_in().status_code == 403
    assert harness.client.get(f"/labs/{LAB}/status").status_code == 404
    assert harness.client.get(f"/labs/{LAB}").status_code == 404
    new = harness.sign_in(token="a-new-token-the-operator-made-0123456789abc")
    assert new.status_code == 303


def test_a_deleted_access_secret_refuses_the_link() -> None:
    harness = Harness(access_cache_seconds=3)
    assert harness.sign_in().status_code == 303
    del harness.cluster.access_tokens[LAB]
    harness.clock.advance(3)
    assert harness.sign_in().status_code == 403


def test_the_access_token_is_read_at_most_once_per_cache_time() -> None:
    harness = Harness(access_cache_seconds=10)
    harness.signed_in()
    for _ in range(5):
        harness.client.get(f"/labs/{LAB}/status")
    assert len(harness.cluster.calls_of("access_token")) == 1
    harness.clock.advance(10)
    harness.client.get(f"/labs/{LAB}/status")
    assert len(harness.cluster.calls_of("access_token")) == 2


def test_sign_ins_are_rate_limited_per_client() -> None:
    harness = Harness(sign_ins_per_minute=10)
    for number in range(10):
        harness.cluster.add_lab(make_lab(f"lab-{number}"), f"token-{number}-0123456789abcdef")
        assert harness.sign_in(lab=f"lab-{number}", token="wrong").status_code == 403
    refused = harness.sign_in()  # the right token, but too many attempts from this client
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "60"
    harness.clock.advance(60)
    assert harness.sign_in().status_code == 303


def test_sign_ins_are_rate_limited_per_lab() -> None:
    harness = Harness(sign_ins_per_minute=10)
    for number in range(10):  # guesses from ten addresses, each well within its own limit
        guesser = TestClient(harness.client.app, client=(f"10.0.0.{number}", 5000))
        assert guesser.get(f"/enter/{LAB}", params={"token": "guess"}).status_code == 403
    assert harness.sign_in().status_code == 429  # the lab's budget is used up
    assert harness.sign_in(lab=BOB_LAB_ABSENT).status_code == 403  # other labs are not


def test_no_log_line_holds_a_token(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    harness.sign_in(token="a-wrong-secret-guess-0123456789")
    harness.sign_in()
    csrf = harness.csrf()
    harness.client.post(f"/labs/{LAB}/check", headers={"X-CSRF-Token": csrf})
    # The test's own HTTP client (httpx2) logs the URLs it asks for: not the portal's lines.
    portal_records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = "\n".join(record.getMessage() for record in portal_records)
    assert "sign-in to lab alice-smoke" in logged  # it logs, without the secrets
    for secret in (ACCESS_TOKEN, "a-wrong-secret-guess-0123456789", csrf):
        assert secret not in logged


def test_csrf_is_required_on_every_post(harness: Harness) -> None:
    harness.signed_in()
    for path in ("check", "extend", "hint/scale-web"):
        for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": ""}):
            answer = harness.client.post(f"/labs/{LAB}/{path}", headers=headers, json={})
            assert answer.status_code == 403, (path, headers)
    assert not harness.cluster.calls_of("patch_lab_annotations")


def test_the_csrf_token_of_another_session_does_not_do(harness: Harness) -> None:
    first = harness.signed_in()
    harness.client.cookies.clear()
    second = harness.signed_in()
    assert first != second
    answer = harness.client.post(f"/labs/{LAB}/check", headers={"X-CSRF-Token": first})
    assert answer.status_code == 403


ROUTES = [
    ("GET", ""),
    ("GET", "/status"),
    ("GET", "/events"),
    ("POST", "/check"),
    ("POST", "/extend"),
    ("POST", "/hint/scale-web"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_another_labs_routes_are_not_found(harness: Harness, method: str, path: str) -> None:
    csrf = harness.signed_in()
    headers = {"X-CSRF-Token": csrf}
    answers = [
        harness.client.request(method, f"/labs/{lab}{path}", headers=headers, json={})
        for lab in (BOB, "nobody-at-all")
    ]
    assert [a.status_code for a in answers] == [404, 404]
    assert answers[0].text == answers[1].text  # nothing tells whether bob-smoke exists
    assert not [call for call in harness.cluster.calls if BOB in map(str, call[2])]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_no_session_is_not_found(harness: Harness, method: str, path: str) -> None:
    answer = harness.client.request(method, f"/labs/{LAB}{path}", json={})
    assert answer.status_code == 404


def test_another_labs_terminal_is_not_found(harness: Harness) -> None:
    csrf = harness.signed_in()
    with (
        pytest.raises(WebSocketDenialResponse) as denied,
        harness.client.websocket_connect(
            f"/labs/{BOB}/terminal?csrf={csrf}", headers={"origin": "http://testserver"}
        ),
    ):
        pass
    assert denied.value.status_code == 404
    assert not harness.cluster.calls_of("exec_shell")


def test_a_page_opened_from_another_site_reloads_itself_once(harness: Harness) -> None:
    # A SameSite=Strict cookie is not sent on a navigation that another site started.
    first = harness.client.get(f"/labs/{LAB}")
    assert first.status_code == 404
    assert f'url=/labs/{LAB}?again=1"' in first.text
    again = harness.client.get(f"/labs/{LAB}?again=1")
    assert again.status_code == 404
    assert "http-equiv" not in again.text
