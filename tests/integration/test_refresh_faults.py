"""Refresh under short lifetimes and STS faults, checked at the emulator.

Lifetimes come from the emulator (tens of seconds, never real STS lifetimes). Requests are
signed GetCallerIdentity calls, so the emulator sees every signature and counts any made with
credentials past their expiry.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.credentials import CredentialResolver
from botocore.exceptions import ClientError

import webid_provider
from webid_provider import StsError
from webid_provider._policy import RefreshPolicy
from webid_provider._provider import WebIdentityProvider
from webid_provider._sts import RetryPolicy

pytestmark = pytest.mark.integration


def _credentials(session: Any) -> Any:
    """The session's credentials, which these tests expect to exist."""
    creds = session.get_credentials()
    assert creds is not None
    return creds


# Fast retries keep these tests short; the classification and the attempt counts are what
# is under test, and they do not depend on the delays.
FAST_RETRIES = RetryPolicy(
    max_attempts=4, base_delay_seconds=0.01, max_delay_seconds=0.05, max_total_seconds=60
)


def _fast_retry_credentials() -> Any:
    """Memory-only credentials from the IRSA environment, with :data:`FAST_RETRIES`."""
    provider = WebIdentityProvider(
        botocore.session.Session(), {"cache_dir": None}, retry_policy=FAST_RETRIES
    )
    creds = provider.load()
    assert creds is not None
    return creds


def _signed_client(irsa_env: Any, **options: Any) -> Any:
    session = webid_provider.session(**options)
    return session.client("sts", region_name="us-east-1"), _credentials(session)


def _request_loop(client: Any, seconds: float, interval: float = 0.1) -> tuple[int, list[str]]:
    """Sign a request every ``interval`` for ``seconds``; return (count, failures)."""
    failures: list[str] = []
    count = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        count += 1
        try:
            client.get_caller_identity()
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
        time.sleep(interval)
    return count, failures


@pytest.mark.timeout(60)
def test_short_credentials_refresh_once_per_lifetime_and_never_sign_expired(
    irsa_env: Any,
) -> None:
    irsa_env.emulator.lifetime_seconds = 6
    client, creds = _signed_client(irsa_env)
    _count, failures = _request_loop(client, 14, interval=0.05)
    assert failures == []
    assert irsa_env.emulator.expired_credential_uses == 0
    # One call per lifetime, each refreshed 1.1-1.9 s early: three calls in 14 s, four at
    # most; a refresh storm would make dozens.
    assert 2 <= irsa_env.emulator.assume_count <= 4
    signed_keys = {r.access_key_id for r in irsa_env.emulator.signed_requests}
    assert signed_keys <= {c.access_key_id for c in irsa_env.emulator.successful_calls}
    assert creds.web_identity.access_key_id == irsa_env.emulator.successful_calls[-1].access_key_id


#: A fixed refresh time, 4 s before expiry for 8 s credentials (stop point: 1 s before), so
#: that an outage can cover it with seconds to spare however slowly a loaded CI host runs the
#: request loop (the default jittered window would leave a fraction of a second).
OUTAGE_POLICY = RefreshPolicy(advisory_fraction=0.5, jitter_fraction=0.0)


