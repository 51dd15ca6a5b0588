"""Credentials for consumers that refresh on their own schedule: ``credential_process`` and the
container endpoint.

Both hand credentials to an SDK that decides by itself when to ask again (botocore: once fewer
than 15 minutes are left). :func:`credentials_with_margin` is the one place that decides what
they hand out: credentials with at least the consumer margin left when a refresh can provide
them (:mod:`webid_provider.cli._margin`: the margin plus jitter, none for sessions too short to
outlive it), else the usable credentials in hand. The refresh itself is
:meth:`~webid_provider.refresh.WebIdentityRefresher.get`: one STS call per host under the file
lock, a newer entry another process wrote adopted instead, static stability on failure.

What this layer adds: the margin rules above, and, for the long-running endpoint, a back-off
between margin refreshes that could not give the margin (STS down, or a session that cannot
outlive it): without it every consumer request during an STS outage, which the consumer makes
because the credentials it holds are inside its window, would make one STS attempt.

Security: nothing here logs credentials or the token.
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
from webid_provider.policy import utc_now
from webid_provider.provider import WebIdentityProvider
from webid_provider.refresh import Clock, WebIdentityRefresher
from webid_provider.result import WebIdentityResult
from webid_provider.settings import WebIdentitySettings

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


@dataclass
class CredentialSupply:
    """One resolved configuration and its refresher, shared by every hand-out of a command.

    Thread-safe: the refresher is; the margin back-off has its own lock.
    """

    session: Any
    settings: WebIdentitySettings
    refresher: WebIdentityRefresher
    clock: Clock = utc_now
    rng: random.Random = field(default_factory=random.Random)
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

    :raises WebIdProviderError: only when no usable credentials can be had
    """
    started = supply.clock()
    margin = effective_margin(supply.settings.duration_seconds, min_remaining_seconds)
    needed = jittered(margin, supply.rng) if margin > 0 else 0.0
    with supply._margin_lock:
        if supply._margin_next_attempt_at is not None and started < supply._margin_next_attempt_at:
            needed = 0.0  # backing off: what the refresh policy alone would hand out
    # Always a positive minimum: get(0) may leave a due refresh to a background thread, which a
    # one-shot command would abandon at exit; any positive margin refreshes now instead.
    result = supply.refresher.get(min_remaining_seconds=max(needed, _ONE_SHOT_SECONDS))
    if needed > 0:
        _record_margin_outcome(supply, result, needed, started)
    return result


#: the smallest margin asked of the refresher (see :func:`credentials_with_margin`)
_ONE_SHOT_SECONDS = 0.001


def _record_margin_outcome(
    supply: CredentialSupply, result: WebIdentityResult, needed: float, started: datetime
) -> None:
    """Back off after a margin refresh that did not give the margin; reset after one that did."""
    now = supply.clock()
    short = result.seconds_left(now) < needed and result.obtained_at < started
    with supply._margin_lock:
        if not short:
            supply._margin_failures = 0
            supply._margin_next_attempt_at = None
            return
        supply._margin_failures += 1
        delay = min(MAX_MARGIN_BACKOFF_SECONDS, 2.0 ** (supply._margin_failures - 1))
        supply._margin_next_attempt_at = now + timedelta(
            seconds=delay * supply.rng.uniform(0.5, 1.0)
        )
    logger.info(
        "credentials valid until %s are inside the consumer margin and no refresh gave more; "
        "handing them out",
        result.expiration.isoformat(),
    )
