"""The portal's HTTP routes. Every route but sign-in and /healthz needs a session for the
Lab in its path (else 404, whatever the Lab: nothing tells whether another Lab exists),
and every POST the session's CSRF token in X-CSRF-Token (else 403). Everything is done
with the Lab's learner token: the Lab, and for a Lab started for an Enrollment (its
roadlab.dev/enrollment label), that Enrollment and its Roadmap."""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from roadlab.api import naming
from roadlab.api.durations import DurationError, parse_duration
from roadlab.api.extensions import MIN_EXTENSION, format_request
from roadlab.api.lab import MAX_TTL
from roadlab.api.roadmap import format_start_request, parse_start_request
from roadlab.portal.access import fingerprint
from roadlab.portal.context import LearnerCallError, Portal
from roadlab.portal.guide_html import guide_html
from roadlab.portal.live import status_events
from roadlab.portal.pages import lab_page, message_page
from roadlab.portal.ports import LearnerApi, Manifest
from roadlab.portal.roadmap_view import enrollment_of, roadmap_of, roadmap_view
from roadlab.portal.sessions import COOKIE_NAME, Session
from roadlab.portal.status_view import expires_at, is_expired, status_view, task_hint

log = logging.getLogger("roadlab.portal")
CSRF_HEADER = "x-csrf-token"
REFUSED = "This link is invalid, expired or revoked. Ask whoever gave it to you for a new one."
RETRY_MARK = "again"


