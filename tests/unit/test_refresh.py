"""The refresh policy (windows, jitter, backoff) and the refresher that applies it."""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional, Protocol

import jwt
import pytest
from botocore.exceptions import BotoCoreError, ClientError

from webid_provider._botocore import BOTOCORE_MANDATORY_SECONDS
from webid_provider._cache import CacheEntry, CredentialCache
from webid_provider._credentials import WebIdentityCredentials
from webid_provider._errors import ClockSkewError, ConfigurationError, StsError, TokenSourceError
from webid_provider._policy import RefreshPolicy
from webid_provider._refresh import WebIdentityRefresher
from webid_provider._refresh_job import run_inline
from webid_provider._refresh_state import clear_memory_state
from webid_provider._result import WebIdentityResult
from webid_provider._settings import WebIdentitySettings
from webid_provider._sts import RetryPolicy
from webid_provider._token_spec import TokenSpec
from webid_provider._tokens import (
    StringTokenSource,
    TokenSource,
    default_session_name,
    peek_claims,
    token_identity,
)

ROLE = "arn:aws:iam::123456789012:role/web-role"
HMAC_KEY = "a-test-only-hmac-key-of-at-least-32-bytes"
START = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
FAST_RETRIES = RetryPolicy(
    max_attempts=2, base_delay_seconds=0.001, max_delay_seconds=0.001, max_total_seconds=5
)


class FakeClock(Protocol):
    """The conftest ``clock`` fixture's interface."""

    def __call__(self) -> datetime: ...

    def advance(self, seconds: float) -> datetime: ...


def make_jwt(**claims: object) -> str:
    base: dict[str, object] = {
        "iss": "https://oidc.example.com",
        "sub": "system:serviceaccount:ns:app",
        "aud": "sts.amazonaws.com",
        "iat": 1767268800,
    }
    base.update(claims)
    return jwt.encode(base, HMAC_KEY, algorithm="HS256")


TOKEN = make_jwt()


def result_for(lifetime: float, *, obtained_at: datetime = START) -> WebIdentityResult:
    return WebIdentityResult(
        access_key_id="ASIAEXAMPLE",
        secret_access_key="secret",
        session_token="session",
        expiration=obtained_at + timedelta(seconds=lifetime),
        obtained_at=obtained_at,
    )


# -- RefreshPolicy ------------------------------------------------------------------------------

POLICY = RefreshPolicy()


@pytest.mark.parametrize(
    ("lifetime", "advisory"),
    [(60, 15), (900, 225), (3600, 900), (7200, 900), (43200, 900)],
)
def test_advisory_is_a_quarter_of_the_lifetime_capped_at_15_minutes(
    lifetime: float, advisory: float
) -> None:
    assert POLICY.advisory_seconds(result_for(lifetime)) == advisory


@pytest.mark.parametrize(
    ("lifetime", "stop"),
    [(10, 1), (20, 1), (100, 5), (900, 45), (1200, 60), (3600, 60), (43200, 60)],
)
def test_stop_is_five_percent_clamped_to_1_to_60_seconds(lifetime: float, stop: float) -> None:
    assert POLICY.stop_seconds(result_for(lifetime)) == stop


@pytest.mark.parametrize("lifetime", [900, 3600, 43200])
def test_refresh_at_is_jittered_within_the_window(lifetime: float) -> None:
    result = result_for(lifetime)
    advisory = POLICY.advisory_seconds(result)
    earliest = result.expiration - timedelta(seconds=1.25 * advisory)
    latest = result.expiration - timedelta(seconds=0.75 * advisory)
    seen = set()
    for seed in range(200):
        when = POLICY.refresh_at(result, START, random.Random(seed))
        assert earliest <= when <= latest
        assert when > START
        seen.add(when)
    assert len(seen) > 150, "refresh times must spread, not move in lockstep"
    spread = (max(seen) - min(seen)).total_seconds()
    assert spread > 0.4 * advisory


def test_refresh_at_is_never_in_the_past() -> None:
    result = result_for(3600)
    advisory = POLICY.advisory_seconds(result)
    latest = result.expiration - timedelta(seconds=0.75 * advisory)
    inside_jitter = result.expiration - timedelta(seconds=1.2 * advisory)
    for seed in range(100):
        when = POLICY.refresh_at(result, inside_jitter, random.Random(seed))
        assert inside_jitter <= when <= latest
    past_window = result.expiration - timedelta(seconds=0.5 * advisory)
    for seed in range(20):
        assert POLICY.refresh_at(result, past_window, random.Random(seed)) >= past_window


