"""What a failed refresh leaves behind: back-off while usable credentials are held, else a
replayed error.

README, "Refresh and failure behaviour": a failed refresh keeps serving the usable credentials
in hand and backs off exponentially (:meth:`~webid_provider._policy.RefreshPolicy.
next_attempt_at`), so an outage costs a few STS calls, not one per request. With nothing
usable held, an error that retrying cannot fix (permanent, an expired token STS refused, a
skewed clock), or a transient one after a full round of retries, is replayed for a few seconds
to every caller with the same token, so that many threads do not repeat a doomed call.

Security: the replayed error names the STS code and request id; the token is kept only as a
hash, to match callers with the same token.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from typing import Optional

from webid_provider._cache_key import token_hash
from webid_provider._errors import ClockSkewError, StsError, WebIdProviderError, with_note
from webid_provider._policy import RefreshPolicy
from webid_provider._refresh_state import KeyState

logger = logging.getLogger(__name__)


class StuckRefresh(WebIdProviderError):
    """A caller waited its whole bound for another caller's refresh (internal)."""


def is_doomed(exc: BaseException) -> bool:
    """Whether the same request would fail the same way however often it is retried."""
    if isinstance(exc, ClockSkewError):
        return True
    if isinstance(exc, StsError) and exc.code == "ExpiredTokenException":
        return True  # raised after a re-read gave the same token: it will not change by itself
    return isinstance(exc, StsError) and not exc.retryable


def record_failure(
    state: KeyState,
    exc: Exception,
    *,
    token: Optional[str],
    hard: bool,
    now: datetime,
    policy: RefreshPolicy,
    rng: random.Random,
    role_arn: str,
) -> None:
    """Count a failed refresh: back off while usable credentials are held; else, for a doomed
    error or one a retrying refresh (``hard``) gave up on, replay it for a few seconds to every
    caller with the same token. A single background attempt that failed is never replayed.

    :param token: the token the refresh used (``None``: the token could not be read)
    """
    with state.lock:
        state.failures += 1
        state.last_error, state.last_error_at = exc, now
        held = state.result
        if held is not None and policy.usable(held, now):
            state.next_attempt_at = policy.next_attempt_at(held, state.failures, now, rng)
            logger.warning(
                "refreshing credentials for %s failed (%s); still serving credentials valid "
                "until %s; next attempt at %s",
                role_arn,
                exc,
                held.expiration.isoformat(),
                state.next_attempt_at.isoformat(),
            )
            return
        if token is None or not (hard or is_doomed(exc)):
            return
        seconds = policy.negative_cache_seconds * rng.uniform(0.5, 1.0)
        if isinstance(exc, ClockSkewError):
            # A clock does not fix itself in seconds: back off as for failed refreshes.
            backoff = policy.backoff_seconds(state.failures, policy.negative_cache_seconds)
            seconds = max(seconds, backoff)
        state.negative_until = now + timedelta(seconds=seconds)
        state.negative_token_hash = token_hash(token)


def replay_negative(state: KeyState, token: str, now: datetime) -> None:
    """Raise the last error again, without calling STS, while it is replayed for ``token``;
    caller holds ``state.lock``."""
    error = state.last_error
    if (
        state.negative_until is None
        or now >= state.negative_until
        or state.negative_token_hash != token_hash(token)
        or not isinstance(error, (StsError, ClockSkewError))
    ):
        return
    failed_at = state.last_error_at.isoformat() if state.last_error_at else "just now"
    note = (
        f"(repeated without calling STS: the same request failed at {failed_at}; "
        f"next attempt after {state.negative_until.isoformat()})"
    )
    raise with_note(error, note) from error
