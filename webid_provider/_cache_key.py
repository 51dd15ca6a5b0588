"""Cache keys: what an entry is bound to, and the trust rule of the cache.

The key binds everything that changes what the credentials may do or whom they belong to: the
role, session name, policy, policy ARNs, duration, provider id, the STS endpoint, and the token
(DESIGN.md, "Cache"). How the token is bound is the **trust rule** (README, "How the cache
works"). Claims in a token are never verified here. A token from a file or a command — sources
trusted to rotate one identity — is keyed by that identity (issuer, subject, audience), so a
rotated token reuses the entry. A token passed as a string or returned by a callable (which
may carry a caller's token in a multi-tenant service) is keyed by its exact value: a token never
obtains credentials STS did not issue for that token or its rotation chain, and a forged token
with a victim's claims goes to STS and fails there.

A configuration whose token source rotates one identity also has a *fingerprint*: everything
but the token that decides the key. The key index (:mod:`webid_provider._entries`) maps it to the
key it resolved to last, so a new session or process finds its entry without the token.

Security: keys and fingerprints are digests; neither the token nor any input is recoverable.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from webid_provider._jwt import TokenClaims, default_session_name, token_identity

#: every cache key, and so every entry's file name, starts with this
ENTRY_PREFIX = "arwwi-"

if TYPE_CHECKING:
    from webid_provider._settings import WebIdentitySettings

#: Token sources trusted to rotate one identity: their entries are keyed by identity.
ROTATING_SOURCES = frozenset({"file", "command"})


@dataclass(frozen=True)
class KeyMaterial:
    """Everything that changes what the credentials may do or whom they belong to."""

    role_arn: str
    role_session_name: str
    duration_seconds: Optional[int]
    policy: Optional[str]
    policy_arns: tuple[str, ...]
    provider_id: Optional[str]
    endpoint: str
    token_identity: str

    def key(self) -> str:
        """A file-name-safe digest; the inputs are not recoverable from it."""
        policy = None
        if self.policy is not None:
            try:  # equal policies with different whitespace or key order share an entry
                policy = json.loads(self.policy)
            except ValueError:
                policy = self.policy
        material = {
            "api": "AssumeRoleWithWebIdentity",
            "role_arn": self.role_arn,
            "role_session_name": self.role_session_name,
            "duration_seconds": self.duration_seconds,
            "policy": policy,
            "policy_arns": sorted(self.policy_arns),
            "provider_id": self.provider_id,
            "endpoint": self.endpoint,
            "identity": self.token_identity,
        }
        digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode("utf-8"))
        return ENTRY_PREFIX + digest.hexdigest()[:40]


def token_hash(token: str) -> str:
    """The SHA-256 of ``token``: binds an entry, or a replayed error, to that exact token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def key_material(
    settings: WebIdentitySettings,
    token: str,
    claims: Optional[TokenClaims],
    *,
    endpoint: str,
) -> KeyMaterial:
    """The key inputs for ``token`` under ``settings``, bound by the trust rule.

    :param claims: the token's unverified claims (``None`` for an opaque token)
    :param endpoint: the identity of the STS endpoint the credentials come from
    """
    identity = token_identity(token, claims)
    rotating = settings.token.kind in ROTATING_SOURCES
    return KeyMaterial(
        role_arn=settings.role_arn,
        role_session_name=settings.role_session_name or default_session_name(identity),
        duration_seconds=settings.duration_seconds,
        policy=settings.policy,
        policy_arns=settings.policy_arns,
        provider_id=settings.provider_id,
        endpoint=endpoint,
        token_identity=identity if rotating else "exact:" + token_hash(token),
    )


def settings_fingerprint(settings: WebIdentitySettings, *, endpoint: str) -> Optional[str]:
    """Everything but the token that decides the key, for sources that rotate one identity
    (``None`` for strings and callables, which are bound to their exact token)."""
    spec = settings.token
    if spec.kind not in ROTATING_SOURCES:
        return None
    material = json.dumps(
        [
            spec.kind,
            str(spec.file) if spec.file is not None else None,
            list(spec.command),
            settings.role_arn,
            settings.role_session_name,
            settings.duration_seconds,
            settings.policy,
            list(settings.policy_arns),
            settings.provider_id,
            endpoint,
        ]
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:40]
