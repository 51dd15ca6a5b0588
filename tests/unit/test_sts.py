"""The AssumeRoleWithWebIdentity call: classification, translation, the request, retries."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional, Protocol

import botocore.session
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.stub import Stubber

from webid_provider._errors import StsError, StsServiceError, TokenSourceError
from webid_provider._result import AssumedRoleUser, WebIdentityResult
from webid_provider._sts import (
    RetryPolicy,
    StsRequest,
    assume_role_with_web_identity,
    call_with_retries,
)
from webid_provider._sts_client import create_sts_client, resolve_sts_endpoint
from webid_provider._sts_errors import ErrorKind, classify, to_sts_error

ROLE = "arn:aws:iam::123456789012:role/web-role"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXdlYi1pZGVudGl0eS10b2tlbg.c2lnbmF0dXJl"
NEW_TOKEN = "eyJhbGciOiJSUzI1NiJ9.bmV3LXdlYi1pZGVudGl0eS10b2tlbg.c2lnbmF0dXJl"


class FakeClock(Protocol):
    """The conftest ``clock`` fixture's interface."""

    def __call__(self) -> datetime: ...

    def advance(self, seconds: float) -> datetime: ...


POLICY_ARNS = ("arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::123456789012:policy/p")


def client_error(
    code: str,
    message: str = "",
    *,
    status: int = 400,
    request_id: Optional[str] = "req-0001",
) -> ClientError:
    meta: dict[str, Any] = {"HTTPStatusCode": status}
    if request_id is not None:
        meta["RequestId"] = request_id
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": meta}
    return ClientError(response, "AssumeRoleWithWebIdentity")


def make_result(access_key: str = "ASIAEXAMPLE") -> WebIdentityResult:
    now = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    return WebIdentityResult(
        access_key_id=access_key,
        secret_access_key="secret",
        session_token="session",
        expiration=now + timedelta(hours=1),
        obtained_at=now,
    )


# -- classification -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message", "status"),
    [
        ("IDPCommunicationError", "The IdP is slow", 400),
        ("Throttling", "Rate exceeded", 400),
        ("ThrottlingException", "Rate exceeded", 400),
        ("RequestLimitExceeded", "", 400),
        ("InternalFailure", "", 500),
        ("ServiceUnavailable", "", 503),
        ("SomethingNew", "", 500),
        ("SomethingNew", "", 503),
        (
            "InvalidIdentityToken",
            "Couldn't retrieve verification key from your identity provider,  please reference "
            "AssumeRoleWithWebIdentity documentation for requirements",
            400,
        ),
    ],
)
def test_transient_errors(code: str, message: str, status: int) -> None:
    assert classify(code, message, status) is ErrorKind.TRANSIENT
    assert to_sts_error(client_error(code, message, status=status)).retryable is True


def test_expired_token_is_reread() -> None:
    assert classify("ExpiredTokenException", "Token expired", 400) is ErrorKind.REREAD_TOKEN
    error = to_sts_error(client_error("ExpiredTokenException", "Token expired"))
    assert error.code == "ExpiredTokenException"
    assert error.retryable is True


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"),
        ("IDPRejectedClaim", "Incorrect token audience"),
        ("InvalidIdentityToken", "No OpenIDConnect provider found in your account for https://x"),
        ("InvalidIdentityToken", "Incorrect token audience"),
        ("MalformedPolicyDocument", "Syntax errors in policy"),
        ("PackedPolicyTooLarge", "Packed policy consumes 120% of allotted space"),
        ("RegionDisabledException", "STS is not activated in this region"),
        ("ValidationError", "1 validation error detected"),
        ("SomethingNew", "unknown 4xx"),
    ],
)
def test_permanent_errors(code: str, message: str) -> None:
    assert classify(code, message, 400) is ErrorKind.PERMANENT
    assert classify(code, message, None) is ErrorKind.PERMANENT
    assert to_sts_error(client_error(code, message)).retryable is False


# -- translation --------------------------------------------------------------------------------


def test_client_error_translation_keeps_code_message_and_request_id() -> None:
    original = client_error("AccessDenied", "Not authorized", status=403, request_id="abc-123")
    error = to_sts_error(original)
    assert isinstance(error, StsError)
    assert error.code == "AccessDenied"
    assert error.retryable is False
    assert error.request_id == "abc-123"
    assert error.http_status == 403
    assert str(error) == (
        "AssumeRoleWithWebIdentity failed: AccessDenied: Not authorized (request id abc-123)"
    )


