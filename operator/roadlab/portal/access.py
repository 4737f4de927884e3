"""Who may use a Lab: its access token (cached briefly), learner clients (cached until
their token nears its end), and the sign-in rate limit. Thread-safe: the Kubernetes calls
run in worker threads."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from roadlab.api import naming
from roadlab.portal.ports import LearnerApi, PortalBackend


def fingerprint(token: str) -> str:
    """What a session keeps of the token it signed in with: enough to notice a new one."""
    return hashlib.sha256(token.encode()).hexdigest()


class AccessTokens:
    """The SHA-256 of the Lab's current access token (the Lab's status.portalTokenSHA256;
    the token itself stays in a Secret the portal cannot read), read again after
    `cache_seconds` at most, so that a revoked (deleted, then remade) token stops old links
    and their sessions within it."""

    def __init__(
        self,
        backend: PortalBackend,
        namespace: str,
        cache_seconds: float,
        monotonic: Callable[[], float],
    ) -> None:
        self._backend = backend
        self._namespace = namespace
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def current(self, lab_name: str) -> str | None:
        now = self._monotonic()
        with self._lock:
            cached = self._cache.get(lab_name)
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        token = self._backend.access_token_digest(lab_name)
        with self._lock:
            # Forget labs not asked about lately (sign-in attempts on made-up names).
            for name, (read_at, _) in list(self._cache.items()):
                if now - read_at >= self._cache_seconds:
                    del self._cache[name]
            self._cache[lab_name] = (now, token)
        return token

    def accepts(self, lab_name: str, given: str) -> bool:
        expected = self.current(lab_name)
        return expected is not None and hmac.compare_digest(
            fingerprint(given).encode(), expected.encode()
        )

    def still_current(self, lab_name: str, signed_in_with: str) -> bool:
        expected = self.current(lab_name)
        return expected is not None and hmac.compare_digest(
            expected.encode(), signed_in_with.encode()
        )


@dataclass
class _LearnerToken:
    token: str
    expires_at: datetime
    client: LearnerApi


class LearnerClients:
    """A client per Lab with a TokenRequest token of its `learner` ServiceAccount, renewed
    when less than `renew_seconds` of it is left."""

    def __init__(
        self,
        backend: PortalBackend,
        token_seconds: int,
        renew_seconds: float,
        now: Callable[[], datetime],
    ) -> None:
        self._backend = backend
        self._token_seconds = token_seconds
        self._renew = timedelta(seconds=renew_seconds)
        self._now = now
        self._tokens: dict[str, _LearnerToken] = {}
        self._lab_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def for_lab(self, lab_name: str) -> LearnerApi:
        with self._lock:
            lab_lock = self._lab_locks.setdefault(lab_name, threading.Lock())
        with lab_lock:  # one TokenRequest at a time per Lab; other Labs do not wait
            now = self._now()
            held = self._tokens.get(lab_name)
            if held is not None and held.expires_at - now > self._renew:
                return held.client
            token, expires_at = self._backend.learner_token(
                naming.namespace_for(lab_name),
                naming.LEARNER_SERVICE_ACCOUNT,
                self._token_seconds,
            )
            held = _LearnerToken(
                token,
                expires_at or now + timedelta(seconds=self._token_seconds),
                self._backend.learner_client(token),
            )
        with self._lock:
            self._tokens[lab_name] = held
            for name, other in list(self._tokens.items()):  # labs whose tokens ran out
                if other.expires_at <= now:
                    del self._tokens[name]
                    self._lab_locks.pop(name, None)
        return held.client

    def forget(self, lab_name: str) -> None:
        """Drop the Lab's token (the API server refused it): the next call asks anew."""
        with self._lock:
            self._tokens.pop(lab_name, None)


class SignInLimiter:
    """At most `limit` sign-in attempts a minute per key (a client address, a lab); also
    the limit of a Lab's start requests (key: the lab)."""

    WINDOW_SECONDS = 60.0
    MAX_KEYS = 10_000  # bounded memory whatever the callers make up

    def __init__(self, limit: int, monotonic: Callable[[], float]) -> None:
        self._limit = limit
        self._monotonic = monotonic
        self._attempts: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, *keys: str) -> bool:
        """Count an attempt against every key; False when any of them is over its limit."""
        now = self._monotonic()
        allowed = True
        with self._lock:
            if len(self._attempts) >= self.MAX_KEYS:
                self._forget_idle(now)
            for key in keys:
                attempts = self._attempts.setdefault(key, deque())
                while attempts and now - attempts[0] >= self.WINDOW_SECONDS:
                    attempts.popleft()
                if len(attempts) >= self._limit:
                    allowed = False
                else:
                    attempts.append(now)
        return allowed

    def _forget_idle(self, now: float) -> None:
        for key, attempts in list(self._attempts.items()):
            if not attempts or now - attempts[-1] >= self.WINDOW_SECONDS:
                del self._attempts[key]
        while len(self._attempts) >= self.MAX_KEYS:  # all busy: drop the oldest keys
            del self._attempts[next(iter(self._attempts))]
