"""Adversarial pass over the refresh jobs: a job that never finishes, jobs that die hard.

Defects these tests found are fixed; the tests stay as guards. The fake STS answers like botocore's parsed response (as in ``test_refresh.py``).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Protocol

import jwt
import pytest

from webid_provider._cache import CredentialCache
from webid_provider._refresh import WebIdentityRefresher
from webid_provider._refresh_job import run_in_thread
from webid_provider._settings import WebIdentitySettings
from webid_provider._sts import RetryPolicy
from webid_provider._token_spec import TokenSpec
from webid_provider._tokens import CallableTokenSource, StringTokenSource

QUICK = RetryPolicy(max_attempts=1, max_total_seconds=0.1)
ROLE = "arn:aws:iam::123456789012:role/web-role"
TOKEN = jwt.encode(
    {"iss": "https://oidc.example.com", "sub": "system:serviceaccount:ns:app", "aud": "sts"},
    "a-test-only-hmac-key-of-at-least-32-bytes",
    algorithm="HS256",
)


class FakeClock(Protocol):
    """The conftest ``clock`` fixture's interface."""

    def __call__(self) -> datetime: ...

    def advance(self, seconds: float) -> datetime: ...


class FakeSts:
    """Answers like botocore's parsed AssumeRoleWithWebIdentity response; counts calls."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.calls: list[dict[str, Any]] = []

    def assume_role_with_web_identity(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        number = len(self.calls)
        return {
            "Credentials": {
                "AccessKeyId": f"ASIAKEY{number:04d}",
                "SecretAccessKey": f"secret-access-key-{number}",
                "SessionToken": f"session-token-{number}",
                "Expiration": self.clock() + timedelta(seconds=3600),
            },
            "ResponseMetadata": {"RequestId": f"req-{number}", "HTTPStatusCode": 200},
        }


def make_settings(**overrides: Any) -> WebIdentitySettings:
    values: dict[str, Any] = {
        "role_arn": ROLE,
        "token": TokenSpec(kind="string", string=TOKEN),
        "duration_seconds": 3600,
    }
    values.update(overrides)
    return WebIdentitySettings(**values)


class HangOnce:
    """A token callable whose second call (the background refresh's) hangs until released,
    like an IdP client stuck on a dead connection without a timeout; every other call is
    immediate."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = threading.Event()
        self.hanging = threading.Event()

    def __call__(self) -> str:
        self.calls += 1
        if self.calls == 2:
            self.hanging.set()
            self.release.wait(30)
        return TOKEN


@pytest.mark.timeout(30)
def test_a_hung_background_refresh_does_not_wedge_the_key(tmp_path: Path, clock: FakeClock) -> None:
    token = HangOnce()
    sts = FakeSts(clock)
    refresher = WebIdentityRefresher(
        make_settings(token=TokenSpec(kind="callable", function=token)),
        CallableTokenSource(token, "token callable test"),
        sts_client=lambda: sts,
        endpoint="e",
        cache=CredentialCache(tmp_path / "cache", lock_timeout_seconds=0.1),
        clock=clock,
        retry_policy=QUICK,
        run_job=run_in_thread,
    )
    try:
        first = refresher()["access_key"]
        clock.advance(3000)  # refresh due: a background job starts and hangs in the callable
        assert refresher()["access_key"] == first
        assert token.hanging.wait(5)
        clock.advance(590)  # the credentials in hand are past their stop point now

        # The token source answers at once again; a request with nothing usable should get
        # new credentials. Today it waits ~5 s for the hung job and raises.
        assert refresher()["access_key"] != first
        assert len(sts.calls) == 2
    finally:
        token.release.set()


class RaisingSts(FakeSts):
    """Raises the queued BaseException once, then answers normally."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.queued: list[BaseException] = []

    def assume_role_with_web_identity(self, **params: Any) -> dict[str, Any]:
        if self.queued:
            self.calls.append(params)
            raise self.queued.pop(0)
        return super().assume_role_with_web_identity(**params)


@pytest.mark.timeout(30)
def test_keyboard_interrupt_in_an_inline_refresh_leaves_no_stuck_job(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Held: the interrupt reaches the caller and the next call refreshes normally."""
    sts = RaisingSts(clock)
    refresher = WebIdentityRefresher(
        make_settings(),
        StringTokenSource(TOKEN),
        sts_client=lambda: sts,
        endpoint="e",
        cache=CredentialCache(tmp_path / "cache", lock_timeout_seconds=0.1),
        clock=clock,
        retry_policy=QUICK,
        run_job=run_in_thread,
    )
    sts.queued.append(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        refresher()
    assert refresher()["access_key"] == "ASIAKEY0002"
