"""Server-side sessions, in memory: a random id in a cookie names one Lab, a CSRF token
and when the session ends (the Lab's expiry or a longest time, whichever comes first)."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

COOKIE_NAME = "roadlab_session"
MAX_SESSIONS = 20_000  # bounded memory; the oldest give way


@dataclass
class Session:
    id: str
    lab: str
    csrf: str
    access_fingerprint: str  # of the access token it signed in with (revocation ends it)
    started_at: datetime
    ends_at: datetime
    checked_at: float = 0.0  # monotonic time its access token was last found current

    def follow_lab_expiry(self, expires_at: datetime | None, longest: timedelta) -> None:
        """The Lab's time changed (an extension): the session ends with it, never later
        than `longest` after sign-in."""
        if expires_at is not None:
            self.ends_at = min(expires_at, self.started_at + longest)


class SessionStore:
    def __init__(self, now: Callable[[], datetime], longest_seconds: float) -> None:
        self._now = now
        self.longest = timedelta(seconds=longest_seconds)
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(self, lab: str, access_fingerprint: str, lab_expires_at: datetime | None) -> Session:
        now = self._now()
        session = Session(
            id=secrets.token_urlsafe(32),
            lab=lab,
            csrf=secrets.token_urlsafe(32),
            access_fingerprint=access_fingerprint,
            started_at=now,
            ends_at=now + self.longest,
        )
        session.follow_lab_expiry(lab_expires_at, self.longest)
        with self._lock:
            self._forget_ended(now)
            while len(self._sessions) >= MAX_SESSIONS:
                del self._sessions[next(iter(self._sessions))]
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The session, while it lasts."""
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.ends_at <= self._now():
                del self._sessions[session_id]
                return None
            return session

    def end(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def _forget_ended(self, now: datetime) -> None:
        for key, session in list(self._sessions.items()):
            if session.ends_at <= now:
                del self._sessions[key]

    def __len__(self) -> int:
        return len(self._sessions)
