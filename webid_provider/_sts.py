"""The AssumeRoleWithWebIdentity call: request, result, and classified retries.

One call (:func:`assume_role_with_web_identity`) sends the request through an unsigned,
single-attempt client (:mod:`webid_provider._sts_client`) and turns any failure into an
:class:`~webid_provider._errors.StsError` (:mod:`webid_provider._sts_errors`). Retries are ours
alone (:func:`call_with_retries`): transient errors with capped exponential backoff and full
jitter within a bounded total time, one token re-read after ``ExpiredTokenException``,
permanent errors at once. Credentials that this host's clock already considers unusable are a
:class:`~webid_provider._errors.ClockSkewError`, estimated from STS's ``Date`` header.

Security: the request carries the token; no request dict, response body or botocore exception
text containing it is logged or put in an exception. botocore's own DEBUG records of the call
(and of every request later signed with the result) are redacted by
:mod:`webid_provider._redaction`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Optional

from webid_provider._clock import Clock
from webid_provider._errors import ClockSkewError, StsError
from webid_provider._redaction import remember_secrets
from webid_provider._result import WebIdentityResult
from webid_provider._sts_errors import ErrorKind, kind_of, to_sts_error

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StsRequest:
    """The parameters of one call; ``token`` is never shown by ``repr``."""

    role_arn: str
    role_session_name: str
    token: str = field(repr=False)
    duration_seconds: Optional[int] = None
    policy: Optional[str] = None
    policy_arns: tuple[str, ...] = ()
    provider_id: Optional[str] = None

    def to_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "RoleArn": self.role_arn,
            "RoleSessionName": self.role_session_name,
            "WebIdentityToken": self.token,
        }
        if self.duration_seconds is not None:
            params["DurationSeconds"] = self.duration_seconds
        if self.policy is not None:
            params["Policy"] = self.policy
        if self.policy_arns:
            params["PolicyArns"] = [{"arn": arn} for arn in self.policy_arns]
        if self.provider_id is not None:
            params["ProviderId"] = self.provider_id
        return params


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on our retries of transient failures.

    :param max_attempts: attempts in total, the first included
    :param max_total_seconds: no retry starts after this much time has passed
    """

    max_attempts: int = 4
    base_delay_seconds: float = 0.2
    max_delay_seconds: float = 5.0
    max_total_seconds: float = 20.0


SINGLE_ATTEMPT = RetryPolicy(max_attempts=1)


def assume_role_with_web_identity(
    client: Any, request: StsRequest, *, clock: Clock, min_seconds_left: float = 0.0
) -> WebIdentityResult:
    """Make one AssumeRoleWithWebIdentity call.

    :param min_seconds_left: credentials with no more than this left by ``clock`` are refused
        as a clock problem: botocore could never use them
    :raises StsError: for any failure, classified via ``retryable``
    :raises ClockSkewError: when the fresh credentials are already unusable by ``clock``
    """
    try:
        response = client.assume_role_with_web_identity(**request.to_params())
    except Exception as exc:
        raise to_sts_error(exc) from exc
    now = clock()
    try:
        result = WebIdentityResult.from_response(response, obtained_at=now)
    except ValueError as exc:
        raise StsError(
            f"AssumeRoleWithWebIdentity returned an unusable response: {exc}",
            code="InvalidResponse",
            retryable=True,
        ) from exc
    if result.seconds_left(now) <= min_seconds_left:
        raise _clock_skew_error(result, response, now, request.duration_seconds)
    remember_secrets(result.session_token, result.secret_access_key)
    return result


def _clock_skew_error(
    result: WebIdentityResult, response: Any, now: datetime, duration_seconds: Optional[int]
) -> ClockSkewError:
    """Explain credentials that are dead on arrival, estimating the skew from STS's clock."""
    skew: Optional[float] = None
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    date = headers.get("date") if isinstance(headers, Mapping) else None
    if isinstance(date, str):
        try:
            skew = (now - parsedate_to_datetime(date)).total_seconds()
        except (TypeError, ValueError):
            skew = None
    if skew is None and duration_seconds is not None:
        issued_at = result.expiration - timedelta(seconds=duration_seconds)
        skew = (now - issued_at).total_seconds()
    left = result.seconds_left(now)
    when = f"{-left:.0f} s ago" if left <= 0 else f"in {left:.0f} s"
    ahead = (
        f"this host's clock is ahead of STS's by about {skew:.0f} s"
        if skew is not None and skew > 0
        else "this host's clock is probably ahead of STS's"
    )
    return ClockSkewError(
        f"STS issued credentials that expire at {result.expiration.isoformat()} ({when} by "
        f"this host's clock), too soon to use: {ahead}; synchronise the clock (NTP)",
        skew_seconds=skew,
    )


def call_with_retries(
    attempt: Callable[[str], WebIdentityResult],
    read_token: Callable[[], str],
    *,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    rng: Optional[random.Random] = None,
    first_token: Optional[str] = None,
) -> WebIdentityResult:
    """Run ``attempt(token)`` with classified retries, within a wall-clock budget.

    The budget counts the attempts themselves, not only the waits between them: no attempt
    starts unless the slowest one so far still fits in ``policy.max_total_seconds``.

    :param attempt: one STS call for a token
    :param read_token: fetches the token; called first (unless ``first_token`` is given), and
        again after ExpiredTokenException — a re-read that returns the very same token ends
        the retries, since STS would refuse it again
    :raises StsError: the last error once retries are exhausted, or a permanent one at once
    :raises TokenSourceError: when the token cannot be read
    """
    rng = rng or random.Random()
    started = monotonic()
    token = first_token if first_token is not None else read_token()
    reread_done = False
    attempts = 0
    slowest = 0.0
    while True:
        attempts += 1
        attempt_started = monotonic()
        try:
            return attempt(token)
        except StsError as error:
            slowest = max(slowest, monotonic() - attempt_started)
            kind = kind_of(error)
            if kind is ErrorKind.REREAD_TOKEN and not reread_done:
                reread_done = True
                fresh = read_token()
                if fresh == token:
                    logger.info("STS says the token expired and the source holds no newer one")
                    raise
                logger.info("STS says the token expired; read a newer one, retrying once")
                token = fresh
                continue
            if kind is not ErrorKind.TRANSIENT or attempts >= policy.max_attempts:
                raise
            delay = rng.uniform(
                0, min(policy.max_delay_seconds, policy.base_delay_seconds * 2 ** (attempts - 1))
            )
            if monotonic() - started + delay + slowest > policy.max_total_seconds:
                raise
            logger.info(
                "STS call failed with %s (attempt %d of %d); retrying in %.2f s",
                error.code,
                attempts,
                policy.max_attempts,
                delay,
            )
            sleep(delay)