def test_usable_and_fresh_boundaries() -> None:
    result = result_for(3600)  # advisory 900 s, stop 60 s
    expiration = result.expiration

    def at(seconds_left: float) -> datetime:
        return expiration - timedelta(seconds=seconds_left)

    assert POLICY.fresh(result, at(901))
    assert not POLICY.fresh(result, at(900))
    assert POLICY.usable(result, at(900))
    assert POLICY.usable(result, at(61))
    assert not POLICY.usable(result, at(60))
    assert not POLICY.usable(result, at(0))
    assert not POLICY.usable(result, at(-10))


def test_next_attempt_grows_exponentially_and_is_capped() -> None:
    result = result_for(43200)
    delays = [
        (POLICY.next_attempt_at(result, failures, START, random.Random(5)) - START).total_seconds()
        for failures in range(1, 16)
    ]
    for failures, delay in enumerate(delays, start=1):
        nominal = min(300.0, 1.0 * 2 ** (failures - 1))
        assert 0.5 * nominal <= delay <= nominal
    for earlier, later in zip(delays[:8], delays[1:9]):
        assert later == pytest.approx(2 * earlier)
    assert max(delays) <= 300.0
    assert delays[-1] == delays[-2]  # capped


def test_next_attempt_is_jittered() -> None:
    result = result_for(43200)
    attempts = {POLICY.next_attempt_at(result, 4, START, random.Random(seed)) for seed in range(50)}
    assert len(attempts) > 40


@pytest.mark.parametrize("seconds_usable", [3, 30, 90, 299])
def test_next_attempt_never_lands_past_the_usable_time(seconds_usable: float) -> None:
    result = result_for(3600)  # stop 60 s
    stop = POLICY.stop_seconds(result)
    now = result.expiration - timedelta(seconds=stop + seconds_usable)
    for failures in (1, 5, 10, 20):
        when = POLICY.next_attempt_at(result, failures, now, random.Random(failures))
        assert now < when
        assert (when - now).total_seconds() <= seconds_usable / 3 + 1e-5  # microsecond rounding
        assert POLICY.usable(result, when)


# -- WebIdentityRefresher -----------------------------------------------------------------------


class FakeSts:
    """Answers like botocore's parsed AssumeRoleWithWebIdentity response; counts calls."""

    def __init__(self, clock: FakeClock, lifetime: float = 3600) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls: list[dict[str, Any]] = []
        self.error: Optional[Exception] = None

    def assume_role_with_web_identity(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        if self.error is not None:
            raise self.error
        number = len(self.calls)
        session = params["RoleSessionName"]
        return {
            "Credentials": {
                "AccessKeyId": f"ASIAKEY{number:04d}",
                "SecretAccessKey": f"secret-access-key-{number}",
                "SessionToken": f"session-token-{number}",
                "Expiration": self.clock() + timedelta(seconds=self.lifetime),
            },
            "SubjectFromWebIdentityToken": "system:serviceaccount:ns:app",
            "AssumedRoleUser": {
                "Arn": f"arn:aws:sts::123456789012:assumed-role/web-role/{session}",
                "AssumedRoleId": f"AROAEXAMPLE:{session}",
            },
            "Audience": "sts.amazonaws.com",
            "Provider": "arn:aws:iam::123456789012:oidc-provider/oidc.example.com",
            "ResponseMetadata": {"RequestId": f"req-{number}", "HTTPStatusCode": 200},
        }


def sts_error(code: str, message: str = "", status: int = 400) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "req-error"},
    }
    return ClientError(response, "AssumeRoleWithWebIdentity")


class SwitchableTokenSource:
    """A token source whose token (or failure) the test changes between calls."""

    description = "token callable test"

    def __init__(self, token: str) -> None:
        self.token = token
        self.error: Optional[TokenSourceError] = None
        self.reads = 0

    def read_token(self) -> str:
        self.reads += 1
        if self.error is not None:
            raise self.error
        return self.token


def make_settings(**overrides: Any) -> WebIdentitySettings:
    values: dict[str, Any] = {
        "role_arn": ROLE,
        "token": TokenSpec(kind="string", string=TOKEN),
        "duration_seconds": 3600,
    }
    values.update(overrides)
    return WebIdentitySettings(**values)


