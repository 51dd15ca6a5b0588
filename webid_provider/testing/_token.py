"""The token checks real STS makes on AssumeRoleWithWebIdentity: JWT or OAuth 2.0 token.

A JWT must be signed (RS256/384/512 or ES256/384/512) by a key in the trusted issuer's JWKS,
found by ``kid``; its ``iss`` must be that issuer, one ``aud`` value a registered client ID,
and its integer ``exp`` in the future. A non-JWT token is an OAuth 2.0 access token: it needs
a ``ProviderId`` and must have been registered with the emulator for that provider. Failures
answer ``InvalidIdentityToken``, except a passed ``exp``, which answers
``ExpiredTokenException`` "Token expired: current date/time X must be before the expiration
date/time Y" (epoch seconds, as STS prints them).

Choices where STS's exact behaviour is not documented:

- ``ProviderId`` with a JWT answers ``InvalidIdentityToken``. STS documents "do not specify
  this value for OpenID Connect ID tokens"; given one, it treats the token as an OAuth 2.0
  access token for that provider, which rejects it. ``InvalidIdentityToken`` is also what the
  package's error classification treats as permanent, which is the behaviour tests need.
- No message produced here contains "Couldn't retrieve verification key": that text marks
  the one *transient* ``InvalidIdentityToken`` (STS failed to fetch the JWKS), which tests
  inject with ``StsEmulator.fail_next`` instead. An unknown ``kid`` is therefore reported as
  a permanent "not in the identity provider's JWKS".

Security: messages never contain the token; only its claims' names and public values.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import jwt

from webid_provider.testing._validate import StsFault, WebIdentityRequest
from webid_provider.testing.issuer import SIGNING_ALGORITHMS, SOURCE_IDENTITY_CLAIM

_NOT_A_JWT = (
    "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)"
)
_NOT_VALIDATED = (
    "The web identity token that was passed could not be validated by Amazon Web Services. "
    "Get a new identity token from the identity provider and then retry the request."
)


@dataclass(frozen=True)
class Identity:
    """What a verified token says: the output fields STS derives from it."""

    subject: str
    audience: str
    provider: str
    source_identity: Optional[str]
    #: the token's ``amr`` claim (authentication methods), for trust policy conditions
    amr: Tuple[str, ...] = ()


@dataclass(frozen=True)
class OpaqueToken:
    """An OAuth 2.0 access token registered with the emulator (kept by hash only)."""

    provider_id: str
    subject: str
    audience: str


def unverified_subject(request: WebIdentityRequest) -> Optional[str]:
    """The ``sub`` claim of a JWT token without verifying anything, for call records."""
    if not request.token:
        return None
    try:
        claims = jwt.decode(request.token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    sub = claims.get("sub")
    return sub if isinstance(sub, str) else None


def verify_token(
    request: WebIdentityRequest,
    *,
    issuer: str,
    jwks: Mapping[str, Any],
    audiences: Optional[Sequence[str]],
    opaque: Mapping[str, OpaqueToken],
    now: Optional[float] = None,
) -> Identity:
    """Verify the token the way STS does and return what it says.

    :param issuer: the only accepted ``iss`` (the account's one OIDC provider)
    :param jwks: that provider's JWK Set
    :param audiences: accepted ``aud`` values (the provider's client IDs); ``None`` when no
        identity provider is registered for ``issuer``
    :param opaque: registered OAuth 2.0 tokens, by SHA-256 hex
    :param now: epoch seconds; defaults to the real clock
    :raises StsFault: ``InvalidIdentityToken`` or ``ExpiredTokenException``
    """
    token = request.token or ""
    current = int(time.time() if now is None else now)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return _verify_opaque(request, opaque)
    alg = _check_header(header, request)
    try:
        unverified: Dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise StsFault("InvalidIdentityToken", _NOT_A_JWT) from None
    if unverified.get("iss") != issuer or audiences is None:
        raise StsFault(
            "InvalidIdentityToken",
            f"No OpenIDConnect provider found in your account for {unverified.get('iss')!s}",
        )
    claims = _verify_signature(token, header, alg, jwks)
    _check_times(claims, current)
    audience = _matching_audience(claims.get("aud"), audiences)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise StsFault("InvalidIdentityToken", "Missing sub claim")
    source = claims.get(SOURCE_IDENTITY_CLAIM)
    return Identity(
        subject=sub,
        audience=audience,
        provider=issuer,
        source_identity=source if isinstance(source, str) else None,
        amr=_strings(claims.get("amr")),
    )


def _check_header(header: Mapping[str, Any], request: WebIdentityRequest) -> str:
    """The token's signing algorithm, once the header is one STS accepts."""
    if request.provider_id is not None:
        raise StsFault(
            "InvalidIdentityToken",
            "ProviderId is only for OAuth 2.0 access tokens; do not specify it for an "
            "OpenID Connect ID token.",
        )
    alg = header.get("alg")
    if alg not in SIGNING_ALGORITHMS:
        raise StsFault(
            "InvalidIdentityToken",
            f"Unsupported token signing algorithm {alg!s}; tokens must be signed using RSA "
            "(RS256, RS384, RS512) or ECDSA (ES256, ES384, ES512) keys.",
        )
    return str(alg)


def _check_times(claims: Mapping[str, Any], now: int) -> None:
    """Integer ``exp``/``iat``/``nbf``, ``exp`` present and ahead of ``now``, ``nbf`` passed."""
    for claim in ("exp", "iat", "nbf"):
        value = claims.get(claim)
        if claim in claims and (not isinstance(value, int) or isinstance(value, bool)):
            raise StsFault(
                "InvalidIdentityToken",
                f"Invalid {claim} claim: timestamps must be formatted as an integer or long "
                "integer",
            )
    exp = claims.get("exp")
    if not isinstance(exp, int):
        raise StsFault("InvalidIdentityToken", "Missing exp claim")
    if now >= exp:
        raise StsFault(
            "ExpiredTokenException",
            f"Token expired: current date/time {now} must be before the expiration date/time {exp}",
        )
    nbf = claims.get("nbf")
    if isinstance(nbf, int) and nbf > now:
        raise StsFault("InvalidIdentityToken", f"Token is not yet valid (nbf {nbf})")


def _strings(value: object) -> Tuple[str, ...]:
    """A claim that may be one string or a list of them (``amr``), as a tuple."""
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    return (value,) if isinstance(value, str) and value else ()


def _verify_signature(
    token: str, header: Mapping[str, Any], alg: str, jwks: Mapping[str, Any]
) -> Dict[str, Any]:
    kid = header.get("kid")
    keys = [k for k in jwks.get("keys", ()) if isinstance(k, Mapping) and k.get("kid") == kid]
    if not keys:
        raise StsFault(
            "InvalidIdentityToken",
            f"The token's key id {kid!s} is not in the identity provider's JWKS.",
        )
    for key in keys:
        try:
            jwk = jwt.PyJWK(dict(key), algorithm=alg)
            claims: Dict[str, Any] = jwt.decode(
                token,
                jwk,
                algorithms=[alg],
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            continue
        return claims
    raise StsFault(
        "InvalidIdentityToken",
        "Couldn't verify the token signature with the identity provider's keys.",
    )


def _matching_audience(aud: object, audiences: Sequence[str]) -> str:
    values = [aud] if isinstance(aud, str) else list(aud) if isinstance(aud, list) else []
    for value in values:
        if isinstance(value, str) and value in audiences:
            return value
    raise StsFault("InvalidIdentityToken", "Incorrect token audience")


def _verify_opaque(request: WebIdentityRequest, opaque: Mapping[str, OpaqueToken]) -> Identity:
    if request.provider_id is None:
        raise StsFault(
            "InvalidIdentityToken",
            _NOT_A_JWT,
        )
    registered = opaque.get(request.token_sha256)
    if registered is None or registered.provider_id != request.provider_id:
        raise StsFault(
            "InvalidIdentityToken",
            _NOT_VALIDATED,
        )
    return Identity(
        subject=registered.subject,
        audience=registered.audience,
        provider=registered.provider_id,
        source_identity=None,
    )
