"""The STS emulator, driven through real botocore clients over loopback.

Every answer is parsed by botocore, so these tests pin the wire format as well as the
behaviour: output fields, STS error codes for each validation and token check, injected
faults (errors, dropped connections, outages, latency), the expired-credential check on
signed requests, and the pytest fixtures.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Optional, Tuple

import boto3
import jwt
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from webid_provider.testing import OidcIssuer, StsEmulator
from webid_provider.testing.issuer import SOURCE_IDENTITY_CLAIM
from webid_provider.testing.plugin import IRSA_ROLE_ARN, IrsaEnv

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

# boto3-stubs without the mypy-boto3-sts extra types clients as BaseClient, which has no
# STS methods; the tests call them dynamically.
Client = Any

ROLE = "arn:aws:iam::123456789012:role/webid-test"
POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'


def _client(
    emulator: StsEmulator,
    *,
    validate: bool = True,
    aws_access_key_id: Optional[str] = None,
    aws_secret_access_key: Optional[str] = None,
    aws_session_token: Optional[str] = None,
) -> Client:
    """An STS client on the emulator, no retries; unsigned unless given keys."""
    config = Config(
        signature_version=None if aws_access_key_id else UNSIGNED,
        retries={"total_max_attempts": 1},
        parameter_validation=validate,
    )
    return boto3.client(
        "sts",
        endpoint_url=emulator.endpoint_url,
        region_name="us-east-1",
        config=config,
        aws_access_key_id=aws_access_key_id,
        aws_secret_access_key=aws_secret_access_key,
        aws_session_token=aws_session_token,
    )


@pytest.fixture
def sts(sts_emulator: StsEmulator) -> Iterator[Client]:
    """An unsigned STS client on the emulator, no retries."""
    client = _client(sts_emulator)
    yield client
    client.close()


@pytest.fixture
def raw_sts(sts_emulator: StsEmulator) -> Iterator[Client]:
    """Like ``sts`` without botocore's client-side parameter validation."""
    client = _client(sts_emulator, validate=False)
    yield client
    client.close()


def _assume(client: Client, token: str, **params: Any) -> Dict[str, Any]:
    params.setdefault("RoleArn", ROLE)
    params.setdefault("RoleSessionName", "app")
    response: Dict[str, Any] = client.assume_role_with_web_identity(
        WebIdentityToken=token, **params
    )
    return response