def make_refresher(
    cache: CredentialCache,
    clock: FakeClock,
    sts: FakeSts,
    *,
    token_source: Optional[TokenSource] = None,
    settings: Optional[WebIdentitySettings] = None,
    seed: int = 3,
) -> WebIdentityRefresher:
    return WebIdentityRefresher(
        settings or make_settings(),
        token_source or StringTokenSource(TOKEN),
        sts_client=lambda: sts,
        endpoint="us-east-1||regional",
        cache=cache,
        clock=clock,
        retry_policy=FAST_RETRIES,
        rng=random.Random(seed),
        run_job=run_inline,
    )


def expiry_of(metadata: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(metadata["expiry_time"])


def assert_expiry_before_stop(metadata: dict[str, Any], result: WebIdentityResult) -> None:
    stop = POLICY.stop_seconds(result)
    assert expiry_of(metadata) < result.expiration - timedelta(seconds=stop)


@pytest.fixture
def cache(tmp_path: Path) -> CredentialCache:
    return CredentialCache(tmp_path / "cache", lock_timeout_seconds=1)


@pytest.fixture
def sts(clock: FakeClock) -> FakeSts:
    return FakeSts(clock)


def test_first_call_asks_sts_with_the_settings(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    refresher = make_refresher(cache, clock, sts)
    metadata = refresher()
    assert len(sts.calls) == 1
    params = sts.calls[0]
    assert params["RoleArn"] == ROLE
    assert params["WebIdentityToken"] == TOKEN
    assert params["DurationSeconds"] == 3600
    material = refresher.key_material(TOKEN)
    assert params["RoleSessionName"] == material.role_session_name
    # The session name follows the token's identity; the key binds the exact string token.
    assert params["RoleSessionName"] == default_session_name(
        token_identity(TOKEN, peek_claims(TOKEN))
    )
    assert metadata["access_key"] == "ASIAKEY0001"
    assert metadata["secret_key"] == "secret-access-key-1"
    assert metadata["token"] == "session-token-1"
    assert metadata["account_id"] == "123456789012"
    assert refresher.latest is not None
    assert refresher.latest.subject_from_web_identity_token == "system:serviceaccount:ns:app"
    assert refresher.key == material.key()
    entry = cache.read(material.key(), now=clock())
    assert entry is not None
    assert entry.result == refresher.latest
    assert_expiry_before_stop(metadata, refresher.latest)


def test_explicit_session_name_is_used(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    make_refresher(cache, clock, sts, settings=make_settings(role_session_name="my-session"))()
    assert sts.calls[0]["RoleSessionName"] == "my-session"


def test_steady_state_is_one_sts_call_per_refresh(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    refresher = make_refresher(cache, clock, sts)
    first = refresher()
    assert len(sts.calls) == 1
    # Before the earliest possible refresh time (E - 1.5 * 900 s): served from memory.
    clock.advance(3600 - 1125 - 1)
    again = refresher()
    assert len(sts.calls) == 1
    assert again["access_key"] == first["access_key"]
    # Past the latest possible refresh time (E - 900 s) but still usable: refreshed.
    clock.advance(1125 - 675 + 2)
    refreshed = refresher()
    assert len(sts.calls) == 2
    assert refreshed["access_key"] == "ASIAKEY0002"
    assert refresher.latest is not None
    assert_expiry_before_stop(refreshed, refresher.latest)
    refresher()
    assert len(sts.calls) == 2


def test_reported_expiry_asks_again_at_the_refresh_time(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    refresher = make_refresher(cache, clock, sts)
    metadata = refresher()
    assert refresher.latest is not None
    expiration = refresher.latest.expiration
    reported = expiry_of(metadata)
    assert expiration - timedelta(seconds=1125) < reported
    assert reported <= expiration - timedelta(seconds=675) + timedelta(seconds=2)


def test_failed_refresh_serves_usable_credentials_and_backs_off(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="webid_provider")
    refresher = make_refresher(cache, clock, sts)
    refresher()
    held = refresher.latest
    assert held is not None
    clock.advance(3600 - 675 + 1)
    sts.error = sts_error("ThrottlingException", "Rate exceeded")
    metadata = refresher()
    assert len(sts.calls) == 2, "a refresh while usable credentials exist is a single attempt"
    assert metadata["access_key"] == "ASIAKEY0001"
    assert refresher.latest == held
    assert_expiry_before_stop(metadata, held)
    assert expiry_of(metadata) > clock()
    # Immediately again: inside the backoff, no STS call.
    assert refresher()["access_key"] == "ASIAKEY0001"
    assert len(sts.calls) == 2
    # After the backoff: one more attempt, which now succeeds.
    clock.advance(POLICY.backoff_base_seconds + 0.5)
    sts.error = None
    assert refresher()["access_key"] == "ASIAKEY0003"
    assert len(sts.calls) == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("still serving" in message for message in warnings)
    assert TOKEN not in caplog.text
    assert "secret-access-key" not in caplog.text
    assert "session-token-" not in caplog.text


def test_backoff_grows_with_repeated_failures(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    refresher = make_refresher(cache, clock, sts)
    refresher()
    clock.advance(3600 - 675 + 1)
    sts.error = sts_error("ServiceUnavailable", "", status=503)
    calls_at: list[float] = []
    elapsed = 0.0
    while elapsed < 120:
        before = len(sts.calls)
        refresher()
        if len(sts.calls) > before:
            calls_at.append(elapsed)
        clock.advance(0.25)
        elapsed += 0.25
    gaps = [later - earlier for earlier, later in zip(calls_at, calls_at[1:])]
    assert len(calls_at) >= 4
    assert len(calls_at) < 20, "failures must back off, not retry on every request"
    assert gaps[-1] > gaps[0]


def test_failure_with_nothing_usable_raises(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    sts.error = sts_error("ThrottlingException", "Rate exceeded")
    refresher = make_refresher(cache, clock, sts)
    with pytest.raises(StsError) as info:
        refresher()
    assert info.value.code == "ThrottlingException"
    assert len(sts.calls) == FAST_RETRIES.max_attempts
    assert TOKEN not in str(info.value)


def test_expired_credentials_failing_to_refresh_raise(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    refresher = make_refresher(cache, clock, sts)
    refresher()
    clock.advance(3600 - 60)  # exactly at the stop point: no longer usable
    sts.error = sts_error("ThrottlingException", "Rate exceeded")
    with pytest.raises(StsError):
        refresher()
    assert len(sts.calls) == 1 + FAST_RETRIES.max_attempts


def test_permanent_error_is_replayed_without_calling_sts(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    sts.error = sts_error("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
    refresher = make_refresher(cache, clock, sts)
    with pytest.raises(StsError) as first:
        refresher()
    assert first.value.code == "AccessDenied"
    assert len(sts.calls) == 1
    clock.advance(1)
    with pytest.raises(StsError) as second:
        refresher()
    assert len(sts.calls) == 1
    assert second.value.code == "AccessDenied"
    assert second.value.retryable is False
    assert "without calling STS" in str(second.value)
    assert TOKEN not in str(second.value)
    clock.advance(POLICY.negative_cache_seconds)
    with pytest.raises(StsError):
        refresher()
    assert len(sts.calls) == 2


def test_permanent_error_is_not_replayed_for_a_new_token(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    source = SwitchableTokenSource(TOKEN)
    sts.error = sts_error("AccessDenied", "Not authorized")
    refresher = make_refresher(cache, clock, sts, token_source=source)
    with pytest.raises(StsError):
        refresher()
    source.token = make_jwt(iat=1767270000)  # same identity and key, a fresh token
    sts.error = None
    assert refresher()["access_key"] == "ASIAKEY0002"
    assert sts.calls[-1]["WebIdentityToken"] == source.token


def test_newer_entry_from_another_process_is_adopted(
    tmp_path: Path, cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    refresher = make_refresher(cache, clock, sts)
    refresher()
    assert refresher.key is not None
    clock.advance(3600 - 675 + 1)
    newer = WebIdentityResult(
        access_key_id="ASIAOTHERPROCESS",
        secret_access_key="other-secret",
        session_token="other-session",
        expiration=clock() + timedelta(seconds=3600),
        obtained_at=clock(),
    )
    other_process_cache = CredentialCache(tmp_path / "cache")
    assert other_process_cache.write(
        CacheEntry(key=refresher.key, result=newer, role_arn=ROLE, role_session_name="s")
    )
    metadata = refresher()
    assert len(sts.calls) == 1
    assert metadata["access_key"] == "ASIAOTHERPROCESS"
    assert refresher.latest == newer
    assert_expiry_before_stop(metadata, newer)


def test_new_process_adopts_the_disk_entry_without_sts(
    tmp_path: Path, clock: FakeClock, sts: FakeSts
) -> None:
    first = make_refresher(CredentialCache(tmp_path / "cache"), clock, sts)
    metadata = first()
    clear_memory_state()  # what a fresh process starts with
    clock.advance(60)
    second = make_refresher(CredentialCache(tmp_path / "cache"), clock, sts, seed=99)
    assert second()["access_key"] == metadata["access_key"]
    assert len(sts.calls) == 1


def test_stale_disk_entry_is_not_adopted(tmp_path: Path, clock: FakeClock, sts: FakeSts) -> None:
    make_refresher(CredentialCache(tmp_path / "cache"), clock, sts)()
    clear_memory_state()
    clock.advance(3600 - 675 + 1)  # inside the refresh window: not fresh
    metadata = make_refresher(CredentialCache(tmp_path / "cache"), clock, sts)()
    assert len(sts.calls) == 2
    assert metadata["access_key"] == "ASIAKEY0002"


def test_refreshers_with_the_same_key_share_memory(clock: FakeClock, sts: FakeSts) -> None:
    memory_only = CredentialCache(None)
    make_refresher(memory_only, clock, sts)()
    other = make_refresher(memory_only, clock, sts, seed=42)
    assert other()["access_key"] == "ASIAKEY0001"
    assert len(sts.calls) == 1


def test_unreadable_token_serves_usable_credentials(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    source = SwitchableTokenSource(TOKEN)
    refresher = make_refresher(cache, clock, sts, token_source=source)
    refresher()
    clock.advance(3600 - 675 + 1)
    source.error = TokenSourceError("token file /var/run/token does not exist", path="/x")
    metadata = refresher()
    assert metadata["access_key"] == "ASIAKEY0001"
    assert len(sts.calls) == 1
    assert refresher.latest is not None
    assert_expiry_before_stop(metadata, refresher.latest)
    clock.advance(900)
    with pytest.raises(TokenSourceError):
        refresher()


def test_unreadable_token_with_nothing_usable_raises(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    source = SwitchableTokenSource(TOKEN)
    source.error = TokenSourceError("token file /x does not exist", path="/x")
    with pytest.raises(TokenSourceError):
        make_refresher(cache, clock, sts, token_source=source)()
    assert sts.calls == []


def test_provider_id_with_a_jwt_is_a_configuration_error(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    refresher = make_refresher(
        cache, clock, sts, settings=make_settings(provider_id="www.amazon.com")
    )
    with pytest.raises(ConfigurationError) as info:
        refresher()
    assert info.value.field == "provider_id"
    assert sts.calls == []


def test_provider_id_with_an_opaque_token_is_sent(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    opaque = "Atza|IQEBLjAsAhRFiXuWpg-opaque-oauth-token"
    refresher = make_refresher(
        cache,
        clock,
        sts,
        token_source=StringTokenSource(opaque),
        settings=make_settings(provider_id="www.amazon.com"),
    )
    refresher()
    assert sts.calls[0]["ProviderId"] == "www.amazon.com"
    assert sts.calls[0]["WebIdentityToken"] == opaque


def test_memory_only_cache_still_refreshes(clock: FakeClock, sts: FakeSts) -> None:
    refresher = make_refresher(CredentialCache(None), clock, sts)
    refresher()
    refresher()
    assert len(sts.calls) == 1
    clock.advance(3600 - 675 + 1)
    assert refresher()["access_key"] == "ASIAKEY0002"


def test_reported_expiry_never_lets_botocore_sign_past_the_stop_point(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    refresher = make_refresher(cache, clock, sts)
    refresher()
    held = refresher.latest
    assert held is not None
    stop = POLICY.stop_seconds(held)
    sts.error = sts_error("ThrottlingException", "Rate exceeded")
    clock.advance(held.seconds_left(clock()) - stop - 0.5)  # usable for another 0.5 s
    metadata = refresher()
    assert metadata["access_key"] == held.access_key_id
    # botocore keeps signing until fewer than its mandatory seconds are left.
    last_signing = expiry_of(metadata) - timedelta(seconds=BOTOCORE_MANDATORY_SECONDS)
    assert last_signing <= held.expiration - timedelta(seconds=stop)


def test_botocore_credentials_are_not_served_past_the_stop_point(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    refresher = make_refresher(cache, clock, sts)
    credentials = WebIdentityCredentials(refresher)
    assert credentials.get_frozen_credentials().access_key == "ASIAKEY0001"
    held = refresher.latest
    assert held is not None
    stop = POLICY.stop_seconds(held)
    sts.error = sts_error("ThrottlingException", "Rate exceeded")
    clock.advance(held.seconds_left(clock()) - stop - 0.5)
    assert credentials.get_frozen_credentials().access_key == "ASIAKEY0001"
    clock.advance(0.9)  # now 0.4 s past the stop point
    assert not POLICY.usable(held, clock())
    with pytest.raises(StsError):
        credentials.get_frozen_credentials()


def test_botocore_credentials_refresh_through_the_refresher(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    refresher = make_refresher(cache, clock, sts)
    credentials = WebIdentityCredentials(refresher)
    assert len(sts.calls) == 0, "deferred: nothing happens before first use"
    assert credentials.get_frozen_credentials().access_key == "ASIAKEY0001"
    assert credentials.web_identity.audience == "sts.amazonaws.com"
    for _ in range(20):
        clock.advance(60)
        credentials.get_frozen_credentials()
    assert len(sts.calls) == 1  # 20 minutes in: no refresh yet (earliest at 37.5 min)
    clock.advance(3600 - 675 + 1 - 20 * 60)
    assert credentials.get_frozen_credentials().access_key == "ASIAKEY0002"
    assert len(sts.calls) == 2
    sts.error = sts_error("ThrottlingException", "Rate exceeded")
    clock.advance(3600 - 60 - 10)  # 10 s before the new credentials' stop point
    assert credentials.get_frozen_credentials().access_key == "ASIAKEY0002"
    clock.advance(11)
    with pytest.raises(StsError):
        credentials.get_frozen_credentials()


def test_processes_of_a_host_share_the_refresh_time_drawn_by_the_writer(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    writer = make_refresher(cache, clock, sts, seed=1)
    writer()
    (entry_path,) = cache.entries()
    stored = entry_path[1]
    assert stored is not None
    assert stored.refresh_at is not None
    for seed in (2, 3, 4):
        clear_memory_state()  # another process on the host
        reader = make_refresher(cache, clock, sts, seed=seed)
        reader()
        assert reader.latest is not None
        assert reader.latest.access_key_id == stored.result.access_key_id
        state_refresh = expiry_of(reader()) - timedelta(seconds=2)
        assert abs((state_refresh - stored.refresh_at).total_seconds()) < 1e-3
    assert len(sts.calls) == 1


# -- issue 11: trust rule, static stability, no stalls, skew, expired tokens ---------------------


def test_cache_list_and_inspect_judge_entries_like_the_refresher(
    tmp_path: Path, clock: FakeClock, sts: FakeSts
) -> None:
    from webid_provider._cli._inspect import entry_state

    cache = CredentialCache(tmp_path / "cache")
    make_refresher(cache, clock, sts, seed=1)()
    ((_, entry),) = cache.entries()
    assert entry is not None
    assert entry.refresh_at is not None
    for offset, expected in ((-1.0, "fresh"), (1.0, "refresh due")):
        clear_memory_state()  # a new process
        clock.now = entry.refresh_at + timedelta(seconds=offset)  # type: ignore[attr-defined]
        state = entry_state(entry, clock(), POLICY)
        before = len(sts.calls)
        make_refresher(cache, clock, sts, seed=5)()
        assert state == expected
        assert (len(sts.calls) > before) == (state == "refresh due")


def test_a_string_token_with_the_same_claims_does_not_get_cached_credentials(
    clock: FakeClock, sts: FakeSts
) -> None:
    """A forged token carrying a victim's iss/sub/aud must reach STS, even in memory."""
    memory_only = CredentialCache(None)
    make_refresher(memory_only, clock, sts)()
    forged = jwt.encode(jwt.decode(TOKEN, options={"verify_signature": False}), "x" * 32)
    assert forged != TOKEN
    victim_claims = make_refresher(memory_only, clock, sts, token_source=StringTokenSource(forged))
    victim_claims()
    assert len(sts.calls) == 2
    assert sts.calls[1]["WebIdentityToken"] == forged
    # The exact same token string is still served from memory.
    make_refresher(memory_only, clock, sts)()
    assert len(sts.calls) == 2


def test_a_rotated_token_file_reuses_the_entry_of_its_identity(
    tmp_path: Path, clock: FakeClock, sts: FakeSts
) -> None:
    from webid_provider._tokens import FileTokenSource

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    settings = make_settings(token=TokenSpec(kind="file", file=token_file))
    cache = CredentialCache(tmp_path / "cache")
    make_refresher(cache, clock, sts, settings=settings, token_source=FileTokenSource(token_file))()
    token_file.write_text(make_jwt(iat=1767270000))  # the kubelet rotated it: same identity
    clear_memory_state()
    make_refresher(cache, clock, sts, settings=settings, token_source=FileTokenSource(token_file))()
    assert len(sts.calls) == 1


def test_a_new_process_serves_a_due_disk_entry_when_sts_fails(
    tmp_path: Path, clock: FakeClock, sts: FakeSts
) -> None:
    make_refresher(CredentialCache(tmp_path / "cache"), clock, sts)()
    clear_memory_state()  # a new process...
    clock.advance(3600 - 300)  # ...finds the entry past its refresh time, still usable
    sts.error = sts_error("ServiceUnavailable", "", status=503)
    refresher = make_refresher(CredentialCache(tmp_path / "cache"), clock, sts, seed=8)
    metadata = refresher()
    assert metadata["access_key"] == "ASIAKEY0001"
    assert len(sts.calls) == 2, "one attempt, no hard retries while usable credentials exist"
    # The same back-off as for credentials held in memory: no call on the next request.
    refresher()
    assert len(sts.calls) == 2
    assert refresher.get().access_key_id == "ASIAKEY0001"


def test_get_refreshes_credentials_with_less_than_the_margin_left(
    tmp_path: Path, clock: FakeClock, sts: FakeSts
) -> None:
    refresher = make_refresher(CredentialCache(tmp_path / "cache"), clock, sts)
    assert refresher.get(min_remaining_seconds=1500).access_key_id == "ASIAKEY0001"
    clock.advance(3600 - 1200)  # 20 minutes left: fresh for us, too short for the consumer
    assert refresher.get().access_key_id == "ASIAKEY0001"
    assert refresher.get(min_remaining_seconds=1500).access_key_id == "ASIAKEY0002"
    assert len(sts.calls) == 2
    # Another one-shot process adopts the entry the first one wrote: no call.
    clear_memory_state()
    other = make_refresher(CredentialCache(tmp_path / "cache"), clock, sts, seed=11)
    assert other.get(min_remaining_seconds=1500).access_key_id == "ASIAKEY0002"
    assert len(sts.calls) == 2
    # When the refresh fails, the usable credentials in hand are returned, then backed off.
    clock.advance(3600 - 1200)
    sts.error = sts_error("ServiceUnavailable", "", status=503)
    assert other.get(min_remaining_seconds=1500).access_key_id == "ASIAKEY0002"
    assert other.get(min_remaining_seconds=1500).access_key_id == "ASIAKEY0002"
    assert len(sts.calls) == 3


class BlockingSts(FakeSts):
    """An STS whose answers wait until the test releases them."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.release = threading.Event()
        self.entered = threading.Event()

    def assume_role_with_web_identity(self, **params: Any) -> dict[str, Any]:
        if self.calls:  # the first answer is immediate; later ones wait
            self.entered.set()
            assert self.release.wait(10), "the test never released STS"
        return super().assume_role_with_web_identity(**params)


@pytest.mark.timeout(30)
def test_a_slow_refresh_never_blocks_callers_with_usable_credentials(
    tmp_path: Path, clock: FakeClock
) -> None:
    sts = BlockingSts(clock)
    refresher = WebIdentityRefresher(
        make_settings(),
        StringTokenSource(TOKEN),
        sts_client=lambda: sts,
        endpoint="e",
        cache=CredentialCache(tmp_path / "cache"),
        clock=clock,
        rng=random.Random(1),
    )  # the default runner: a background thread
    credentials = WebIdentityCredentials(refresher)
    assert credentials.get_frozen_credentials().access_key == "ASIAKEY0001"
    clock.advance(3600 - 600)  # due, with 10 minutes of validity in hand
    slowest = 0.0
    for _ in range(50):
        started = time.monotonic()
        assert credentials.get_frozen_credentials().access_key == "ASIAKEY0001"
        slowest = max(slowest, time.monotonic() - started)
        clock.advance(0.5)
    assert sts.entered.wait(5), "a background refresh was started"
    assert slowest < 0.5, f"a caller waited {slowest:.2f} s behind the refresh"
    sts.release.set()
    deadline = time.monotonic() + 10
    while credentials.get_frozen_credentials().access_key == "ASIAKEY0001":
        assert time.monotonic() < deadline, "the background refresh never landed"
        clock.advance(1.0)
        time.sleep(0.01)
    assert credentials.get_frozen_credentials().access_key == "ASIAKEY0002"
    assert len(sts.calls) == 2


def test_credentials_dead_on_arrival_are_a_clock_skew_error(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    sts.lifetime = -7200  # STS's clock is two hours behind ours
    refresher = make_refresher(cache, clock, sts)
    with pytest.raises(ClockSkewError) as info:
        refresher()
    assert "clock" in str(info.value)
    assert isinstance(info.value, BotoCoreError)
    for _ in range(20):  # many requests: the error is replayed, STS is not asked again
        clock.advance(0.2)
        with pytest.raises(ClockSkewError):
            refresher()
    assert len(sts.calls) == 1
    assert cache.entries() == [], "unusable credentials are never cached"


def test_clock_skew_is_estimated_from_sts_date_header(clock: FakeClock) -> None:
    from webid_provider._sts import StsRequest, assume_role_with_web_identity

    class SkewedSts(FakeSts):
        def assume_role_with_web_identity(self, **params: Any) -> dict[str, Any]:
            response = super().assume_role_with_web_identity(**params)
            server_now = self.clock() - timedelta(hours=2)
            response["Credentials"]["Expiration"] = server_now + timedelta(hours=1)
            response["ResponseMetadata"]["HTTPHeaders"] = {
                "date": server_now.strftime("%a, %d %b %Y %H:%M:%S GMT")
            }
            return response

    request = StsRequest(role_arn=ROLE, role_session_name="s", token=TOKEN)
    with pytest.raises(ClockSkewError) as info:
        assume_role_with_web_identity(SkewedSts(clock), request, clock=clock, min_seconds_left=1)
    assert info.value.skew_seconds == pytest.approx(7200, abs=1)
    assert "ahead of STS's by about 7200 s" in str(info.value)
    assert TOKEN not in str(info.value)


def test_an_expired_jwt_fails_locally_without_calling_sts(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    expired = make_jwt(exp=int(clock().timestamp()) - 400)
    refresher = make_refresher(cache, clock, sts, token_source=StringTokenSource(expired))
    with pytest.raises(TokenSourceError) as info:
        refresher()
    assert "expired at" in str(info.value)
    assert expired not in str(info.value)
    assert sts.calls == []


def test_a_jwt_just_past_its_exp_by_a_fast_local_clock_still_reaches_sts(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    # Within the leeway STS decides: a host clock a few minutes fast must not break tokens.
    recent = make_jwt(exp=int(clock().timestamp()) - 120)
    make_refresher(cache, clock, sts, token_source=StringTokenSource(recent))()
    assert len(sts.calls) == 1


def test_expired_token_exception_retries_only_with_a_different_token(
    cache: CredentialCache, clock: FakeClock, sts: FakeSts
) -> None:
    source = SwitchableTokenSource(TOKEN)
    sts.error = sts_error("ExpiredTokenException", "Token expired")
    with pytest.raises(StsError):
        make_refresher(cache, clock, sts, token_source=source)()
    assert len(sts.calls) == 1, "the same token again would fail again"
    assert source.reads == 2


def test_retry_budget_counts_the_time_attempts_take() -> None:
    from webid_provider._sts import call_with_retries

    now = [0.0]

    def slow_failure(token: str) -> WebIdentityResult:
        now[0] += 9.5  # STS answers 503 after 9.5 s
        raise StsError("503", code="ServiceUnavailable", retryable=True)

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(StsError):
        call_with_retries(
            slow_failure,
            lambda: TOKEN,
            policy=RetryPolicy(max_attempts=4, max_total_seconds=20),
            sleep=sleep,
            monotonic=lambda: now[0],
            rng=random.Random(1),
        )
    assert now[0] <= 20, f"blocked {now[0]:.1f} s against a 20 s budget"


@pytest.mark.timeout(30)
def test_a_waiter_adopts_an_entry_written_while_the_lock_is_held(
    tmp_path: Path, clock: FakeClock, sts: FakeSts
) -> None:
    import filelock

    writer = make_refresher(CredentialCache(tmp_path / "writer"), clock, sts)
    writer()
    key = writer.key
    assert key is not None
    ((_, entry),) = CredentialCache(tmp_path / "writer").entries()
    assert entry is not None
    cache = CredentialCache(tmp_path / "cache", lock_timeout_seconds=20)
    holder = filelock.FileLock(str(cache.lock_path(key)))
    holder.acquire()  # another process holds the lock and is stuck
    clear_memory_state()
    timer = threading.Timer(0.5, lambda: cache.write(entry))  # ...after writing the entry
    timer.start()
    try:
        started = time.monotonic()
        assert make_refresher(cache, clock, sts)()["access_key"] == "ASIAKEY0001"
        assert time.monotonic() - started < 5, "waited for the stuck lock instead of the entry"
    finally:
        timer.join()
        holder.release()
    assert len(sts.calls) == 1


def test_get_with_a_margin_no_refresh_can_meet_does_not_refresh_every_time(
    tmp_path: Path, clock: FakeClock
) -> None:
    sts = FakeSts(clock, lifetime=900)
    refresher = make_refresher(CredentialCache(tmp_path / "cache"), clock, sts)
    refresher.get(min_remaining_seconds=900)
    for _ in range(10):
        clock.advance(10)
        refresher.get(min_remaining_seconds=900)
    assert len(sts.calls) == 1
