"""The consumer margin: what ``credential-process`` and the endpoint hand out, on a fake clock.

STS answers come through botocore's ``before-send`` event (no socket), minted at the fake
clock's time, so lifetimes and refresh times are exact and nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Protocol

import botocore.session
import jwt
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from webid_provider._cache import CacheEntry, CredentialCache
from webid_provider._cli import _main
from webid_provider._cli._consumer import CredentialSupply, build_supply, credentials_with_margin
from webid_provider._errors import StsError
from webid_provider._result import WebIdentityResult

ROLE = "arn:aws:iam::123456789012:role/consumer"


class FakeClock(Protocol):
    """The conftest ``clock`` fixture's interface."""

    def __call__(self) -> datetime: ...

    def advance(self, seconds: float) -> datetime: ...


MARGIN = 900.0

SUCCESS = """<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>{key}</AccessKeyId>
      <SecretAccessKey>secret</SecretAccessKey>
      <SessionToken>token</SessionToken>
      <Expiration>{expiration}</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/consumer/s</Arn>
      <AssumedRoleId>AROAEXAMPLE:s</AssumedRoleId>
    </AssumedRoleUser>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"""

FAILURE = """<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>{code}</Code><Message>no</Message></Error>
  <RequestId>r-2</RequestId>
</ErrorResponse>"""


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class Sts:
    """Mints credentials of ``lifetime`` seconds at the fake clock's now, or fails on demand."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.lifetimes: list[float] = []
        self.failures: list[tuple[str, int]] = []
        self.calls = 0

    def handler(self, request: Any, **_: Any) -> AWSResponse:
        self.calls += 1
        if self.failures:
            code, status = self.failures.pop(0)
            body = FAILURE.format(code=code)
        else:
            lifetime = self.lifetimes.pop(0) if self.lifetimes else 3600
            expiration = self.clock() + timedelta(seconds=lifetime)
            status = 200
            body = SUCCESS.format(
                key=f"ASIACALL{self.calls:04d}",
                expiration=expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        return AWSResponse(request.url, status, HTTPHeaders(), _Raw(body.encode("utf-8")))

    def session(self) -> Any:
        session = botocore.session.Session()
        session.set_config_variable("region", "us-east-1")
        session.register("before-send.sts.AssumeRoleWithWebIdentity", self.handler)  # type: ignore[arg-type]  # stubs type handlers as returning None
        return session


@pytest.fixture
def sts(clock: FakeClock) -> Sts:
    return Sts(clock)


Supply = Callable[..., CredentialSupply]


@pytest.fixture
def supply(tmp_path: Path, sts: Sts, clock: FakeClock) -> Supply:
    token_file = tmp_path / "token"
    token_file.write_text(jwt.encode({"iss": "https://i", "sub": "s", "aud": "sts"}, "k" * 32))

    def make(*extra: str) -> CredentialSupply:
        argv = ["credential-process", "--role-arn", ROLE, "--web-identity-token-file"]
        argv += [str(token_file), "--cache-dir", str(tmp_path / "cache"), *extra]
        args = _main.build_parser().parse_args(argv)
        return build_supply(args, session=sts.session(), clock=clock)

    return make


def left(result: WebIdentityResult, clock: FakeClock) -> float:
    return result.seconds_left(clock())


def test_credentials_with_time_to_spare_are_handed_out_as_they_are(
    supply: Supply, sts: Sts, clock: FakeClock
) -> None:
    first = credentials_with_margin(supply(), MARGIN)
    clock.advance(20 * 60)
    again = credentials_with_margin(supply(), MARGIN)
    assert again == first
    assert sts.calls == 1


def test_inside_the_margin_one_refresh_gives_a_full_session(
    supply: Supply, sts: Sts, clock: FakeClock
) -> None:
    first = credentials_with_margin(supply(), MARGIN)
    clock.advance(46 * 60)  # 14 minutes left: botocore would ask again on every request
    refreshed = credentials_with_margin(supply(), MARGIN)
    assert refreshed.access_key_id != first.access_key_id
    assert left(refreshed, clock) == 3600
    assert sts.calls == 2
    assert credentials_with_margin(supply(), MARGIN) == refreshed  # and then it holds
    assert sts.calls == 2


def test_the_jitter_moves_the_threshold_above_the_margin(
    supply: Supply, sts: Sts, clock: FakeClock
) -> None:
    credentials_with_margin(supply(), MARGIN)
    clock.advance(3600 - 15.5 * 60)  # 15.5 min left: more than 15, less than 15 + 7 %
    credentials_with_margin(supply(), MARGIN)
    assert sts.calls == 2


def test_credentials_sts_just_issued_are_not_refreshed_again(
    supply: Supply, sts: Sts, clock: FakeClock
) -> None:
    sts.lifetimes.append(14 * 60)
    result = credentials_with_margin(supply(), MARGIN)
    assert left(result, clock) == 14 * 60
    assert sts.calls == 1


@pytest.mark.parametrize(("duration", "calls"), [("900", 1), ("1800", 1), ("1801", 2)])
def test_sessions_too_short_for_the_margin_are_handed_out(
    supply: Supply, sts: Sts, clock: FakeClock, duration: str, calls: int
) -> None:
    sts.lifetimes.append(int(duration))
    made = supply("--duration-seconds", duration)
    credentials_with_margin(made, MARGIN)
    clock.advance(int(duration) - 14 * 60)  # 14 minutes left
    credentials_with_margin(made, MARGIN)
    assert sts.calls == calls


@pytest.mark.parametrize(("minimum", "calls"), [(1500.0, 2), (0.0, 1)])
def test_the_margin_is_what_refreshes_here(
    supply: Supply, sts: Sts, clock: FakeClock, minimum: float, calls: int
) -> None:
    """20 minutes left: before the refresh policy's own time (11-19 min before expiry), inside
    a 25-minute margin. A margin of 0 turns the consumer margin off."""
    made = supply()
    credentials_with_margin(made, minimum)
    clock.advance(40 * 60)
    result = credentials_with_margin(made, minimum)
    assert sts.calls == calls
    assert left(result, clock) == (3600 if calls == 2 else 20 * 60)


def test_an_entry_another_process_refreshed_is_adopted(
    supply: Supply, sts: Sts, clock: FakeClock, tmp_path: Path
) -> None:
    made = supply()
    first = credentials_with_margin(made, MARGIN)
    clock.advance(46 * 60)
    newer = WebIdentityResult(
        access_key_id="ASIAOTHERPROCESS",
        secret_access_key="s",
        session_token="t",
        expiration=clock() + timedelta(hours=1),
        obtained_at=clock(),
    )
    key = made.refresher.key
    assert key is not None
    CredentialCache(tmp_path / "cache").write(
        CacheEntry(key, newer, ROLE, "s", refresh_at=clock() + timedelta(minutes=45))
    )
    result = credentials_with_margin(made, MARGIN)
    assert result.access_key_id == "ASIAOTHERPROCESS" != first.access_key_id
    assert sts.calls == 1


def test_a_failed_margin_refresh_keeps_the_credentials_and_backs_off(
    supply: Supply, sts: Sts, clock: FakeClock
) -> None:
    made = supply()
    first = credentials_with_margin(made, MARGIN)
    clock.advance(46 * 60)
    sts.failures += [("ServiceUnavailable", 503)] * 20
    # The refresh policy's own time (41-49 min in, drawn at random) may or may not have come
    # too, so one or two attempts fail at this instant; after that both back off.
    assert [credentials_with_margin(made, MARGIN) for _ in range(5)] == [first] * 5
    assert 2 <= sts.calls <= 3
    attempts = sts.calls
    clock.advance(0.1)
    assert [credentials_with_margin(made, MARGIN) for _ in range(5)] == [first] * 5
    assert sts.calls == attempts  # backing off: no attempt per request
    sts.failures.clear()
    clock.advance(10)  # past every back-off so far (at most 8 s after three failures)
    recovered = credentials_with_margin(made, MARGIN)
    assert left(recovered, clock) > 3599  # a new one-hour session (whole seconds on the wire)


def test_a_new_process_hands_out_a_usable_entry_when_sts_fails(
    supply: Supply, sts: Sts, clock: FakeClock
) -> None:
    from webid_provider._refresh_state import clear_memory_state

    first = credentials_with_margin(supply(), MARGIN)
    clear_memory_state()  # a new process
    clock.advance(50 * 60)  # past the refresh time, 10 minutes left
    sts.failures.append(("AccessDenied", 403))
    result = credentials_with_margin(supply(), MARGIN)
    assert result == first
    assert sts.calls == 2


def test_nothing_usable_left_raises(supply: Supply, sts: Sts, clock: FakeClock) -> None:
    credentials_with_margin(supply(), MARGIN)
    clock.advance(3600 - 30)  # inside the last 5 %: not usable any more
    sts.failures.append(("AccessDenied", 403))
    with pytest.raises(StsError, match="AccessDenied"):
        credentials_with_margin(supply(), MARGIN)