def _portal(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


def is_lab_name(name: str) -> bool:
    return naming.is_dns1123_label(name) and len(name) <= naming.MAX_LAB_NAME_LENGTH


def new_request_token(now: datetime) -> str:
    """A fresh check or extension request token: milliseconds, and randomness so that two
    clicks in one millisecond differ (no ':', which ends an extension request's token)."""
    return f"{int(now.timestamp() * 1000)}-{secrets.token_hex(4)}"


def not_found(request: Request) -> Response:
    return JSONResponse({"error": "not found"}, status_code=404)


def page_not_found(request: Request) -> Response:
    """404 for the page. A browser that followed a link from another site sends no
    SameSite=Strict cookie, even after the sign-in's redirect: with no cookie at all, the
    page reloads itself once (a navigation of this site's own, which sends it)."""
    lab = request.path_params["lab"]
    if (
        COOKIE_NAME not in request.cookies
        and RETRY_MARK not in request.query_params
        and is_lab_name(lab)
    ):
        again = f"/labs/{lab}?{RETRY_MARK}=1"
        return message_page(404, "Opening your lab…", "One moment.", refresh_to=again)
    return message_page(
        404, "Not found", "There is no lab here for you. Open your lab's link again."
    )


def csrf_ok(request: Request, session: Session) -> bool:
    given = request.headers.get(CSRF_HEADER, "")
    return hmac.compare_digest(given.encode(), session.csrf.encode())


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def enter(request: Request) -> Response:
    """GET /enter/<lab>?token=...: a session for the Lab, then the token leaves the URL."""
    portal = _portal(request)
    lab = request.path_params["lab"]
    address = request.client.host if request.client else "unknown"
    named = lab if is_lab_name(lab) else "(not a lab name)"
    if not portal.sign_ins.allow(f"client:{address}", f"lab:{named}"):
        log.info("sign-in to lab %s from %s: too many attempts", named, address)
        page = message_page(429, "Too many attempts", "Wait a minute, then open your link again.")
        page.headers["Retry-After"] = "60"
        return page
    token = request.query_params.get("token", "")
    found: dict[str, Any] | None = None
    try:
        wellformed = is_lab_name(lab) and bool(token)
        accepted = wellformed and await run_in_threadpool(portal.access.accepts, lab, token)
    except Exception as error:
        log.warning("sign-in to lab %s: cannot read its access token: %s", named, error)
        return message_page(503, "Try again in a moment", "The portal cannot check links now.")
    if accepted:
        try:
            found = await portal.as_learner(lab, lambda api: api.get_lab(lab))
        except Exception as error:  # e.g. the namespace (and its learner) is gone
            log.info("sign-in to lab %s: cannot read it as the learner: %s", lab, error)
    if found is None or is_expired(found, portal.now()):
        log.info("sign-in to lab %s from %s: refused", named, address)
        return message_page(403, "This link does not open a lab", REFUSED)
    session = portal.sessions.start(lab, fingerprint(token), expires_at(found))
    session.checked_at = portal.monotonic()
    log.info("sign-in to lab %s from %s: a session until %s", lab, address, session.ends_at)
    response = RedirectResponse(f"/labs/{lab}", status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        session.id,
        max_age=max(1, int((session.ends_at - portal.now()).total_seconds())),
        path="/",
        secure=portal.settings.secure_cookies,
        httponly=True,
        samesite="strict",
    )
    return response


async def _session_and_lab(request: Request) -> tuple[Session, dict[str, Any]] | None:
    """The session for the path's Lab, and the Lab as its learner reads it now."""
    portal = _portal(request)
    lab = request.path_params["lab"]
    session = await portal.session_for(request, lab)
    if session is None:
        return None
    found = await portal.as_learner(lab, lambda api: api.get_lab(lab))
    if found is None:  # deleted: so is the session
        portal.sessions.end(session.id)
        return None
    portal.follow_lab(session, found)
    return session, found


async def lab_page_route(request: Request) -> Response:
    portal = _portal(request)
    current = await _session_and_lab(request)
    if current is None:
        return page_not_found(request)
    session, lab = current
    definition = portal.definition(lab)
    guide = await run_in_threadpool(guide_html, lab, definition, portal.settings.catalog_dir)
    status = status_view(lab, definition, portal.now())
    return lab_page(
        title=definition.title if definition is not None else session.lab,
        lab=session.lab,
        learner=str((lab.get("spec") or {}).get("learner", "")),
        namespace=naming.namespace_for(session.lab),
        csrf=session.csrf,
        guide=guide,
        status=status,
        roadmap=await _roadmap_panel(portal, session.lab, lab, status["completed"]),
    )


def _enrollment_and_roadmap(api: LearnerApi, name: str) -> tuple[Manifest | None, Manifest | None]:
    enrollment = api.get_enrollment(name)
    return enrollment, roadmap_of(api, enrollment) if enrollment is not None else None


async def _roadmap_panel(
    portal: Portal, lab_name: str, lab: Manifest, completed: bool
) -> dict[str, Any] | None:
    """The roadmap panel's JSON, for a Lab started for an Enrollment (else None, and no
    Enrollment is asked for). A failed read shows a line in the panel, not a broken page."""
    enrollment = enrollment_of(lab)
    if enrollment is None:
        return None
    try:
        found, roadmap = await portal.as_learner(
            lab_name, lambda api: _enrollment_and_roadmap(api, enrollment)
        )
    except LearnerCallError as error:
        log.warning("lab %s: cannot read enrollment %s: %s", lab_name, enrollment, error)
        problem = f"Your roadmap cannot be shown now ({error}). Reload the page in a moment."
        return roadmap_view(
            enrollment, None, None, lab=lab, lab_completed=completed, problem=problem
        )
    return roadmap_view(enrollment, found, roadmap, lab=lab, lab_completed=completed)


async def status_route(request: Request) -> Response:
    portal = _portal(request)
    current = await _session_and_lab(request)
    if current is None:
        return not_found(request)
    _, lab = current
    return JSONResponse(status_view(lab, portal.definition(lab), portal.now()))


async def events_route(request: Request) -> Response:
    current = await _session_and_lab(request)
    if current is None:
        return not_found(request)
    session, lab = current
    return StreamingResponse(
        status_events(_portal(request), session, lab),
        media_type="text/event-stream",
        headers={"X-Accel-Buffering": "no"},  # nginx: pass each event on at once
    )


async def _annotate(request: Request, annotation: str, value: str) -> None:
    lab = request.path_params["lab"]
    await _portal(request).as_learner(
        lab, lambda api: api.patch_lab_annotations(lab, {annotation: value})
    )


async def _posting_session(request: Request) -> Session | Response:
    """The session of a POST with its CSRF token, or the response that refuses it."""
    session = await _portal(request).session_for(request, request.path_params["lab"])
    if session is None:
        return not_found(request)
    if not csrf_ok(request, session):
        return JSONResponse({"error": "missing or wrong X-CSRF-Token"}, status_code=403)
    return session


async def check_route(request: Request) -> Response:
    session = await _posting_session(request)
    if isinstance(session, Response):
        return session
    token = new_request_token(_portal(request).now())
    await _annotate(request, naming.ANNOTATION_CHECK_REQUESTED, token)
    log.info("lab %s: check requested (%s)", session.lab, token)
    return JSONResponse({"token": token}, status_code=202)


async def extend_route(request: Request) -> Response:
    session = await _posting_session(request)
    if isinstance(session, Response):
        return session
    try:
        body = json.loads(await request.body() or b"{}")
        amount = parse_duration(str(body["duration"]))
    except (ValueError, KeyError, TypeError, DurationError) as error:
        return JSONResponse({"error": f'give {{"duration": "30m"}}: {error}'}, status_code=400)
    if not MIN_EXTENSION <= amount <= MAX_TTL:
        return JSONResponse({"error": f"{body['duration']} is out of range"}, status_code=400)
    token = new_request_token(_portal(request).now())
    await _annotate(request, naming.ANNOTATION_EXTEND_REQUESTED, format_request(token, amount))
    log.info("lab %s: extension requested (%s)", session.lab, token)
    return JSONResponse({"token": token}, status_code=202)


async def hint_route(request: Request) -> Response:
    session = await _posting_session(request)
    if isinstance(session, Response):
        return session
    portal = _portal(request)
    lab = await portal.as_learner(session.lab, lambda api: api.get_lab(session.lab))
    if lab is None:
        return not_found(request)
    hint = task_hint(lab, portal.definition(lab), request.path_params["task"])
    if hint is None:
        return JSONResponse({"error": "no such task"}, status_code=404)
    return JSONResponse({"hint": hint})


async def start_route(request: Request) -> Response:
    """POST /labs/<lab>/start: ask the operator to start the next milestone of the Lab's
    Enrollment (or {"milestone": id}: that one), as the learner. The answer comes in the
    Enrollment's status.lastStart, under the token returned here (the `roadmap` events)."""
    session = await _posting_session(request)
    if isinstance(session, Response):
        return session
    portal = _portal(request)
    if not portal.start_requests.allow(f"lab:{session.lab}"):
        log.info("lab %s: too many start requests", session.lab)
        refused = JSONResponse({"error": "too many start requests: wait a minute"}, 429)
        refused.headers["Retry-After"] = "60"
        return refused
    try:
        body = json.loads(await request.body() or b"{}")
        if not isinstance(body, dict):
            raise ValueError("not a JSON object")
        milestone = body.get("milestone")
        if milestone is not None and not isinstance(milestone, str):
            raise ValueError("the milestone is an id")
    except ValueError as error:
        return JSONResponse({"error": f'give {{}} or {{"milestone": "id"}}: {error}'}, 400)
    token = new_request_token(portal.now())
    value = format_start_request(token, milestone or None)
    if parse_start_request(value) is None:
        return JSONResponse({"error": f"{milestone!r} is not a milestone id"}, status_code=400)
    lab = await portal.as_learner(session.lab, lambda api: api.get_lab(session.lab))
    if lab is None:
        return not_found(request)
    enrollment = enrollment_of(lab)
    if enrollment is None:
        return JSONResponse({"error": "this lab is not part of a roadmap"}, status_code=404)
    await portal.as_learner(session.lab, lambda api: api.request_start(enrollment, value))
    log.info("lab %s: start requested in enrollment %s (%s)", session.lab, enrollment, value)
    return JSONResponse({"token": token}, status_code=202)
