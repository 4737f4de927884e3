"""Certificates of completed milestones and roadmaps: signed statements anyone can check.

A certificate is a JWS (compact, RFC 7515) signed with Ed25519 ("EdDSA", RFC 8037) by the
operator's key; its payload names the learner, the lab and the SHA-256 of its definition,
every task's result with the SHA-256 of its evidence, and the times. The public key is
published (a ConfigMap of the operator's namespace, `kubectl lab public-key`), so
`kubectl lab verify` checks a certificate offline, without the cluster or Roadlab's say-so.
PyJWT does the JWS and cryptography the keys; only the claims are Roadlab's own.
No I/O: signing is a computation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ISSUER = "roadlab.dev"
ALGORITHM = "EdDSA"
TOKEN_TYPE = "roadlab-certificate+jwt"
CertificateKind = Literal["milestone", "roadmap"]


class CertificateError(ValueError):
    """A certificate that does not verify: the reason is the message."""


def canonical_json(value: object) -> bytes:
    """The one byte form digests are taken of: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_of(value: object) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


# --- keys -----------------------------------------------------------------------------------


def new_private_key_pem() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def load_private_key(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise CertificateError("the signing key is not an Ed25519 key")
    return key


def public_key_pem(private_pem: str) -> str:
    return (
        load_private_key(private_pem)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def load_public_key(pem: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError as error:
        raise CertificateError(f"not a PEM public key: {error}") from error
    if not isinstance(key, Ed25519PublicKey):
        raise CertificateError("the public key is not an Ed25519 key")
    return key


def key_id(public_pem: str) -> str:
    """The key's id in a certificate's header: the start of the SHA-256 of its raw bytes."""
    raw = load_public_key(public_pem).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return hashlib.sha256(raw).hexdigest()[:16]


# --- claims ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskClaim:
    id: str
    state: str
    evidence_sha256: str | None


@dataclass(frozen=True)
class MilestoneFacts:
    """What a milestone certificate states (all of it from the Enrollment and its Lab)."""

    learner: str
    enrollment: str
    roadmap: str
    roadmap_title: str
    milestone: str
    milestone_title: str
    lab_id: str
    lab_name: str
    lab_definition_sha256: str
    parameters: Mapping[str, object]
    tasks: Sequence[TaskClaim]
    started_at: str | None
    completed_at: str
    completed_epoch: int
    time_spent_seconds: int | None
    checks_run: int | None


def milestone_claims(facts: MilestoneFacts) -> dict[str, Any]:
    """The payload of a milestone certificate. Deterministic (iat is the completion time,
    jti a digest of what it names), so signing again after a restart gives the same JWS."""
    body: dict[str, Any] = {
        "kind": "milestone",
        "roadmap": {"name": facts.roadmap, "title": facts.roadmap_title},
        "enrollment": facts.enrollment,
        "milestone": {"id": facts.milestone, "title": facts.milestone_title},
        "lab": {
            "id": facts.lab_id,
            "name": facts.lab_name,
            "definitionSHA256": facts.lab_definition_sha256,
            "parameters": dict(facts.parameters),
        },
        "tasks": [
            {"id": t.id, "state": t.state, "evidenceSHA256": t.evidence_sha256} for t in facts.tasks
        ],
        "startedAt": facts.started_at,
        "completedAt": facts.completed_at,
        "timeSpentSeconds": facts.time_spent_seconds,
        "checksRun": facts.checks_run,
    }
    return _with_registered_claims(facts.learner, facts.completed_epoch, body)


@dataclass(frozen=True)
class MilestoneCertificateRef:
    id: str
    completed_at: str
    certificate: str


def roadmap_claims(  # noqa: PLR0917 - the facts a roadmap certificate states
    learner: str,
    enrollment: str,
    roadmap: str,
    roadmap_title: str,
    milestones: Sequence[MilestoneCertificateRef],
    completed_at: str,
    completed_epoch: int,
) -> dict[str, Any]:
    """The payload of a whole roadmap's certificate: each milestone certificate by digest."""
    body: dict[str, Any] = {
        "kind": "roadmap",
        "roadmap": {"name": roadmap, "title": roadmap_title},
        "enrollment": enrollment,
        "milestones": [
            {
                "id": m.id,
                "completedAt": m.completed_at,
                "certificateSHA256": hashlib.sha256(m.certificate.encode()).hexdigest(),
            }
            for m in milestones
        ],
        "completedAt": completed_at,
    }
    return _with_registered_claims(learner, completed_epoch, body)


def _with_registered_claims(learner: str, epoch: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "iss": ISSUER,
        "sub": learner,
        "iat": epoch,
        "jti": sha256_of([learner, body])[:32],
        "roadlab": body,
    }


# --- signing and verifying ------------------------------------------------------------------


def sign(claims: Mapping[str, Any], private_pem: str) -> str:
    kid = key_id(public_key_pem(private_pem))
    return jwt.encode(
        dict(claims),
        load_private_key(private_pem),
        algorithm=ALGORITHM,
        headers={"kid": kid, "typ": TOKEN_TYPE},
    )


@dataclass(frozen=True)
class Verified:
    key_id: str
    claims: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.claims["roadlab"].get("kind", ""))


def verify(certificate: str, public_keys: Sequence[str]) -> Verified:
    """The certificate's claims if one of `public_keys` (PEM) signed it; CertificateError
    with the reason otherwise (tampered, another key, not a certificate)."""
    text = certificate.strip()
    try:
        header = jwt.get_unverified_header(text)
    except jwt.DecodeError as error:
        raise CertificateError(f"not a certificate (a compact JWS): {error}") from error
    if header.get("alg") != ALGORITHM or header.get("typ") != TOKEN_TYPE:
        raise CertificateError(
            f"not a Roadlab certificate: alg {header.get('alg')!r}, typ {header.get('typ')!r}"
        )
    by_id = {key_id(pem): pem for pem in public_keys}
    kid = str(header.get("kid", ""))
    if kid not in by_id:
        known = ", ".join(sorted(by_id)) or "none"
        raise CertificateError(
            f"signed by key {kid!r}, which is not among the given keys ({known})"
        )
    try:
        claims = jwt.decode(
            text,
            load_public_key(by_id[kid]),
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["iss", "sub", "iat", "jti"], "verify_iat": False},
        )
    except jwt.InvalidSignatureError as error:
        raise CertificateError(
            "the signature does not match: the certificate was altered"
        ) from error
    except jwt.PyJWTError as error:
        raise CertificateError(f"the certificate does not verify: {error}") from error
    if not isinstance(claims.get("roadlab"), dict):
        raise CertificateError("the certificate has no roadlab claims")
    return Verified(key_id=kid, claims=claims)
