"""The portal's state, shared by its routes: the backend, sessions, caches and clocks."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from roadlab.catalog.loader import CatalogError, load_catalog_leniently
from roadlab.catalog.schema import LabDefinition
from roadlab.portal.access import AccessTokens, LearnerClients, SignInLimiter
from roadlab.portal.ports import LearnerApi, Manifest, PortalBackend
from roadlab.portal.sessions import COOKIE_NAME, Session, SessionStore
from roadlab.portal.settings import PortalSettings
from roadlab.portal.status_view import expires_at

log = logging.getLogger("roadlab.portal")
T = TypeVar("T")
UNAUTHORIZED = 401
ACCESS_CHECK_GRACE_SECONDS = 60.0  # an API hiccup does not end the sessions of every Lab


class LearnerCallError(Exception):
    """A call with the learner's token failed; the message says why, in one line."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Portal:
    backend: PortalBackend
    settings: PortalSettings
    now: Callable[[], datetime] = utc_now
    monotonic: Callable[[], float] = time.monotonic
    sessions: SessionStore = field(init=False)
    access: AccessTokens = field(init=False)
    learners: LearnerClients = field(init=False)
    sign_ins: SignInLimiter = field(init=False)
    start_requests: SignInLimiter = field(init=False)  # the same limit, per Lab
    _catalog: dict[str, LabDefinition] | None = field(init=False, default=None)
    _open: Counter[tuple[str, str]] = field(init=False, default_factory=Counter)
    _open_lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        settings = self.settings
        self.sessions = SessionStore(self.now, settings.longest_session_seconds)
        self.access = AccessTokens(
            self.backend,
            settings.operator_namespace,
            settings.access_cache_seconds,
            self.monotonic,
        )
        self.learners = LearnerClients(
            self.backend,
            settings.learner_token_seconds,
            settings.renew_learner_token_seconds,
            self.now,
        )
        self.sign_ins = SignInLimiter(settings.sign_ins_per_minute, self.monotonic)
        self.start_requests = SignInLimiter(settings.start_requests_per_minute, self.monotonic)

    @contextmanager
    def open_slot(self, kind: str, lab: str, most: int) -> Iterator[bool]:
        """Whether one more long-lived `kind` (a terminal, an event stream) may be open for
        the Lab; each holds a thread and a connection to the API server while it lasts."""
        with self._open_lock:
            granted = self._open[(kind, lab)] < most
            if granted:
                self._open[(kind, lab)] += 1
        try:
            yield granted
        finally:
            if granted:
                with self._open_lock:
                    self._open[(kind, lab)] -= 1
                    if not self._open[(kind, lab)]:
                        del self._open[(kind, lab)]

    def definition(self, lab: Manifest) -> LabDefinition | None:
        """The catalog lab of a Lab (loaded once; a broken lab leaves the others usable)."""
        if self._catalog is None:
            try:
                self._catalog, problems = load_catalog_leniently(self.settings.catalog_dir)
            except CatalogError as error:
                self._catalog, problems = {}, [str(error)]
            for problem in problems:
                log.warning("catalog: %s", problem)
        return self._catalog.get(str((lab.get("spec") or {}).get("lab", "")))

    async def session_for(self, connection: HTTPConnection, lab: str) -> Session | None:
        """The request's session if it is for `lab`, lasts, and its link was not revoked."""
        session = self.sessions.get(connection.cookies.get(COOKIE_NAME))
        if session is None or session.lab != lab:
            return None
        if not await self.still_valid(session):
            return None
        return session

    async def still_valid(self, session: Session) -> bool:
        """False once the session ended or its Lab's access token changed (revoked). While
        the API cannot be asked, a session checked less than a grace period ago lasts."""
        if self.sessions.get(session.id) is None:
            return False
        try:
            current = await run_in_threadpool(
                self.access.still_current, session.lab, session.access_fingerprint
            )
        except Exception as error:
            within_grace = self.monotonic() - session.checked_at < ACCESS_CHECK_GRACE_SECONDS
            log.warning("lab %s: cannot read its access token: %s", session.lab, error)
            return within_grace
        if current:
            session.checked_at = self.monotonic()
        else:
            log.info("lab %s: its access token changed; a session ends", session.lab)
            self.sessions.end(session.id)
        return current

    def follow_lab(self, session: Session, lab: Manifest) -> None:
        """Note the Lab's current expiry (extensions move it) in the session."""
        session.follow_lab_expiry(expires_at(lab), self.sessions.longest)

    async def as_learner(self, lab_name: str, call: Callable[[LearnerApi], T]) -> T:
        """call(the Lab's learner client), in a worker thread; a refused token is dropped,
        so that the next call asks for a new one."""

        def run() -> T:
            try:
                return call(self.learners.for_lab(lab_name))
            except Exception as error:
                status = getattr(error, "status", None)
                if status == UNAUTHORIZED:
                    self.learners.forget(lab_name)
                reason = getattr(error, "reason", None)
                message = f"{status} {reason}" if status and reason else str(error)
                raise LearnerCallError(
                    message or type(error).__name__, status if isinstance(status, int) else None
                ) from error

        return await run_in_threadpool(run)