def _error(client: Client, token: str, **params: Any) -> Tuple[str, str, int, str]:
    with pytest.raises(ClientError) as info:
        _assume(client, token, **params)
    response: Dict[str, Any] = dict(info.value.response)
    error = response["Error"]
    return (
        error["Code"],
        error["Message"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        error.get("Type", ""),
    )


def _caller_identity(emulator: StsEmulator, credentials: Dict[str, Any]) -> Dict[str, Any]:
    client = _client(
        emulator,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    try:
        identity: Dict[str, Any] = client.get_caller_identity()
        return identity
    finally:
        client.close()


# -- success ----------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "RS512", "ES256", "ES384", "ES512"])
def test_success_returns_every_output_field(
    sts: Client, sts_emulator: StsEmulator, oidc_issuer: OidcIssuer, alg: str
) -> None:
    token = oidc_issuer.mint(alg=alg, sub="system:serviceaccount:ns:app")
    before = datetime.now(timezone.utc)

    response = _assume(sts, token, RoleSessionName="alice@example.com")
    after = datetime.now(timezone.utc)

    creds = response["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert creds["SecretAccessKey"]
    assert creds["SessionToken"]
    # One hour from the moment STS answered (whole seconds); a loaded host may take seconds
    # to answer the first call of a worker.
    lifetime = timedelta(seconds=3600)
    assert before.replace(microsecond=0) + lifetime <= creds["Expiration"] <= after + lifetime
    assert response["AssumedRoleUser"]["Arn"] == (
        "arn:aws:sts::123456789012:assumed-role/webid-test/alice@example.com"
    )
    role_id, session = response["AssumedRoleUser"]["AssumedRoleId"].split(":")
    assert role_id.startswith("AROA")
    assert len(role_id) == 21
    assert session == "alice@example.com"
    assert response["SubjectFromWebIdentityToken"] == "system:serviceaccount:ns:app"
    assert response["Audience"] == "sts.amazonaws.com"
    assert response["Provider"] == oidc_issuer.issuer
    assert "SourceIdentity" not in response
    assert "PackedPolicySize" not in response

    (call,) = sts_emulator.calls
    assert call.error_code is None
    assert call.role_arn == ROLE
    assert call.role_session_name == "alice@example.com"
    assert call.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert call.token_subject == "system:serviceaccount:ns:app"
    assert call.access_key_id == creds["AccessKeyId"]
    assert call.expiration == creds["Expiration"]
    assert call.at.tzinfo is not None
    assert before <= call.at
    assert sts_emulator.successful_calls == [call]
    assert sts_emulator.assume_count == 1


def test_keys_work_with_moto_and_signed_requests_are_recorded(
    sts: Client, sts_emulator: StsEmulator, oidc_issuer: OidcIssuer
) -> None:
    creds = _assume(sts, oidc_issuer.mint(), RoleSessionName="s1")["Credentials"]

    identity = _caller_identity(sts_emulator, creds)

    assert identity["Arn"] == "arn:aws:sts::123456789012:assumed-role/webid-test/s1"
    assert identity["Account"] == "123456789012"
    (signed,) = sts_emulator.signed_requests
    assert signed.access_key_id == creds["AccessKeyId"]
    assert not signed.expired
    assert sts_emulator.expired_credential_uses == 0
    assert sts_emulator.assume_count == 1


def test_source_identity_policy_size_and_role_path(
    sts: Client, sts_emulator: StsEmulator, oidc_issuer: OidcIssuer
) -> None:
    token = oidc_issuer.mint(extra_claims={SOURCE_IDENTITY_CLAIM: "alice"})
    arns = [{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}]

    response = _assume(
        sts,
        token,
        RoleArn="arn:aws-cn:iam::123456789012:role/team/sub/webid",
        Policy=POLICY,
        PolicyArns=arns,
        DurationSeconds=900,
    )

    assert response["SourceIdentity"] == "alice"
    expected_size = -(-100 * (len(POLICY) + len(arns[0]["arn"])) // 2048)
    assert response["PackedPolicySize"] == expected_size
    assert (
        response["AssumedRoleUser"]["Arn"] == "arn:aws-cn:sts::123456789012:assumed-role/webid/app"
    )
    (call,) = sts_emulator.calls
    assert call.policy == POLICY
    assert call.duration_seconds == 900
    assert call.policy_arns == ("arn:aws:iam::aws:policy/ReadOnlyAccess",)
    remaining = (response["Credentials"]["Expiration"] - datetime.now(timezone.utc)).total_seconds()
    assert 895 <= remaining <= 900


def test_tiny_policy_reports_at_least_one_percent(sts: Client, oidc_issuer: OidcIssuer) -> None:
    response = _assume(sts, oidc_issuer.mint(), Policy='{"Statement":[]}')

    assert response["PackedPolicySize"] == 1


def test_lifetime_override_and_role_maximum(
    sts: Client, sts_emulator: StsEmulator, oidc_issuer: OidcIssuer
) -> None:
    sts_emulator.add_role(ROLE, max_session_duration=7200)
    sts_emulator.lifetime_seconds = 5

    response = _assume(sts, oidc_issuer.mint(), DurationSeconds=7200)

    remaining = (response["Credentials"]["Expiration"] - datetime.now(timezone.utc)).total_seconds()
    assert 3 <= remaining <= 5
    assert sts_emulator.calls[0].duration_seconds == 7200


def test_audiences_can_be_configured(
    sts: Client, sts_emulator: StsEmulator, oidc_issuer: OidcIssuer
) -> None:
    sts_emulator.audiences = ("my-client",)

    response = _assume(sts, oidc_issuer.mint(aud=["other", "my-client"]))

    assert response["Audience"] == "my-client"
    assert _error(sts, oidc_issuer.mint())[:2] == (
        "InvalidIdentityToken",
        "Incorrect token audience",
    )


def test_opaque_oauth_token(sts: Client, sts_emulator: StsEmulator) -> None:
    sts_emulator.allow_opaque_token(
        "Atza|opaque-access-token", sub="amzn1.account.A", aud="client.9"
    )

    response = _assume(sts, "Atza|opaque-access-token", ProviderId="www.amazon.com")

    assert response["Provider"] == "www.amazon.com"
    assert response["SubjectFromWebIdentityToken"] == "amzn1.account.A"
    assert response["Audience"] == "client.9"
    assert sts_emulator.calls[0].provider_id == "www.amazon.com"
    code, _, _, _ = _error(sts, "Atza|opaque-access-token", ProviderId="graph.facebook.com")
    assert code == "InvalidIdentityToken"


# -- validation -------------------------------------------------------------------------

_LONG_ARN = "arn:aws:iam::aws:policy/" + "P" * 200


@pytest.mark.parametrize(
    ("params", "code", "message_part"),
    [
        ({"RoleArn": "not-even-an-arn/role-x"}, "ValidationError", "Request ARN is invalid"),
        (
            {"RoleArn": "arn:aws:iam::123456789012:user/bob"},
            "ValidationError",
            "Request ARN is invalid",
        ),
        (
            {"RoleArn": "arn:aws:iam::12345:role/short-account"},
            "ValidationError",
            "Request ARN is invalid",
        ),
        ({"RoleArn": "arn:aws"}, "ValidationError", "at 'roleArn' failed to satisfy constraint"),
        ({"RoleSessionName": "bad name"}, "ValidationError", "regular expression pattern"),
        ({"RoleSessionName": "x"}, "ValidationError", "length greater than or equal to 2"),
        ({"RoleSessionName": "s" * 65}, "ValidationError", "length less than or equal to 64"),
        ({"DurationSeconds": 899}, "ValidationError", "value greater than or equal to 900"),
        ({"DurationSeconds": 43201}, "ValidationError", "value less than or equal to 43200"),
        ({"Policy": "{not json"}, "MalformedPolicyDocument", "not in the valid JSON format"),
        ({"Policy": "[]"}, "MalformedPolicyDocument", "Syntax errors in policy"),
        ({"Policy": " " * 2049}, "ValidationError", "length less than or equal to 2048"),
        (
            {"PolicyArns": [{"arn": f"arn:aws:iam::aws:policy/P{i:02d}-xx"} for i in range(11)]},
            "ValidationError",
            "at 'policyArns' failed to satisfy constraint",
        ),
        ({"PolicyArns": [{"arn": "short"}]}, "ValidationError", "policyArns.1.member.arn"),
        ({"PolicyArns": [{"arn": "this-is-not-an-arn-at-all"}]}, "ValidationError", "is not valid"),
        (
            {"Policy": POLICY, "PolicyArns": [{"arn": _LONG_ARN}] * 10},
            "PackedPolicyTooLarge",
            "Packed policy consumes",
        ),
        # Constraints read from botocore's STS model, not hand-coded:
        (
            {"ProviderId": "abc"},
            "ValidationError",
            "Value 'abc' at 'providerId' failed to satisfy constraint: "
            "Member must have length greater than or equal to 4",
        ),
        (
            {"MinimumSessionTokenSize": 4097},
            "ValidationError",
            "at 'minimumSessionTokenSize' failed to satisfy constraint: "
            "Member must have value less than or equal to 4096",
        ),
        (
            {"PolicyArns": [{"arn": "arn:aws:iam::aws:policy/" + "P" * 2030}]},
            "ValidationError",
            "at 'policyArns.1.member.arn' failed to satisfy constraint: "
            "Member must have length less than or equal to 2048",
        ),
    ],
)
def test_validation_errors(
    raw_sts: Client,
    sts_emulator: StsEmulator,
    oidc_issuer: OidcIssuer,
    params: Dict[str, Any],
    code: str,
    message_part: str,
) -> None:
    got_code, message, status, kind = _error(raw_sts, oidc_issuer.mint(), **params)

    assert (got_code, status, kind) == (code, 400, "Sender")
    assert message_part in message
    (call,) = sts_emulator.calls
    assert call.error_code == code
    assert call.access_key_id is None


def test_validation_errors_are_aggregated(raw_sts: Client, oidc_issuer: OidcIssuer) -> None:
    _, message, _, _ = _error(raw_sts, oidc_issuer.mint(), RoleSessionName=" ", DurationSeconds=1)

    assert message.startswith("3 validation errors detected: ")


def test_duration_above_role_maximum(
    sts: Client, sts_emulator: StsEmulator, oidc_issuer: OidcIssuer
) -> None:
    sts_emulator.add_role(ROLE)  # MaxSessionDuration 3600

    assert _error(sts, oidc_issuer.mint(), DurationSeconds=3601)[:2] == (
        "ValidationError",
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
    )
    assert _assume(sts, oidc_issuer.mint(), DurationSeconds=3600)["Credentials"]
    with pytest.raises(ValueError, match="between 3600 and 43200"):
        sts_emulator.add_role(ROLE, max_session_duration=900)


@pytest.mark.parametrize(
    ("token", "bound"),
    [("abc", "greater than or equal to 4"), ("x" * 20001, "less than or equal to 20000")],
)
def test_token_length_limits_never_echo_the_token(raw_sts: Client, token: str, bound: str) -> None:
    code, message, _, _ = _error(raw_sts, token)

    assert code == "ValidationError"
    assert (
        f"Value at 'webIdentityToken' failed to satisfy constraint: Member must have length {bound}"
        in message
    )
    assert token not in message


# -- token checks -----------------------------------------------------------------------


def _hs256_token(issuer: OidcIssuer) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer.issuer,
        "sub": "x",
        "aud": "sts.amazonaws.com",
        "iat": now,
        "exp": now + 60,
    }
    return jwt.encode(claims, "a-shared-secret-of-sufficient-length!", algorithm="HS256")


@pytest.mark.parametrize(
    ("make", "params", "message_part"),
    [
        (lambda i: i.mint_badly_signed(), {}, "Couldn't verify the token signature"),
        (lambda i: i.mint_badly_signed(alg="ES256"), {}, "Couldn't verify the token signature"),
        (
            lambda i: i.mint(iss="https://evil.test"),
            {},
            "No OpenIDConnect provider found in your account for https://evil.test",
        ),
        (lambda i: i.mint(aud="someone-else"), {}, "Incorrect token audience"),
        (lambda i: OidcIssuer().mint(), {}, "is not in the identity provider's JWKS"),
        (_hs256_token, {}, "Unsupported token signing algorithm HS256"),
        (
            lambda i: i.mint(exp=time.time() + 60.5),
            {},
            "timestamps must be formatted as an integer",
        ),
        (lambda i: i.mint(nbf=int(time.time()) + 600), {}, "not yet valid"),
        (
            lambda i: i.mint(),
            {"ProviderId": "www.amazon.com"},
            "do not specify it for an OpenID Connect ID token",
        ),
        (lambda i: "Atza|not-a-jwt", {}, "not a valid JWT"),
        (lambda i: "Atza|unknown", {"ProviderId": "www.amazon.com"}, "could not be validated"),
    ],
)
def test_invalid_identity_token(
    sts: Client,
    sts_emulator: StsEmulator,
    oidc_issuer: OidcIssuer,
    make: Callable[[OidcIssuer], str],
    params: Dict[str, Any],
    message_part: str,
) -> None:
    code, message, status, _ = _error(sts, make(oidc_issuer), **params)

    assert (code, status) == ("InvalidIdentityToken", 400)
    assert message_part in message
    assert "Couldn't retrieve verification key" not in message  # that one means "transient"
    assert sts_emulator.calls[0].error_code == "InvalidIdentityToken"


def test_expired_token(sts: Client, sts_emulator: StsEmulator, oidc_issuer: OidcIssuer) -> None:
    token = oidc_issuer.mint_expired(expired_seconds_ago=30)
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]

    code, message, status, _ = _error(sts, token)

    assert (code, status) == ("ExpiredTokenException", 400)
    now = int(message.split("current date/time ")[1].split()[0])
    assert abs(now - int(time.time())) <= 2
    assert message == (
        f"Token expired: current date/time {now} must be before the expiration date/time {exp}"
    )
    assert sts_emulator.calls[0].token_subject == "system:serviceaccount:default:app"


# -- faults -----------------------------------------------------------------------------


def test_fail_next_queues_errors_then_recovers(
    sts: Client, sts_emulator: StsEmulator, oidc_issuer: OidcIssuer
) -> None:
    sts_emulator.fail_next("Throttling", count=2)
    sts_emulator.fail_next("InternalFailure", status=500)
    sts_emulator.fail_next("InvalidIdentityToken", StsEmulator.VERIFICATION_KEY_MESSAGE)
    token = oidc_issuer.mint()

    assert _error(sts, token) == ("Throttling", "Rate exceeded", 400, "Sender")
    assert _error(sts, token)[0] == "Throttling"
    assert _error(sts, token)[::2] == ("InternalFailure", 500)
    assert _error(sts, token)[:2] == ("InvalidIdentityToken", StsEmulator.VERIFICATION_KEY_MESSAGE)
    assert _assume(sts, token)["Credentials"]

    codes = [call.error_code for call in sts_emulator.calls]
    assert codes == ["Throttling", "Throttling", "InternalFailure", "InvalidIdentityToken", None]


def test_faults_come_before_validation(sts: Client, sts_emulator: StsEmulator) -> None:
    sts_emulator.fail_next("IDPCommunicationError")

    assert _error(sts, "Atza|not-a-jwt")[0] == "IDPCommunicationError"


def test_drop_next_closes_the_connection(
    sts: Client, sts_emulator: StsEmulator, oidc_issuer: OidcIssuer
) -> None:
    sts_emulator.drop_next(2)
    token = oidc_issuer.mint()

    for _ in range(2):
        with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
            _assume(sts, token)
    assert _assume(sts, token)["Credentials"]

    assert [call.error_code for call in sts_emulator.calls] == [
        "ConnectionDropped",
        "ConnectionDropped",
        None,
    ]


@pytest.mark.parametrize("mode", ["error", "drop"])
def test_outage_ends_after_its_span(
    sts: Client, sts_emulator: StsEmulator, oidc_issuer: OidcIssuer, mode: str
) -> None:
    token = oidc_issuer.mint()
    sts_emulator.outage(0.8, mode=mode)

    for _ in range(2):
        if mode == "error":
            assert _error(sts, token) == (
                "ServiceUnavailable",
                "Service Unavailable",
                503,
                "Receiver",
            )
        else:
            with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
                _assume(sts, token)
    time.sleep(0.9)

    assert _assume(sts, token)["Credentials"]
    assert sts_emulator.assume_count == 3
    assert len(sts_emulator.successful_calls) == 1


def test_outage_with_a_custom_code(
    sts: Client, sts_emulator: StsEmulator, oidc_issuer: OidcIssuer
) -> None:
    sts_emulator.outage(5, code="Throttling", status=400)

    assert _error(sts, oidc_issuer.mint())[:3] == ("Throttling", "Rate exceeded", 400)
    with pytest.raises(ValueError, match="mode"):
        sts_emulator.outage(1, mode="hang")


def test_latency_delays_every_answer(
    sts: Client, sts_emulator: StsEmulator, oidc_issuer: OidcIssuer
) -> None:
    sts_emulator.latency_seconds = 0.3
    sts_emulator.fail_next("Throttling")
    token = oidc_issuer.mint()

    started = time.monotonic()
    _error(sts, token)
    _assume(sts, token)

    assert time.monotonic() - started >= 0.6
    with pytest.raises(ValueError, match="latency_seconds"):
        sts_emulator.latency_seconds = -1


# -- expired credentials ----------------------------------------------------------------


@pytest.mark.timeout(30)
def test_expired_credentials_are_refused_like_aws(
    sts: Client, sts_emulator: StsEmulator, oidc_issuer: OidcIssuer
) -> None:
    sts_emulator.lifetime_seconds = 1
    stale = _assume(sts, oidc_issuer.mint(), RoleSessionName="old")["Credentials"]
    time.sleep(1.5)

    with pytest.raises(ClientError) as info:
        _caller_identity(sts_emulator, stale)

    assert info.value.response["Error"]["Code"] == "ExpiredToken"
    assert (
        info.value.response["Error"]["Message"]
        == "The security token included in the request is expired"
    )
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert sts_emulator.expired_credential_uses == 1
    assert [r.expired for r in sts_emulator.signed_requests] == [True]

    sts_emulator.lifetime_seconds = None
    fresh = _assume(sts, oidc_issuer.mint(), RoleSessionName="new")["Credentials"]
    identity = _caller_identity(sts_emulator, fresh)
    assert identity["Arn"] == "arn:aws:sts::123456789012:assumed-role/webid-test/new"
    assert sts_emulator.expired_credential_uses == 1
    assert [r.expired for r in sts_emulator.signed_requests] == [True, False]


def test_unknown_signed_keys_are_forwarded(sts_emulator: StsEmulator) -> None:
    client = _client(
        sts_emulator, aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="secret"
    )
    try:
        identity = client.get_caller_identity()
    finally:
        client.close()

    assert identity["Account"] == "123456789012"
    assert sts_emulator.signed_requests[0].access_key_id == "AKIAIOSFODNN7EXAMPLE"
    assert sts_emulator.expired_credential_uses == 0


def test_head_through_the_front_reports_the_objects_size(sts_emulator: StsEmulator) -> None:
    """s3fs (and so pandas) sizes an object with HEAD before reading it."""
    s3 = boto3.client(
        "s3",
        endpoint_url=sts_emulator.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="secret",
    )
    try:
        s3.create_bucket(Bucket="head-bucket")
        s3.put_object(Bucket="head-bucket", Key="object", Body=b"twelve bytes")
        head = s3.head_object(Bucket="head-bucket", Key="object")
        body = s3.get_object(Bucket="head-bucket", Key="object")["Body"].read()
    finally:
        s3.close()
    assert head["ContentLength"] == 12
    assert body == b"twelve bytes"


# -- records, reset, concurrency, lifecycle ---------------------------------------------


def test_reset_clears_state_and_settings(
    sts: Client, sts_emulator: StsEmulator, oidc_issuer: OidcIssuer
) -> None:
    _assume(sts, oidc_issuer.mint())
    sts_emulator.add_role(ROLE, max_session_duration=7200)
    sts_emulator.allow_opaque_token("Atza|x-token")
    sts_emulator.fail_next("Throttling")
    sts_emulator.drop_next()
    sts_emulator.outage(30)
    sts_emulator.lifetime_seconds = 5
    sts_emulator.latency_seconds = 5
    sts_emulator.audiences = ("x",)

    sts_emulator.reset()

    assert sts_emulator.calls == []
    assert sts_emulator.signed_requests == []
    assert sts_emulator.lifetime_seconds is None
    assert sts_emulator.latency_seconds == 0
    assert sts_emulator.audiences == ("sts.amazonaws.com",)
    assert _error(sts, oidc_issuer.mint(), DurationSeconds=7200)[0] == "ValidationError"
    assert _error(sts, "Atza|x-token", ProviderId="www.amazon.com")[0] == "InvalidIdentityToken"


def test_concurrent_calls_are_all_recorded(
    sts_emulator: StsEmulator, oidc_issuer: OidcIssuer
) -> None:
    sts_emulator.latency_seconds = 0.2
    errors: List[BaseException] = []
    keys: List[str] = []

    def worker(index: int) -> None:
        client = _client(sts_emulator)
        try:
            creds = _assume(client, oidc_issuer.mint(sub=f"worker-{index:02d}"))["Credentials"]
            keys.append(creds["AccessKeyId"])
        except BaseException as exc:  # re-raised below, in the test thread
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors, errors
    assert len(set(keys)) == 8
    assert sts_emulator.assume_count == 8
    calls = sts_emulator.calls
    assert sorted(c.token_subject or "" for c in calls) == [f"worker-{i:02d}" for i in range(8)]
    assert [c.at for c in calls] == sorted(c.at for c in calls)


def test_get_request_with_query_string(sts_emulator: StsEmulator, oidc_issuer: OidcIssuer) -> None:
    query = urllib.parse.urlencode(
        {
            "Action": "AssumeRoleWithWebIdentity",
            "Version": "2011-06-15",
            "RoleArn": ROLE,
            "RoleSessionName": "via-get",
            "WebIdentityToken": oidc_issuer.mint(),
        }
    )
    with urllib.request.urlopen(f"{sts_emulator.endpoint_url}/?{query}", timeout=30) as answer:
        body = answer.read().decode()

    assert "<SubjectFromWebIdentityToken>system:serviceaccount:default:app<" in body
    assert sts_emulator.calls[0].role_session_name == "via-get"


def test_chunked_form_body(sts_emulator: StsEmulator, oidc_issuer: OidcIssuer) -> None:
    """werkzeug de-chunks the body; the middleware reads the form and moto still gets it."""
    form = urllib.parse.urlencode(
        {
            "Action": "AssumeRoleWithWebIdentity",
            "Version": "2011-06-15",
            "RoleArn": ROLE,
            "RoleSessionName": "chunked",
            "WebIdentityToken": oidc_issuer.mint(),
        }
    ).encode()
    port = int(sts_emulator.endpoint_url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("POST", "/")
        connection.putheader("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        for start in range(0, len(form), 100):
            chunk = form[start : start + 100]
            connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        connection.send(b"0\r\n\r\n")
        answer = connection.getresponse()
        body = answer.read().decode()
    finally:
        connection.close()

    assert answer.status == 200, body
    assert "<AccessKeyId>ASIA" in body
    assert sts_emulator.calls[0].role_session_name == "chunked"


def test_no_token_reaches_logs_or_records(
    sts: Client,
    sts_emulator: StsEmulator,
    oidc_issuer: OidcIssuer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    good, bad = oidc_issuer.mint(), oidc_issuer.mint_badly_signed()

    _assume(sts, good)
    _error(sts, bad)
    sts_emulator.drop_next()
    with pytest.raises(ConnectionClosedError):
        _assume(sts, good)

    # botocore itself logs request bodies at DEBUG; only our loggers (and moto's) count.
    ours = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("webid_provider", "moto"))
    )
    assert "sts emulator: POST / -> 200" in ours
    for token in (good, bad):
        assert token.split(".")[2] not in ours
        assert token not in repr(sts_emulator.calls)
    assert not [r for r in caplog.records if r.name == "werkzeug"]


def test_lifecycle(oidc_issuer: OidcIssuer) -> None:
    emulator = StsEmulator(oidc_issuer, lifetime_seconds=10, latency_seconds=0.0)
    with pytest.raises(RuntimeError, match="not running"):
        _ = emulator.endpoint_url

    with emulator:
        url = emulator.endpoint_url
        port = int(url.rsplit(":", 1)[1])
        assert url.startswith("http://127.0.0.1:")
        with pytest.raises(RuntimeError, match="already running"):
            emulator.start()
        emulator.reset()
        assert emulator.lifetime_seconds == 10
    emulator.stop()

    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", port), timeout=5),
    ):
        pass
    assert emulator.issuer is oidc_issuer


def test_taken_port_raises_os_error(oidc_issuer: OidcIssuer) -> None:
    """Not werkzeug's SystemExit: a test can catch it."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        emulator = StsEmulator(oidc_issuer, port=taken.getsockname()[1])

        with pytest.raises(OSError, match="in use"):
            emulator.start()

    with pytest.raises(RuntimeError, match="not running"):
        _ = emulator.endpoint_url


# -- fixtures ---------------------------------------------------------------------------


def test_irsa_env_sets_up_a_pod(irsa_env: IrsaEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    assert irsa_env.role_arn == IRSA_ROLE_ARN
    assert os.environ["AWS_WEB_IDENTITY_TOKEN_FILE"] == str(irsa_env.token_file)
    assert os.environ["AWS_ENDPOINT_URL_STS"] == irsa_env.emulator.endpoint_url
    assert os.environ["WEBID_PROVIDER_CACHE_DIR"] == str(irsa_env.cache_dir)
    assert not irsa_env.cache_dir.exists()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_ROLE_SESSION_NAME", "AWS_ENDPOINT_URL"):
        assert name not in os.environ
    assert {name: os.environ[name] for name in irsa_env.env} == irsa_env.env
    claims = jwt.decode(irsa_env.token_file.read_text(), options={"verify_signature": False})
    assert claims["iss"] == irsa_env.issuer.issuer

    new_token = irsa_env.rotate(sub="system:serviceaccount:ns:other")
    assert irsa_env.token_file.read_text() == new_token
    assert irsa_env.rotate(token="") == ""
    assert irsa_env.token_file.read_text() == ""


def test_botocore_web_identity_provider_works_against_irsa_env(irsa_env: IrsaEnv) -> None:
    """Plain boto3 (no webid_provider) resolves IRSA credentials from the emulator."""
    session = boto3.Session()
    client = session.client("sts")
    try:
        identity = client.get_caller_identity()
    finally:
        client.close()

    assert identity["Arn"].startswith("arn:aws:sts::123456789012:assumed-role/webid-test/")
    (call,) = irsa_env.emulator.calls
    assert call.token_sha256 == hashlib.sha256(irsa_env.token_file.read_bytes()).hexdigest()
    assert irsa_env.emulator.signed_requests[0].access_key_id == call.access_key_id


def test_sts_emulator_fixture_starts_clean(sts_emulator: StsEmulator) -> None:
    assert sts_emulator.calls == []
    sts_emulator.fail_next("Throttling")  # reset() by the next test's fixture
