"""Credentials for consumers that refresh on their own schedule: ``credential_process`` and the
container endpoint.

Both hand credentials to an SDK that decides by itself when to ask again (botocore: once fewer
than 15 minutes are left). :func:`credentials_with_margin` is the one place that decides what
they hand out: credentials with at least the consumer margin left when a refresh can provide
them (:mod:`webid_provider.cli._margin`), else the usable credentials in hand.

Interim implementation (issue 13): the refresher (:mod:`webid_provider.refresh`) has no notion
of a consumer margin yet, so this module asks it twice when needed: first as every other
process does (memory, disk, lock, STS), then, if the answer has less than the margin left, once
more through a refresher whose policy counts credentials with less than the margin as unusable
and which makes a single STS attempt. A newer entry another process wrote is adopted instead
of calling STS; a failed margin refresh keeps the credentials in hand (static stability) and
backs off. A new process holds nothing in memory, and today's refresher then raises when its
refresh fails even though the cache entry is still usable, so the entry is read back and
handed out in that case. When the refresher gains ``get(min_remaining_seconds=...)``,
:func:`credentials_with_margin` becomes that one call.

Security: nothing here logs credentials or the token; failures are logged by class and
message, which the package's exceptions keep free of secrets.
"""

from __future__ import annotations

import argparse
import logging
import random
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Optional

from webid_provider.cli._common import (
    UsageError,
    new_session,
    no_settings_message,
    provider_options,
)
from webid_provider.cli._margin import (
    DEFAULT_MIN_REMAINING_SECONDS,
    effective_margin,
    jittered,
    parse_min_remaining,
)
from webid_provider.errors import ConfigurationError, StsError, TokenSourceError, WebIdProviderError
from webid_provider.policy import RefreshPolicy, utc_now
from webid_provider.provider import WebIdentityProvider
from webid_provider.refresh import Clock, WebIdentityRefresher
from webid_provider.result import WebIdentityResult
from webid_provider.settings import WebIdentitySettings
from webid_provider.sts import SINGLE_ATTEMPT

logger = logging.getLogger(__name__)

#: longest wait between two margin refreshes after failures (the credentials in hand serve)
MAX_MARGIN_BACKOFF_SECONDS = 60.0


def add_min_remaining_option(parser: argparse.ArgumentParser) -> None:
    """``--min-remaining SECONDS``: the consumer margin."""
    parser.add_argument(
        "--min-remaining",
        type=_min_remaining,
        default=DEFAULT_MIN_REMAINING_SECONDS,
        metavar="SECONDS",
        help=(
            "hand out credentials with at least this long left (plus 7-20%% jitter), "
            "refreshing first when needed; default 900, botocore's refresh window; 0 turns it off"
        ),
    )


