"""The emulator's own HTTP routes: the issuer's discovery document and JWKS, and the admin API
that tests in other languages use (``webid_provider.testing._admin``), over real HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any, Dict, Optional, Tuple

import boto3
import jwt
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from webid_provider.testing import OidcIssuer, StsEmulator

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

Client = Any
ROLE = "arn:aws:iam::123456789012:role/webid-test"


def _http(
    emulator: StsEmulator, path: str, form: Optional[Dict[str, Any]] = None, method: str = ""
) -> Tuple[int, Dict[str, Any]]:
    data = urllib.parse.urlencode(form or {}, doseq=True).encode() if form is not None else None
    request = urllib.request.Request(
        emulator.endpoint_url + path,
        data=data,
        method=method or ("POST" if data is not None else "GET"),
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


@pytest.fixture
def sts(sts_emulator: StsEmulator) -> Iterator[Client]:
    config = Config(signature_version=UNSIGNED, retries={"total_max_attempts": 1})
    client = boto3.client(
        "sts", endpoint_url=sts_emulator.endpoint_url, region_name="us-east-1", config=config
    )
    yield client
    client.close()


def _assume(client: Client, token: str) -> Dict[str, Any]:
    response: Dict[str, Any] = client.assume_role_with_web_identity(
        RoleArn=ROLE, RoleSessionName="admin-test", WebIdentityToken=token
    )
    return response


def test_discovery_document_and_jwks(sts_emulator: StsEmulator, oidc_issuer: OidcIssuer) -> None:
    status, discovery = _http(sts_emulator, "/.well-known/openid-configuration")

    assert status == 200
    assert discovery["issuer"] == oidc_issuer.issuer
    assert discovery["jwks_uri"] == sts_emulator.endpoint_url + "/.well-known/jwks.json"
    status, jwks = _http(sts_emulator, "/.well-known/jwks.json")
    assert status == 200
    assert jwks == oidc_issuer.jwks()
    token = oidc_issuer.mint(alg="ES256")
    header = jwt.get_unverified_header(token)
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(
        token, jwt.PyJWK(key, algorithm="ES256"), algorithms=["ES256"], audience="sts.amazonaws.com"
    )
    assert claims["iss"] == discovery["issuer"]


def test_token_route_mints_tokens_the_emulator_accepts(
    sts: Client, sts_emulator: StsEmulator
) -> None:
    status, body = _http(
        sts_emulator, "/_emulator/token", {"sub": "system:serviceaccount:ci:job", "ttl": "120"}
    )

    assert status == 200
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["sub"] == "system:serviceaccount:ci:job"
    assert claims["exp"] - claims["iat"] == 120
    assert _assume(sts, body["token"])["SubjectFromWebIdentityToken"] == claims["sub"]


def test_fault_routes_drive_the_python_api(
    sts: Client, sts_emulator: StsEmulator, oidc_issuer: OidcIssuer
) -> None:
    token = oidc_issuer.mint()
    assert _http(sts_emulator, "/_emulator/fail_next", {"code": "Throttling", "count": "2"}) == (
        200,
        {"ok": True},
    )
    assert _http(sts_emulator, "/_emulator/drop_next", {"count": "1"})[0] == 200

    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        _assume(sts, token)
    for _ in range(2):
        with pytest.raises(ClientError) as info:
            _assume(sts, token)
        assert info.value.response["Error"]["Code"] == "Throttling"
    assert _assume(sts, token)["Credentials"]

    status, body = _http(sts_emulator, "/_emulator/calls")
    assert status == 200
    assert [call["error_code"] for call in body["calls"]] == [
        "ConnectionDropped",
        "Throttling",
        "Throttling",
        None,
    ]
    last = body["calls"][-1]
    assert last["role_arn"] == ROLE
    assert last["token_subject"] == "system:serviceaccount:default:app"
    assert token not in json.dumps(body)


def test_outage_settings_and_reset_routes(
    sts: Client, sts_emulator: StsEmulator, oidc_issuer: OidcIssuer
) -> None:
    assert (
        _http(
            sts_emulator,
            "/_emulator/outage",
            {"seconds": "30", "code": "InternalFailure", "status": "500"},
        )[0]
        == 200
    )
    with pytest.raises(ClientError) as info:
        _assume(sts, oidc_issuer.mint())
    assert info.value.response["Error"]["Code"] == "InternalFailure"

    status, settings = _http(sts_emulator, "/_emulator/settings", {"lifetime_seconds": "7"})
    assert (status, settings) == (200, {"lifetime_seconds": 7, "latency_seconds": 0.0})
    assert sts_emulator.lifetime_seconds == 7

    assert _http(sts_emulator, "/_emulator/reset", {})[0] == 200
    assert sts_emulator.lifetime_seconds is None
    assert sts_emulator.calls == []
    assert _assume(sts, oidc_issuer.mint())["Credentials"]  # the outage is over


@pytest.mark.parametrize(
    ("path", "form", "method", "status", "error"),
    [
        ("/_emulator/fail_next", {}, "POST", 400, "code is required"),
        (
            "/_emulator/fail_next",
            {"code": "X", "count": "two"},
            "POST",
            400,
            "count must be an integer, not 'two'",
        ),
        ("/_emulator/outage", {}, "POST", 400, "seconds is required"),
        ("/_emulator/outage", {"seconds": "1", "mode": "hang"}, "POST", 400, "mode must be"),
        ("/_emulator/settings", {"latency_seconds": "-1"}, "POST", 400, "latency_seconds must be"),
        ("/_emulator/calls", {"x": "1"}, "POST", 405, "POST is not allowed on /_emulator/calls"),
        ("/_emulator/nothing", None, "GET", 404, "unknown path /_emulator/nothing"),
    ],
)
def test_bad_admin_requests_say_what_is_wrong(
    sts_emulator: StsEmulator,
    path: str,
    form: Optional[Dict[str, str]],
    method: str,
    status: int,
    error: str,
) -> None:
    got_status, body = _http(sts_emulator, path, form, method)

    assert got_status == status
    assert error in body["error"]
    assert sts_emulator.calls == []