@pytest.mark.timeout(60)
def test_outage_while_credentials_are_valid_serves_every_request(irsa_env: Any) -> None:
    """The one real-time end-to-end outage: STS is down across the refresh time."""
    irsa_env.emulator.lifetime_seconds = 8
    session = botocore.session.Session()
    provider = WebIdentityProvider(session, {"cache_dir": None}, policy=OUTAGE_POLICY)
    session.register_component("credential_provider", CredentialResolver(providers=[provider]))
    client: Any = session.create_client("sts", region_name="us-east-1")
    client.get_caller_identity()
    (call,) = irsa_env.emulator.successful_calls
    assert call.expiration is not None
    # Down from now until 2 s before expiry: across the refresh time (4 s before) to 1 s before
    # the stop point.
    left = (call.expiration - datetime.now(timezone.utc)).total_seconds()
    irsa_env.emulator.outage(left - 2, code="ServiceUnavailable", status=503)
    _count, failures = _request_loop(client, left + 1.5, interval=0.05)
    assert failures == []
    assert irsa_env.emulator.expired_credential_uses == 0
    attempts_during_outage = [c for c in irsa_env.emulator.calls if c.error_code is not None]
    assert 1 <= len(attempts_during_outage) <= 8, attempts_during_outage
    assert len(irsa_env.emulator.successful_calls) >= 2  # refreshed once STS came back


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("code", "message", "status", "failures", "expected_calls", "succeeds"),
    [
        ("IDPCommunicationError", None, 400, 2, 3, True),
        ("Throttling", "Rate exceeded", 400, 1, 2, True),
        ("InternalFailure", None, 500, 1, 2, True),
        ("ServiceUnavailable", None, 503, 3, 4, True),
        (
            "InvalidIdentityToken",
            "Couldn't retrieve verification key from your identity provider",
            400,
            1,
            2,
            True,
        ),
        ("IDPCommunicationError", None, 400, 10, 4, False),
        # The token file still holds the same token: a retry would fail the same way.
        ("ExpiredTokenException", "Token expired", 400, 2, 1, False),
        ("InvalidIdentityToken", "Incorrect token audience", 400, 1, 1, False),
        (
            "AccessDenied",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
            403,
            1,
            1,
            False,
        ),
        ("IDPRejectedClaim", "Claims rejected", 403, 1, 1, False),
        ("MalformedPolicyDocument", "Syntax errors in policy", 400, 1, 1, False),
        ("PackedPolicyTooLarge", "Packed policy too large", 400, 1, 1, False),
        ("RegionDisabledException", "STS is not activated in this region", 403, 1, 1, False),
        (
            "ValidationError",
            "The requested DurationSeconds exceeds the MaxSessionDuration",
            400,
            1,
            1,
            False,
        ),
    ],
)
def test_error_classes_are_retried_or_not_with_exact_call_counts(
    irsa_env: Any,
    code: str,
    message: Any,
    status: int,
    failures: int,
    expected_calls: int,
    succeeds: bool,
) -> None:
    irsa_env.emulator.fail_next(code, message, status=status, count=failures)
    creds = _fast_retry_credentials()
    if succeeds:
        assert creds.get_frozen_credentials().access_key
    else:
        with pytest.raises(StsError) as info:
            creds.get_frozen_credentials()
        assert info.value.code == code
        assert info.value.request_id
        assert info.value.request_id in str(info.value)
    assert irsa_env.emulator.assume_count == expected_calls


@pytest.mark.timeout(60)
def test_expired_token_is_reread_before_the_retry(irsa_env: Any) -> None:
    irsa_env.emulator.fail_next("ExpiredTokenException", "Token expired", count=1)
    reads: list[str] = []

    def read_and_rotate() -> str:
        token = irsa_env.token_file.read_text()
        reads.append(token)
        if len(reads) == 1:
            irsa_env.rotate(jti="rotated")  # the kubelet rotates while the first call is in flight
        return str(token)

    creds = webid_provider.session(web_identity_token=read_and_rotate, cache_dir=None)
    creds.get_credentials().get_frozen_credentials()
    first, second = irsa_env.emulator.calls
    assert first.error_code == "ExpiredTokenException"
    assert second.error_code is None
    assert first.token_sha256 != second.token_sha256


@pytest.mark.timeout(60)
def test_dropped_connection_is_retried(irsa_env: Any) -> None:
    irsa_env.emulator.drop_next(1)
    creds = _fast_retry_credentials()
    assert creds.get_frozen_credentials().access_key
    assert irsa_env.emulator.assume_count == 2


@pytest.mark.timeout(60)
def test_permanent_error_is_not_repeated_by_many_threads(irsa_env: Any) -> None:
    irsa_env.emulator.fail_next("AccessDenied", "Not authorized", status=403, count=100)
    errors: list[str] = []

    def work() -> None:
        try:
            _credentials(boto3.Session()).get_frozen_credentials()
        except StsError as exc:
            errors.append(exc.code)
        except Exception as exc:  # recorded, so the assertion below names it
            errors.append(f"unexpected {type(exc).__name__}: {exc}")
        else:
            errors.append("no error")

    webid_provider.register(cache_dir=None)
    try:
        threads = [threading.Thread(target=work) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        webid_provider.unregister()
    assert errors == ["AccessDenied"] * 16
    assert irsa_env.emulator.assume_count == 1


@pytest.mark.timeout(60)
def test_nothing_usable_left_raises_with_the_last_error(irsa_env: Any) -> None:
    irsa_env.emulator.lifetime_seconds = 4
    client, _ = _signed_client(irsa_env, cache_dir=None)
    client.get_caller_identity()
    irsa_env.emulator.outage(30, code="ServiceUnavailable", status=503)
    time.sleep(4.5)
    with pytest.raises((StsError, ClientError)) as info:
        client.get_caller_identity()
    assert isinstance(info.value, StsError)
    assert info.value.code == "ServiceUnavailable"
    assert irsa_env.emulator.expired_credential_uses == 0
