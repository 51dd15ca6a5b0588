"""Credentials for consumers that refresh on their own schedule: ``credential_process`` and the
container endpoint.

Both hand credentials to an SDK that decides by itself when to ask again (botocore: once fewer
than 15 minutes are left). :func:`credentials_with_margin` is the one place that decides what
they hand out: credentials with at least the consumer margin left when a refresh can provide
them (:mod:`webid_provider._margin`: the margin plus jitter, none for sessions too short to
outlive it), else the usable credentials in hand. The refresh itself is
:meth:`~webid_provider._refresh.WebIdentityRefresher.get`: one STS call per host under the file
lock, a newer entry another process wrote adopted instead, static stability on failure.

The margin rule, its jitter and the back-off after a refresh that could not give the margin
(STS down, or a session that cannot outlive it) are the refresher's; this layer only resolves
the settings once per command and hands the margin over.

Security: nothing here logs credentials or the token.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from webid_provider._cli._common import resolve_settings
from webid_provider._clock import Clock, utc_now
from webid_provider._margin import DEFAULT_MIN_REMAINING_SECONDS, parse_min_remaining
from webid_provider._refresh import WebIdentityRefresher
from webid_provider._result import WebIdentityResult
from webid_provider._settings import WebIdentitySettings


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

    Thread-safe: the refresher is.
    """

    session: Any
    settings: WebIdentitySettings
    refresher: WebIdentityRefresher


def build_supply(
    args: argparse.Namespace, *, session: Any = None, clock: Clock = utc_now
) -> CredentialSupply:
    """Resolve the command's settings (no STS call, no token read).

    :raises UsageError: when nothing configures web identity
    :raises ConfigurationError: for invalid settings
    """
    session, provider, settings = resolve_settings(args, session=session, clock=clock)
    return CredentialSupply(
        session=session,
        settings=settings,
        refresher=provider.refresher(settings),
    )


def credentials_with_margin(
    supply: CredentialSupply, min_remaining_seconds: float
) -> WebIdentityResult:
    """Credentials with at least the consumer margin left when a refresh can provide them.

    The refresher (:meth:`~webid_provider._refresh.WebIdentityRefresher.get`) applies the margin:
    plus jitter drawn per hand-out, none for sessions too short to outlive it
    (:func:`~webid_provider._margin.effective_margin`), one STS call per host under the file
    lock, an entry another process wrote adopted instead, the usable credentials in hand (and
    the usual back-off) when the refresh fails or cannot give more.

    :raises WebIdProviderError: only when no usable credentials can be had
    """
    return supply.refresher.get(min_remaining_seconds=min_remaining_seconds)
