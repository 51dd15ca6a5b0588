"""An unverified peek at a JWT's claims, and the identity and session name derived from them.

STS verifies the token; we read its claims only for cache keys, default session names and
messages such as "token expired at ...", so no signature is checked here. The decoding
follows pyjwt's ``jwt.decode(token, options={"verify_signature": False})`` rule for rule
(strict base64url segments, JSON objects for header and payload, ``kid`` and ``crit``
header checks, no detached payloads), but with the standard library only: pyjwt imports
``cryptography``'s backends when they are installed (about 20 ms), which the fast
``credential-process`` path and ``import webid_provider`` must not pay. The unit tests
compare both decoders on the same tokens.

Security: nothing here logs or raises with a token or a claim value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime, timezone
from typing import Any, NamedTuple, Optional

_BASE64URL_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
#: a web identity token's length as STS accepts it (WebIdentityToken: 4-20000 characters)
MIN_TOKEN_CHARS, MAX_TOKEN_CHARS = 4, 20000
#: the most of a token file that is read (a token with room for whitespace)
MAX_TOKEN_FILE_BYTES = 64 * 1024

#: the only critical header extension pyjwt understands
_SUPPORTED_CRIT = frozenset({"b64"})


class TokenClaims(NamedTuple):
    """The claims of a JWT that matter to us, read without verification.

    A named tuple rather than a dataclass: importing ``dataclasses`` (with ``inspect``) would
    cost the fast ``credential-process`` path more than everything else it imports.
    """

    issuer: Optional[str]
    subject: Optional[str]
    audience: tuple[str, ...]
    expires_at: Optional[datetime]
    issued_at: Optional[datetime]


class _NotAJwt(ValueError):
    """The token is not a decodable JWT (an opaque OAuth 2.0 token, or garbage)."""


def peek_claims(token: str) -> Optional[TokenClaims]:
    """Read a JWT's claims without verifying it; ``None`` for an opaque (OAuth 2.0) token."""
    try:
        claims = _unverified_payload(token)
    except _NotAJwt:
        return None
    aud = claims.get("aud")
    audience = tuple(str(a) for a in aud) if isinstance(aud, list) else ((str(aud),) if aud else ())
    return TokenClaims(
        issuer=_claim_text(claims.get("iss")),
        subject=_claim_text(claims.get("sub")),
        audience=audience,
        expires_at=_claim_time(claims.get("exp")),
        issued_at=_claim_time(claims.get("iat")),
    )


def token_identity(token: str, claims: Optional[TokenClaims]) -> str:
    """A stable fingerprint of *who* the token is, not of the token itself.

    For a JWT: issuer, subject and audience, so a rotated Kubernetes token (new ``iat``, same
    identity) keeps the same cache entry. For an opaque token: a hash of the token.
    """
    if claims is not None and (claims.issuer or claims.subject):
        material = "\n".join(
            ["jwt", claims.issuer or "", claims.subject or "", ",".join(sorted(claims.audience))]
        )
    else:
        material = "opaque\n" + token
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def default_session_name(identity: str) -> str:
    """A deterministic RoleSessionName for an identity.

    Processes that share an identity agree on it (so they can share cached credentials); it
    never shows the subject verbatim (CloudTrail warns against PII in session names).
    """
    return f"webid-{identity[:16]}"


def _unverified_payload(token: str) -> dict[str, Any]:
    try:
        data = token.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _NotAJwt("not UTF-8") from exc
    try:
        signing_input, crypto_segment = data.rsplit(b".", 1)
        header_segment, payload_segment = signing_input.split(b".", 1)
    except ValueError as exc:
        raise _NotAJwt("not enough segments") from exc
    header = _json_object(_base64url_segment(header_segment))
    if header.get("b64", True) is False:
        # A detached payload (RFC 7797): pyjwt refuses it without the payload in hand.
        raise _NotAJwt("detached payload")
    payload = _base64url_segment(payload_segment)
    _base64url_segment(crypto_segment)
    _check_header(header)
    return _json_object(payload)


def _base64url_segment(segment: bytes) -> bytes:
    """Decode one segment as strictly as pyjwt: at most two '=' of padding, only the
    base64url alphabet, and the canonical encoding of what it decodes to."""
    stripped = segment.rstrip(b"=")
    padding = len(segment) - len(stripped)
    if padding > 2 or (padding and len(segment) % 4 != 0):
        raise _NotAJwt("bad padding")
    if len(stripped) % 4 == 1 or any(byte not in _BASE64URL_ALPHABET for byte in stripped):
        raise _NotAJwt("not base64url")
    try:
        decoded = base64.urlsafe_b64decode(stripped + b"=" * (-len(stripped) % 4))
    except (TypeError, binascii.Error) as exc:
        raise _NotAJwt("not base64url") from exc
    if base64.urlsafe_b64encode(decoded).replace(b"=", b"") != stripped:
        raise _NotAJwt("not canonical base64url")
    return decoded


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise _NotAJwt("not JSON") from exc
    if not isinstance(value, dict):
        raise _NotAJwt("not a JSON object")
    return value


def _check_header(header: dict[str, Any]) -> None:
    if "kid" in header and not isinstance(header["kid"], str):
        raise _NotAJwt("kid is not a string")
    if "crit" in header:
        crit = header["crit"]
        if not isinstance(crit, list) or not crit:
            raise _NotAJwt("crit is not a non-empty list")
        for extension in crit:
            if not isinstance(extension, str) or extension not in _SUPPORTED_CRIT:
                raise _NotAJwt("unsupported critical extension")
            if extension not in header:
                raise _NotAJwt("critical extension missing")


def _claim_text(value: object) -> Optional[str]:
    return str(value) if value not in (None, "") else None


def _claim_time(value: object) -> Optional[datetime]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    return None
