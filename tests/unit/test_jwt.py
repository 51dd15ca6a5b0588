"""The standard-library JWT peek decides exactly as pyjwt's unverified decode does."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any, Optional

import jwt
import pytest

from webid_provider import _jwt
from webid_provider import _tokens as tokens

HMAC_KEY = "a-test-only-hmac-key-of-at-least-32-bytes"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: Any) -> str:
    return _b64(json.dumps(value).encode())


def _pyjwt(token: str) -> Optional[dict[str, Any]]:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return claims if isinstance(claims, dict) else None


SIGNED = jwt.encode({"iss": "https://i", "sub": "s", "aud": ["a", "b"], "exp": 5}, HMAC_KEY)
HEADER = _segment({"alg": "RS256", "typ": "JWT"})
PAYLOAD = _segment({"iss": "https://i", "sub": "s"})
SIG = _b64(b"signature-bytes")

TOKENS = {
    "signed": SIGNED,
    "rs256-shape": f"{HEADER}.{PAYLOAD}.{SIG}",
    "empty signature": f"{HEADER}.{PAYLOAD}.",
    "padded segments": f"{HEADER}==.{PAYLOAD}.{SIG}",
    "three '=' of padding": f"{HEADER}===.{PAYLOAD}.{SIG}",
    "padding at a bad length": f"{HEADER[:-1]}=.{PAYLOAD}.{SIG}",
    "non-alphabet junk": f"{HEADER}.{PAYLOAD}.!!!!",
    "standard base64 characters": f"{HEADER}.{PAYLOAD}.ab+/",
    "one char too many": f"{HEADER}.{PAYLOAD}.{SIG}A",
    "non-canonical tail bits": f"{HEADER}.{PAYLOAD}.AB",
    "two segments": f"{HEADER}.{PAYLOAD}",
    "four segments": f"{HEADER}.{PAYLOAD}.{SIG}.{SIG}",
    "header not JSON": f"{_b64(b'not json')}.{PAYLOAD}.{SIG}",
    "header a list": f"{_segment([1])}.{PAYLOAD}.{SIG}",
    "payload a list": f"{HEADER}.{_segment(['a'])}.{SIG}",
    "payload a string": f"{HEADER}.{_segment('x')}.{SIG}",
    "payload not JSON": f"{HEADER}.{_b64(b'{')}.{SIG}",
    "kid not a string": f"{_segment({'alg': 'RS256', 'kid': 7})}.{PAYLOAD}.{SIG}",
    "crit b64 with b64 false": f"{_segment({'alg': 'RS256', 'b64': False, 'crit': ['b64']})}..",
    "b64 false": f"{_segment({'alg': 'RS256', 'b64': False})}.{PAYLOAD}.{SIG}",
    "crit unknown": f"{_segment({'alg': 'RS256', 'crit': ['exp']})}.{PAYLOAD}.{SIG}",
    "crit empty": f"{_segment({'alg': 'RS256', 'crit': []})}.{PAYLOAD}.{SIG}",
    "crit missing header": f"{_segment({'alg': 'RS256', 'crit': ['b64']})}.{PAYLOAD}.{SIG}",
    "crit b64 true": f"{_segment({'alg': 'RS256', 'b64': True, 'crit': ['b64']})}.{PAYLOAD}.{SIG}",
    "utf-8 claims": f"{HEADER}.{_segment({'sub': 'jürgen'})}.{SIG}",
    "deeply nested": f"{HEADER}.{_b64(b'[' * 100000)}.{SIG}",
    "opaque": "Atza|IQEBLjAsAhQq",
    "dots only": "..",
    "no header": f".{PAYLOAD}.{SIG}",
}


@pytest.mark.parametrize("token", list(TOKENS.values()), ids=list(TOKENS))
def test_same_decision_and_claims_as_pyjwt(token: str) -> None:
    expected = _pyjwt(token)
    try:
        ours: Optional[dict[str, Any]] = _jwt._unverified_payload(token)
    except _jwt._NotAJwt:
        ours = None
    assert ours == expected


@pytest.mark.parametrize("token", list(TOKENS.values()), ids=list(TOKENS))
def test_identity_matches_a_pyjwt_based_peek(token: str) -> None:
    expected = _pyjwt(token)
    claims = _jwt.peek_claims(token)
    assert (claims is None) == (expected is None)
    if claims is not None and expected is not None:
        assert claims.issuer == expected.get("iss")
        assert claims.subject == expected.get("sub")


def test_tokens_reexports_the_same_objects() -> None:
    assert tokens.peek_claims is _jwt.peek_claims
    assert tokens.token_identity is _jwt.token_identity
    assert tokens.default_session_name is _jwt.default_session_name
    assert tokens.TokenClaims is _jwt.TokenClaims


def test_peeking_imports_neither_pyjwt_nor_cryptography() -> None:
    code = (
        "import sys\n"
        "from webid_provider._jwt import peek_claims, token_identity\n"
        f"claims = peek_claims({SIGNED!r})\n"
        "assert claims is not None and claims.subject == 's'\n"
        "token_identity('x', claims)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'jwt', 'cryptography', 'botocore', 'boto3'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