def test_client_error_without_message_or_request_id() -> None:
    error = to_sts_error(client_error("Throttling", "", status=400, request_id=None))
    assert str(error) == "AssumeRoleWithWebIdentity failed: Throttling"
    assert error.request_id is None
    assert error.retryable is True


def test_client_error_without_error_block() -> None:
    error = to_sts_error(ClientError({}, "AssumeRoleWithWebIdentity"))
    assert error.code == "Unknown"
    assert error.retryable is False


@pytest.mark.parametrize(
    "exc",
    [
        EndpointConnectionError(endpoint_url="https://sts.us-east-1.amazonaws.com"),
        ConnectTimeoutError(endpoint_url="https://sts.us-east-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://sts.us-east-1.amazonaws.com"),
    ],
)
def test_connection_errors_are_retryable(exc: Exception) -> None:
    error = to_sts_error(exc)
    assert error.code == type(exc).__name__
    assert error.retryable is True
    assert "https://sts.us-east-1.amazonaws.com" in str(error)


def test_botocore_validation_text_is_not_copied() -> None:
    exc = ParamValidationError(report=f"Invalid WebIdentityToken {TOKEN!r}")
    error = to_sts_error(exc)
    assert error.code == "ParamValidationError"
    assert error.retryable is False
    assert TOKEN not in str(error)


def test_unexpected_exception_text_is_not_copied() -> None:
    error = to_sts_error(RuntimeError(f"request body had {TOKEN}"))
    assert error.code == "RuntimeError"
    assert error.retryable is False
    assert TOKEN not in str(error)


def test_sts_error_passes_through() -> None:
    error = StsError("x", code="AccessDenied", retryable=False)
    assert to_sts_error(error) is error


# -- request ------------------------------------------------------------------------------------


def test_request_params_with_every_field() -> None:
    request = StsRequest(
        role_arn=ROLE,
        role_session_name="session-1",
        token=TOKEN,
        duration_seconds=900,
        policy='{"Version":"2012-10-17"}',
        policy_arns=POLICY_ARNS,
        provider_id="www.amazon.com",
    )
    assert request.to_params() == {
        "RoleArn": ROLE,
        "RoleSessionName": "session-1",
        "WebIdentityToken": TOKEN,
        "DurationSeconds": 900,
        "Policy": '{"Version":"2012-10-17"}',
        "PolicyArns": [{"arn": POLICY_ARNS[0]}, {"arn": POLICY_ARNS[1]}],
        "ProviderId": "www.amazon.com",
    }


def test_request_params_omit_unset_fields() -> None:
    request = StsRequest(role_arn=ROLE, role_session_name="session-1", token=TOKEN)
    assert request.to_params() == {
        "RoleArn": ROLE,
        "RoleSessionName": "session-1",
        "WebIdentityToken": TOKEN,
    }


def test_request_repr_hides_the_token() -> None:
    request = StsRequest(role_arn=ROLE, role_session_name="session-1", token=TOKEN)
    assert TOKEN not in repr(request)
    assert ROLE in repr(request)


# -- one call through a stubbed botocore client -------------------------------------------------


@pytest.fixture
def sts_client() -> Iterator[Any]:
    client = botocore.session.get_session().create_client(
        "sts", region_name="us-east-1", config=Config(signature_version=UNSIGNED)
    )
    yield client
    client.close()


def full_response(expiration: datetime) -> dict[str, Any]:
    return {
        "Credentials": {
            "AccessKeyId": "ASIAEXAMPLEKEY12345",
            "SecretAccessKey": "secret/access/key",
            "SessionToken": "session-token-value",
            "Expiration": expiration,
        },
        "SubjectFromWebIdentityToken": "system:serviceaccount:ns:app",
        "AssumedRoleUser": {
            "Arn": "arn:aws:sts::123456789012:assumed-role/web-role/session-1",
            "AssumedRoleId": "AROAEXAMPLE:session-1",
        },
        "PackedPolicySize": 6,
        "Provider": "arn:aws:iam::123456789012:oidc-provider/oidc.example.com",
        "Audience": "sts.amazonaws.com",
        "SourceIdentity": "alice",
    }


