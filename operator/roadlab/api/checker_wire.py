"""The warm checker's wire contract, shared by the operator (client) and the checker (server).

The operator POSTs the check spec JSON (the same text a check Job gets in ROADLAB_CHECK_SPEC)
to the checker Service through the API server's service proxy:

    POST /api/v1/namespaces/<ns>/services/roadlab-checker:http/proxy/v1/check
    X-Roadlab-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>

and gets back:

    200  the result document (roadlab.api.results), exactly what a check Job writes to its
         termination log; a malformed spec gives the same error document as a Job does,
         still 200, so the operator records it like any other result
    401  missing or bad signature; no probe ran
    413  body over MAX_BODY_BYTES; no probe ran
    503  every run slot stayed busy (Retry-After: 1); no probe ran

Any other status (these three, or the proxy's own 5xx when no checker pod is ready) carries
{"error": "<reason>"} at most, never a result document: the caller may fall back to a Job.

The key authenticates the operator to the checker: the Service is reachable from every pod
in the cluster, learners' included. A replayed request only re-runs a read-only check.
"""

from __future__ import annotations

import hashlib
import hmac

CHECK_PATH = "/v1/check"
HEALTH_PATH = "/healthz"
SERVICE_NAME = "roadlab-checker"
PORT_NAME = "http"
PORT = 8080
SIGNATURE_HEADER = "X-Roadlab-Signature"
SIGNATURE_SCHEME = "sha256="
KEY_ENV = "ROADLAB_CHECKER_KEY"
MIN_KEY_LENGTH = 32
MAX_BODY_BYTES = 256 * 1024
RETRY_AFTER_SECONDS = 1


def proxy_path(namespace: str) -> str:
    """The API server path that reaches CHECK_PATH on the checker Service in `namespace`."""
    return f"/api/v1/namespaces/{namespace}/services/{SERVICE_NAME}:{PORT_NAME}/proxy{CHECK_PATH}"


def load_key(text: str | None) -> bytes:
    """The shared key from KEY_ENV's value; ValueError when absent or too short.

    Surrounding whitespace is dropped (a Secret made from a file often ends in a newline),
    the same way on both sides since both read the key through this function.
    """
    key = (text or "").strip()
    if len(key) < MIN_KEY_LENGTH:
        state = "is not set" if not key else f"has only {len(key)} characters"
        raise ValueError(f"{KEY_ENV} {state}; it must hold at least {MIN_KEY_LENGTH} characters")
    return key.encode("utf-8")


def sign(key: bytes, body: bytes) -> str:
    """The SIGNATURE_HEADER value for `body`: sha256=<hex HMAC-SHA256>."""
    return SIGNATURE_SCHEME + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(key: bytes, body: bytes, signature: str | None) -> bool:
    """True when `signature` (the header's value, None if absent) signs `body` with `key`."""
    if not signature or not signature.isascii():
        return False
    return hmac.compare_digest(sign(key, body).encode("ascii"), signature.encode("ascii"))
