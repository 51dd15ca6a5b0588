"""The refresh schedule: windows, jitter and backoff, scaled to each credential's lifetime.

botocore's windows are fixed (refresh 15 minutes before expiry, block at 10), so 900 s
sessions call STS on every request (boto/botocore#2189). Here every number derives from the
lifetime of the credentials actually received. The refresh time is drawn once per set of
credentials, with jitter, by the process that obtained them and stored with the cache entry,
so the processes of a host refresh together (one of them calls STS) while hosts spread.

:meth:`RefreshPolicy.phase` is the one judgement of "fresh / refresh due / unusable" that the
refresher, ``inspect`` and ``cache list`` all use. Pure logic: the clock and the random source
are passed in, so tests need no sleeping.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Optional

from webid_provider._result import WebIdentityResult


class Phase(Enum):
    """Where a set of credentials stands, as every part of the package judges it."""

    #: usable, and its refresh time has not come: serve it, no refresh
    FRESH = "fresh"
    #: still usable, but its refresh time has come: serve it while a refresh runs
    REFRESH_DUE = "refresh due"
    #: inside its last stretch before expiry (or past it): never sign with it
    UNUSABLE = "unusable"
    #: past its expiration
    EXPIRED = "expired"


@dataclass(frozen=True)
class RefreshPolicy:
    """The refresh schedule; every number scales with the credential lifetime where it can.

    :param advisory_fraction: refresh this share of the lifetime before expiry...
    :param max_advisory_seconds: ...but never earlier than this before expiry
    :param jitter_fraction: refresh times spread over this share of the window, centred on it
    :param stop_fraction: stop using credentials this share of the lifetime before expiry,
        clamped to ``min_stop_seconds``-``max_stop_seconds``
    :param backoff_base_seconds: first wait after a failed refresh; doubles per failure
    :param backoff_cap_seconds: longest wait between attempts
    :param negative_cache_seconds: how long a permanent error is replayed without calling STS
    """

    advisory_fraction: float = 0.25
    max_advisory_seconds: float = 900.0
    jitter_fraction: float = 0.5
    stop_fraction: float = 0.05
    min_stop_seconds: float = 1.0
    max_stop_seconds: float = 60.0
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 300.0
    negative_cache_seconds: float = 5.0

    def advisory_seconds(self, result: WebIdentityResult) -> float:
        lifetime = max(result.lifetime_seconds, 0.0)
        return min(lifetime * self.advisory_fraction, self.max_advisory_seconds)

    def stop_seconds(self, result: WebIdentityResult) -> float:
        lifetime = max(result.lifetime_seconds, 0.0)
        return min(max(lifetime * self.stop_fraction, self.min_stop_seconds), self.max_stop_seconds)

    def usable(self, result: WebIdentityResult, now: datetime) -> bool:
        """Whether requests may still be signed with ``result``."""
        return result.seconds_left(now) > self.stop_seconds(result)

    def fresh(self, result: WebIdentityResult, now: datetime) -> bool:
        """Whether ``result`` is outside its un-jittered refresh window.

        Only for entries that carry no stored refresh time (written before refresh times were
        stored); everything else goes through :meth:`phase`.
        """
        return result.seconds_left(now) > self.advisory_seconds(result)

    def phase(
        self, result: WebIdentityResult, refresh_at: Optional[datetime], now: datetime
    ) -> Phase:
        """Judge ``result`` at ``now`` against the refresh time stored with it.

        :param refresh_at: the refresh time drawn when the credentials were obtained; ``None``
            falls back to the un-jittered window
        """
        if result.seconds_left(now) <= 0:
            return Phase.EXPIRED
        if not self.usable(result, now):
            return Phase.UNUSABLE
        due = (now >= refresh_at) if refresh_at is not None else not self.fresh(result, now)
        return Phase.REFRESH_DUE if due else Phase.FRESH

    def refresh_at(self, result: WebIdentityResult, now: datetime, rng: random.Random) -> datetime:
        """A jittered refresh instant for ``result``, never in the past.

        The window is the advisory window scaled by a factor drawn evenly around 1 (±half the
        jitter fraction), so on average credentials are used as long as without jitter. It is
        drawn once per credentials and stored with them in the cache, so every process on a
        host refreshes at the same instant (one of them calls STS under the lock) while hosts
        spread over the whole jitter range.
        """
        advisory = self.advisory_seconds(result)
        half = self.jitter_fraction / 2.0
        window = advisory * rng.uniform(1.0 - half, 1.0 + half)
        when = result.expiration - timedelta(seconds=window)
        if when <= now:
            latest = result.expiration - timedelta(seconds=advisory * (1.0 - half))
            span = max((latest - now).total_seconds(), 0.0)
            when = now + timedelta(seconds=rng.uniform(0.0, span))
        return when

    def backoff_seconds(self, failures: int, base_seconds: float) -> float:
        """``base_seconds`` doubled per failure after the first, capped at the back-off cap."""
        return min(self.backoff_cap_seconds, base_seconds * 2.0 ** max(failures - 1, 0))

    def next_attempt_at(
        self, result: WebIdentityResult, failures: int, now: datetime, rng: random.Random
    ) -> datetime:
        """When to try again after ``failures`` failed refreshes, while ``result`` is usable."""
        delay = self.backoff_seconds(failures, self.backoff_base_seconds)
        delay *= rng.uniform(0.5, 1.0)
        # Keep a few attempts in the usable time left: never wait more than a third of it.
        left = result.seconds_left(now) - self.stop_seconds(result)
        delay = min(delay, max(left / 3.0, 0.1))
        return now + timedelta(seconds=delay)