def test_successful_call_keeps_every_output_field(sts_client: Any, clock: FakeClock) -> None:
    request = StsRequest(
        role_arn=ROLE,
        role_session_name="session-1",
        token=TOKEN,
        duration_seconds=3600,
        policy_arns=POLICY_ARNS,
    )
    expiration = clock() + timedelta(hours=1)
    with Stubber(sts_client) as stubber:
        stubber.add_response(
            "assume_role_with_web_identity",
            full_response(expiration),
            expected_params=request.to_params(),
        )
        result = assume_role_with_web_identity(sts_client, request, clock=clock)
        stubber.assert_no_pending_responses()
    assert result == WebIdentityResult(
        access_key_id="ASIAEXAMPLEKEY12345",
        secret_access_key="secret/access/key",
        session_token="session-token-value",
        expiration=expiration,
        obtained_at=clock(),
        assumed_role_user=AssumedRoleUser(
            arn="arn:aws:sts::123456789012:assumed-role/web-role/session-1",
            assumed_role_id="AROAEXAMPLE:session-1",
        ),
        subject_from_web_identity_token="system:serviceaccount:ns:app",
        audience="sts.amazonaws.com",
        provider="arn:aws:iam::123456789012:oidc-provider/oidc.example.com",
        source_identity="alice",
        packed_policy_size=6,
    )
    assert result.account_id == "123456789012"


def test_stubbed_client_error_becomes_sts_error(sts_client: Any, clock: FakeClock) -> None:
    request = StsRequest(role_arn=ROLE, role_session_name="session-1", token=TOKEN)
    with Stubber(sts_client) as stubber:
        stubber.add_client_error(
            "assume_role_with_web_identity",
            service_error_code="AccessDenied",
            service_message="Not authorized to perform sts:AssumeRoleWithWebIdentity",
            http_status_code=403,
            expected_params=request.to_params(),
            response_meta={"RequestId": "req-42"},
        )
        with pytest.raises(StsError) as info:
            assume_role_with_web_identity(sts_client, request, clock=clock)
    error = info.value
    assert error.code == "AccessDenied"
    assert error.retryable is False
    assert error.request_id == "req-42"
    assert error.http_status == 403
    assert "Not authorized" in str(error)
    assert TOKEN not in str(error)
    assert isinstance(error.__cause__, ClientError)


def test_stubbed_rejection_is_a_client_error_with_botocores_response(
    sts_client: Any, clock: FakeClock
) -> None:
    """Code written for botocore's provider (``except ClientError``) still catches it."""
    request = StsRequest(role_arn=ROLE, role_session_name="session-1", token=TOKEN)
    with Stubber(sts_client) as stubber:
        stubber.add_client_error(
            "assume_role_with_web_identity",
            service_error_code="InvalidIdentityToken",
            service_message="Incorrect token audience",
            http_status_code=400,
            expected_params=request.to_params(),
            response_meta={"RequestId": "req-43"},
        )
        with pytest.raises(ClientError) as info:
            assume_role_with_web_identity(sts_client, request, clock=clock)
    error = info.value
    assert isinstance(error, StsServiceError)
    assert error.response["Error"]["Code"] == "InvalidIdentityToken"
    assert error.response["Error"]["Message"] == "Incorrect token audience"
    assert error.response["ResponseMetadata"]["RequestId"] == "req-43"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error.operation_name == "AssumeRoleWithWebIdentity"
    assert error.sts_message == "Incorrect token audience"
    assert TOKEN not in repr(error.response)


@pytest.mark.parametrize(
    "exc",
    [
        EndpointConnectionError(endpoint_url="https://sts.us-east-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://sts.us-east-1.amazonaws.com"),
        ParamValidationError(report="bad"),
    ],
)
def test_failures_without_an_sts_answer_are_not_client_errors(exc: Exception) -> None:
    error = to_sts_error(exc)
    assert type(error) is StsError
    assert not isinstance(error, ClientError)