def _min_remaining(value: str) -> float:
    try:
        return parse_min_remaining(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@dataclass(frozen=True)
class _MarginPolicy(RefreshPolicy):
    """The default schedule, except that credentials with less than the margin left are not
    usable: the refresher then adopts a newer entry or calls STS instead of serving them."""

    min_remaining_seconds: float = 0.0

    def usable(self, result: WebIdentityResult, now: datetime) -> bool:
        return (
            super().usable(result, now) and result.seconds_left(now) >= self.min_remaining_seconds
        )


@dataclass
class CredentialSupply:
    """One resolved configuration and its refresher, shared by every hand-out of a command.

    Thread-safe: calls of the shared refresher are serialised, and the margin refresh and its
    back-off have their own lock.
    """

    session: Any
    options: dict[str, Any]
    settings: WebIdentitySettings
    refresher: WebIdentityRefresher
    clock: Clock = utc_now
    rng: random.Random = field(default_factory=random.Random)
    #: serialises calls of ``refresher``, whose ``latest`` is per object, not per call
    _refresh_lock: threading.Lock = field(default_factory=threading.Lock)
    _margin_lock: threading.Lock = field(default_factory=threading.Lock)
    _margin_failures: int = 0
    _margin_next_attempt_at: Optional[datetime] = None


def build_supply(
    args: argparse.Namespace, *, session: Any = None, clock: Clock = utc_now
) -> CredentialSupply:
    """Resolve the command's settings (no STS call, no token read).

    :raises UsageError: when nothing configures web identity
    :raises ConfigurationError: for invalid settings
    """
    options = provider_options(args)
    if session is None:
        session = new_session(args.profile, args.region)
    provider = WebIdentityProvider(session, options, clock=clock)
    settings = provider.resolve()
    if settings is None:
        raise UsageError(no_settings_message(args.profile))
    return CredentialSupply(
        session=session,
        options=options,
        settings=settings,
        refresher=provider.refresher(settings),
        clock=clock,
    )


def credentials_with_margin(
    supply: CredentialSupply, min_remaining_seconds: float
) -> WebIdentityResult:
    """Credentials with at least the consumer margin left when a refresh can provide them.

    The margin is ``min_remaining_seconds`` plus jitter, or nothing when the settings' sessions
    are too short to outlive it (:func:`~webid_provider.cli._margin.effective_margin`). One STS
    call per host under the file lock; an entry another process wrote with enough time left is
    adopted instead. If that refresh fails, the usable credentials in hand are returned.

    To become ``supply.refresher.get(min_remaining_seconds=...)`` once the refresher offers it.

    :raises WebIdProviderError: only when no usable credentials can be had
    """
    started = supply.clock()
    result = _held_or_cached(supply)
    margin = effective_margin(supply.settings.duration_seconds, min_remaining_seconds)
    if margin <= 0:
        return result
    needed = jittered(margin, supply.rng)
    now = supply.clock()
    if result.seconds_left(now) >= needed:
        return result
    if result.obtained_at >= started:
        # STS issued these during this very call: asking again at once would not get more.
        return result
    if not supply._margin_lock.acquire(blocking=False):
        return result  # another thread is refreshing; never make a caller wait meanwhile
    try:
        if supply._margin_next_attempt_at is not None and now < supply._margin_next_attempt_at:
            return result
        try:
            better = _call(_margin_refresher(supply, needed), supply.clock)
        except (StsError, TokenSourceError, ConfigurationError) as exc:
            supply._margin_failures += 1
            delay = min(MAX_MARGIN_BACKOFF_SECONDS, 2.0 ** (supply._margin_failures - 1))
            supply._margin_next_attempt_at = supply.clock() + timedelta(
                seconds=delay * supply.rng.uniform(0.5, 1.0)
            )
            logger.warning(
                "refreshing credentials for the consumer margin failed (%s); still handing out "
                "credentials valid until %s",
                exc,
                result.expiration.isoformat(),
            )
            return result
        supply._margin_failures = 0
        supply._margin_next_attempt_at = None
        return better if better.expiration > result.expiration else result
    finally:
        supply._margin_lock.release()


def _margin_refresher(supply: CredentialSupply, needed_seconds: float) -> WebIdentityRefresher:
    provider = WebIdentityProvider(
        supply.session,
        supply.options,
        clock=supply.clock,
        policy=_MarginPolicy(min_remaining_seconds=needed_seconds),
        retry_policy=SINGLE_ATTEMPT,
    )
    return provider.refresher(supply.settings)


def _held_or_cached(supply: CredentialSupply) -> WebIdentityResult:
    """The refresher's answer; if its refresh failed, a cache entry that is still usable."""
    with supply._refresh_lock:
        try:
            return _call(supply.refresher, supply.clock)
        except (StsError, TokenSourceError) as exc:
            key = supply.refresher.key
            now = supply.clock()
            entry = supply.refresher.cache.read(key, now=now) if key is not None else None
            if entry is None or not supply.refresher.policy.usable(entry.result, now):
                raise
            logger.warning(
                "refreshing credentials failed (%s); handing out cached credentials valid until %s",
                exc,
                entry.result.expiration.isoformat(),
            )
            return entry.result


def _call(refresher: WebIdentityRefresher, clock: Clock) -> WebIdentityResult:
    refresher()
    result = refresher.latest
    assert result is not None  # the refresher raised otherwise
    if result.seconds_left(clock()) <= 0:
        raise WebIdProviderError(
            f"fresh credentials are still expired by this host's clock (they expire at "
            f"{result.expiration.isoformat()}); check the clock against STS's (Expiration is in "
            "UTC)"
        )
    return result
