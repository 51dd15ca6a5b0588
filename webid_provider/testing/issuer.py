"""A local OpenID Connect issuer that mints signed JWTs for tests.

Real STS verifies a web identity token against the JWKS of the identity provider named in its
``iss`` claim. Tests need tokens that such a verifier accepts, and tokens it must reject
(expired, signed by a stranger, wrong audience), without any network: :class:`OidcIssuer`
holds one RSA key (for RS256/RS384/RS512) and one EC key per curve (P-256 for ES256, P-384 for
ES384, P-521 for ES512), publishes their public halves as a JWKS, and signs tokens with them.
:class:`~webid_provider.testing.StsEmulator` verifies against :meth:`OidcIssuer.jwks`.

``cryptography`` (and pyjwt's RSA/EC classes, which exist only with it) is imported inside
the functions that need it: this module is importable in environments that only have the
runtime dependencies (the pytest plugin loads everywhere).

Security: the keys are generated per instance, live only in memory and sign nothing but test
tokens. Nothing here is suitable for production use.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

import jwt

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

    _PrivateKey = Union[RSAPrivateKey, EllipticCurvePrivateKey]

__all__ = ["SIGNING_ALGORITHMS", "SOURCE_IDENTITY_CLAIM", "OidcIssuer"]

#: The algorithms STS accepts for web identity tokens (RSA and ECDSA only, no HMAC, no EdDSA).
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")

#: The JWT claim STS copies into the ``SourceIdentity`` output field.
SOURCE_IDENTITY_CLAIM = "https://aws.amazon.com/source_identity"

# Which key signs which algorithm: one RSA key serves the three RS* algorithms, each ES*
# algorithm has its own curve (RFC 7518 section 3.4).
_KEY_FOR_ALG = {
    "RS256": "rsa",
    "RS384": "rsa",
    "RS512": "rsa",
    "ES256": "P-256",
    "ES384": "P-384",
    "ES512": "P-521",
}

_DEFAULT_SUB = "system:serviceaccount:default:app"
_DEFAULT_AUD = "sts.amazonaws.com"


def _generate_key(kind: str) -> _PrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    curve = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}[kind]
    return ec.generate_private_key(curve)


def _public_jwk(key: _PrivateKey) -> Dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    # pyjwt defines these classes only when cryptography is installed.
    from jwt.algorithms import ECAlgorithm, RSAAlgorithm

    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        return RSAAlgorithm.to_jwk(public, as_dict=True)
    return ECAlgorithm.to_jwk(public, as_dict=True)


def _thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint: SHA-256 of the required members, sorted, no whitespace."""
    required = ("e", "kty", "n") if jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({name: jwk[name] for name in required}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OidcIssuer:
    """An in-memory OIDC identity provider: signing keys, a JWKS and a token minting API.

    Generating the four key pairs takes a few tens of milliseconds; share one instance per
    test session (the ``oidc_issuer`` fixture does). Instances are thread-safe.

    :param issuer: the ``iss`` claim of every minted token, and what a verifier must expect
    """

    def __init__(self, issuer: str = "https://oidc.webid.test") -> None:
        self._issuer = issuer
        self._lock = threading.Lock()
        self._keys: Dict[str, _PrivateKey] = {}
        self._jwks: Dict[str, Dict[str, Any]] = {}
        self._rogue_keys: Dict[str, _PrivateKey] = {}
        for kind in ("rsa", "P-256", "P-384", "P-521"):
            key = _generate_key(kind)
            jwk = _public_jwk(key)
            jwk["kid"] = _thumbprint(jwk)
            jwk["use"] = "sig"
            if kind != "rsa":
                # An EC key serves exactly one algorithm; an RSA key serves three, so its
                # JWK carries no "alg" (RFC 7517 section 4.4 makes the member optional).
                jwk["alg"] = next(alg for alg, k in _KEY_FOR_ALG.items() if k == kind)
            self._keys[kind] = key
            self._jwks[kind] = jwk

    def __repr__(self) -> str:
        return f"OidcIssuer(issuer={self._issuer!r})"

    @property
    def issuer(self) -> str:
        """The ``iss`` value of this provider's tokens."""
        return self._issuer

    def jwks(self) -> Dict[str, List[Dict[str, Any]]]:
        """The public keys as a JWK Set, each with a ``kid`` (its RFC 7638 thumbprint).

        :returns: a fresh ``{"keys": [...]}`` dict the caller may modify
        """
        return {"keys": [dict(jwk) for jwk in self._jwks.values()]}

    def kid(self, alg: str = "RS256") -> str:
        """The ``kid`` of the key that signs ``alg``.

        :raises ValueError: when ``alg`` is not one of :data:`SIGNING_ALGORITHMS`
        """
        return str(self._jwks[_kind_for(alg)]["kid"])

    def openid_configuration(self) -> Dict[str, Any]:
        """A minimal OIDC discovery document for this issuer (for tests that want one)."""
        return {
            "issuer": self._issuer,
            "jwks_uri": self._issuer.rstrip("/") + "/keys",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
        }

    def mint(
        self,
        sub: str = _DEFAULT_SUB,
        aud: Union[str, Sequence[str]] = _DEFAULT_AUD,
        ttl: int = 3600,
        alg: str = "RS256",
        *,
        extra_claims: Optional[Mapping[str, object]] = None,
        **claims: object,
    ) -> str:
        """Mint a token signed by this issuer.

        ``iat`` and ``nbf`` are now, ``exp`` is now + ``ttl`` (integers, as STS requires).
        ``extra_claims`` and then ``claims`` are merged last, so they may add claims or
        override any standard one (``iss``, ``exp``) to build a specific bad token. Claims
        named by URL (``https://aws.amazon.com/source_identity``, ``.../tags``) are not
        Python identifiers; pass them in ``extra_claims``.

        :param sub: the subject, e.g. a Kubernetes service account
        :param aud: the audience, one string or several
        :param ttl: seconds until ``exp``; may be negative
        :param alg: one of :data:`SIGNING_ALGORITHMS`
        :param extra_claims: claims to add or override
        :returns: the compact JWS
        :raises ValueError: when ``alg`` is not supported
        """
        now = int(time.time())
        payload = self._claims(sub, aud, now, now + ttl, extra_claims, claims)
        return self._sign(payload, alg, rogue=False)

    def mint_expired(
        self,
        sub: str = _DEFAULT_SUB,
        aud: Union[str, Sequence[str]] = _DEFAULT_AUD,
        ttl: int = 3600,
        alg: str = "RS256",
        expired_seconds_ago: int = 60,
        *,
        extra_claims: Optional[Mapping[str, object]] = None,
        **claims: object,
    ) -> str:
        """Mint a correctly signed token whose ``exp`` is ``expired_seconds_ago`` in the past.

        :param expired_seconds_ago: how long ago the token expired
        :returns: the compact JWS; the other parameters are as for :meth:`mint`
        """
        exp = int(time.time()) - expired_seconds_ago
        payload = self._claims(sub, aud, exp - ttl, exp, extra_claims, claims)
        return self._sign(payload, alg, rogue=False)

    def mint_badly_signed(
        self,
        sub: str = _DEFAULT_SUB,
        aud: Union[str, Sequence[str]] = _DEFAULT_AUD,
        ttl: int = 3600,
        alg: str = "RS256",
        *,
        extra_claims: Optional[Mapping[str, object]] = None,
        **claims: object,
    ) -> str:
        """Mint a token that names a published ``kid`` but is signed by another key.

        The claims are valid, so only signature verification can reject it.

        :returns: the compact JWS; the parameters are as for :meth:`mint`
        """
        now = int(time.time())
        payload = self._claims(sub, aud, now, now + ttl, extra_claims, claims)
        return self._sign(payload, alg, rogue=True)

    def _claims(
        self,
        sub: str,
        aud: Union[str, Sequence[str]],
        iat: int,
        exp: int,
        extra_claims: Optional[Mapping[str, object]],
        claims: Mapping[str, object],
    ) -> Dict[str, object]:
        audience: object = aud if isinstance(aud, str) else list(aud)
        payload: Dict[str, object] = {
            "iss": self._issuer,
            "sub": sub,
            "aud": audience,
            "iat": iat,
            "nbf": iat,
            "exp": exp,
        }
        payload.update(extra_claims or {})
        payload.update(claims)
        return payload

    def _sign(self, payload: Dict[str, object], alg: str, *, rogue: bool) -> str:
        kind = _kind_for(alg)
        if rogue:
            with self._lock:
                key = self._rogue_keys.get(kind)
                if key is None:
                    key = self._rogue_keys[kind] = _generate_key(kind)
        else:
            key = self._keys[kind]
        headers = {"kid": self._jwks[kind]["kid"], "typ": "JWT"}
        return jwt.encode(payload, key, algorithm=alg, headers=headers)


def _kind_for(alg: str) -> str:
    try:
        return _KEY_FOR_ALG[alg]
    except KeyError:
        raise ValueError(
            f"unsupported signing algorithm {alg!r}; use one of {', '.join(SIGNING_ALGORITHMS)}"
        ) from None