def test_stubbed_throttling_is_retryable(sts_client: Any, clock: FakeClock) -> None:
    request = StsRequest(role_arn=ROLE, role_session_name="session-1", token=TOKEN)
    with Stubber(sts_client) as stubber:
        stubber.add_client_error(
            "assume_role_with_web_identity",
            service_error_code="Throttling",
            service_message="Rate exceeded",
            http_status_code=400,
            expected_params=request.to_params(),
        )
        with pytest.raises(StsError) as info:
            assume_role_with_web_identity(sts_client, request, clock=clock)
    assert info.value.retryable is True


def test_unusable_response_is_a_retryable_error(sts_client: Any, clock: FakeClock) -> None:
    request = StsRequest(role_arn=ROLE, role_session_name="session-1", token=TOKEN)
    with Stubber(sts_client) as stubber:
        stubber.add_response("assume_role_with_web_identity", {}, request.to_params())
        with pytest.raises(StsError) as info:
            assume_role_with_web_identity(sts_client, request, clock=clock)
    assert info.value.code == "InvalidResponse"
    assert info.value.retryable is True
    assert isinstance(info.value.__cause__, ValueError)


# -- client and endpoint ------------------------------------------------------------------------


def test_created_client_is_unsigned_and_makes_one_attempt() -> None:
    session = botocore.session.get_session()
    client = create_sts_client(
        session, endpoint=resolve_sts_endpoint(session, region_name="eu-west-1")
    )
    try:
        assert client.meta.region_name == "eu-west-1"
        assert client.meta.config.signature_version is UNSIGNED
        assert client.meta.config.retries["total_max_attempts"] == 1
    finally:
        client.close()


def test_endpoint_identity_changes_with_region_and_endpoint_url() -> None:
    session = botocore.session.get_session()
    session.set_config_variable("region", "us-east-1")

    def endpoint_identity(session: Any, environ: dict[str, str]) -> str:
        return resolve_sts_endpoint(session, environ=environ).identity()

    base = endpoint_identity(session, {})
    assert "us-east-1" in base
    assert endpoint_identity(session, {"AWS_ENDPOINT_URL_STS": "http://127.0.0.1:5000"}) != base
    assert endpoint_identity(session, {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}) != base
    other = botocore.session.get_session()
    other.set_config_variable("region", "cn-north-1")
    assert endpoint_identity(other, {}) != base


# -- retries ------------------------------------------------------------------------------------


class FakeTime:
    """A monotonic clock that only ``sleep`` moves."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class FakeAttempt:
    """Raises the queued errors in order, then returns a result; records the tokens seen."""

    def __init__(self, errors: list[StsError], *, repeat_last: bool = False) -> None:
        self.errors = errors
        self.repeat_last = repeat_last
        self.tokens: list[str] = []

    def __call__(self, token: str) -> WebIdentityResult:
        self.tokens.append(token)
        if self.errors:
            error = self.errors[0] if self.repeat_last and len(self.errors) == 1 else None
            raise error or self.errors.pop(0)
        return make_result()


class TokenReader:
    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return self.tokens[min(self.calls, len(self.tokens)) - 1]


def throttled() -> StsError:
    return to_sts_error(client_error("Throttling", "Rate exceeded"))


def run(
    attempt: Callable[[str], WebIdentityResult],
    read_token: Callable[[], str],
    fake_time: FakeTime,
    policy: RetryPolicy = RetryPolicy(),
    seed: int = 7,
) -> WebIdentityResult:
    return call_with_retries(
        attempt,
        read_token,
        policy=policy,
        sleep=fake_time.sleep,
        monotonic=fake_time.monotonic,
        rng=random.Random(seed),
    )


def test_success_on_first_attempt_does_not_sleep() -> None:
    fake_time = FakeTime()
    attempt = FakeAttempt([])
    assert run(attempt, TokenReader(TOKEN), fake_time) == make_result()
    assert attempt.tokens == [TOKEN]
    assert fake_time.sleeps == []


def test_transient_error_is_retried_then_succeeds() -> None:
    fake_time = FakeTime()
    attempt = FakeAttempt([throttled(), throttled()])
    assert run(attempt, TokenReader(TOKEN), fake_time) == make_result()
    assert attempt.tokens == [TOKEN, TOKEN, TOKEN]
    assert len(fake_time.sleeps) == 2


def test_transient_error_is_retried_up_to_max_attempts_then_raised() -> None:
    fake_time = FakeTime()
    error = throttled()
    attempt = FakeAttempt([error], repeat_last=True)
    reader = TokenReader(TOKEN)
    with pytest.raises(StsError) as info:
        run(attempt, reader, fake_time, RetryPolicy(max_attempts=4, max_total_seconds=1000))
    assert info.value is error
    assert len(attempt.tokens) == 4
    assert len(fake_time.sleeps) == 3
    assert reader.calls == 1


def test_retries_are_bounded_by_total_time() -> None:
    fake_time = FakeTime()
    attempt = FakeAttempt([throttled()], repeat_last=True)
    policy = RetryPolicy(
        max_attempts=1000, base_delay_seconds=1.0, max_delay_seconds=1.0, max_total_seconds=5.0
    )
    with pytest.raises(StsError):
        run(attempt, TokenReader(TOKEN), fake_time, policy)
    assert sum(fake_time.sleeps) <= 5.0
    assert fake_time.now - 1000.0 <= 5.0
    assert 2 <= len(attempt.tokens) < 1000


def test_permanent_error_is_raised_after_one_call() -> None:
    fake_time = FakeTime()
    error = to_sts_error(client_error("AccessDenied", "Not authorized"))
    attempt = FakeAttempt([error, error, error])
    with pytest.raises(StsError) as info:
        run(attempt, TokenReader(TOKEN), fake_time)
    assert info.value is error
    assert attempt.tokens == [TOKEN]
    assert fake_time.sleeps == []


def test_expired_token_rereads_the_token_and_retries_once() -> None:
    fake_time = FakeTime()
    attempt = FakeAttempt([to_sts_error(client_error("ExpiredTokenException", "expired"))])
    reader = TokenReader(TOKEN, NEW_TOKEN)
    assert run(attempt, reader, fake_time) == make_result()
    assert attempt.tokens == [TOKEN, NEW_TOKEN]
    assert reader.calls == 2


def test_expired_token_twice_is_raised() -> None:
    fake_time = FakeTime()
    expired = to_sts_error(client_error("ExpiredTokenException", "expired"))
    attempt = FakeAttempt([expired], repeat_last=True)
    reader = TokenReader(TOKEN, NEW_TOKEN)
    with pytest.raises(StsError) as info:
        run(attempt, reader, fake_time)
    assert info.value.code == "ExpiredTokenException"
    assert attempt.tokens == [TOKEN, NEW_TOKEN]
    assert reader.calls == 2


def test_token_read_failure_propagates() -> None:
    def broken() -> str:
        raise TokenSourceError("token file /x does not exist", path="/x")

    attempt = FakeAttempt([])
    with pytest.raises(TokenSourceError):
        run(attempt, broken, FakeTime())
    assert attempt.tokens == []


def test_delays_use_full_jitter_within_the_capped_exponential() -> None:
    fake_time = FakeTime()
    policy = RetryPolicy(
        max_attempts=8, base_delay_seconds=0.5, max_delay_seconds=3.0, max_total_seconds=1000
    )
    attempt = FakeAttempt([throttled()], repeat_last=True)
    with pytest.raises(StsError):
        run(attempt, TokenReader(TOKEN), fake_time, policy, seed=11)
    caps = [min(3.0, 0.5 * 2**index) for index in range(7)]
    assert len(fake_time.sleeps) == 7
    for delay, cap in zip(fake_time.sleeps, caps):
        assert 0.0 <= delay <= cap
    expected_rng = random.Random(11)
    assert fake_time.sleeps == [expected_rng.uniform(0, cap) for cap in caps]


def test_delays_vary_with_the_seed() -> None:
    sleeps = []
    for seed in (1, 2):
        fake_time = FakeTime()
        with pytest.raises(StsError):
            run(
                FakeAttempt([throttled()], repeat_last=True),
                TokenReader(TOKEN),
                fake_time,
                seed=seed,
            )
        sleeps.append(fake_time.sleeps)
    assert sleeps[0] != sleeps[1]


def test_retry_logs_do_not_contain_the_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="webid_provider")
    attempt = FakeAttempt(
        [to_sts_error(client_error("ExpiredTokenException", "expired")), throttled()]
    )
    run(attempt, TokenReader(TOKEN, NEW_TOKEN), FakeTime())
    assert any("Throttling" in record.getMessage() for record in caplog.records)
    assert TOKEN not in caplog.text
    assert NEW_TOKEN not in caplog.text
