"""The I/O of one refresh: read the entry, take the lock, read it again, call STS, write.

Reading again after taking the file lock is what makes N processes make one STS call
(STYLE.md, "Module layout"): whoever waited for the lock finds the entry its holder wrote, and a
waiter adopts it as soon as it is written rather than when the holder lets go
(:meth:`~webid_provider._cache.CredentialCache.lock`). An entry is adopted only when it is newer
than the credentials in hand, needs no refresh yet and has the caller's margin left.

No in-process state lives here: the refresher (:mod:`webid_provider._refresh`) adopts what a
fetch returns into the key's state.
"""

from __future__ import annotations

import logging
import random
from typing import Any, Callable, Optional

from webid_provider._cache import CacheEntry, CredentialCache
from webid_provider._cache_key import KeyMaterial
from webid_provider._clock import Clock
from webid_provider._policy import Phase, RefreshPolicy
from webid_provider._result import WebIdentityResult
from webid_provider._sts import (
    SINGLE_ATTEMPT,
    RetryPolicy,
    StsRequest,
    assume_role_with_web_identity,
    call_with_retries,
)

logger = logging.getLogger(__name__)


class EntryFetcher:
    """Fetches credentials for a key: from the host cache when another process refreshed them,
    else from STS under the key's file lock. Thread-safe: no state of its own."""

    def __init__(
        self,
        *,
        cache: CredentialCache,
        sts_client: Callable[[], Any],
        read_token: Callable[[], str],
        clock: Clock,
        policy: RefreshPolicy,
        retry_policy: RetryPolicy,
        rng: random.Random,
    ) -> None:
        self._cache = cache
        self._sts_client = sts_client
        self._read_token = read_token
        self._clock = clock
        self._policy = policy
        self._retry_policy = retry_policy
        self._rng = rng

    def fetch(
        self,
        material: KeyMaterial,
        token: str,
        *,
        held: Optional[WebIdentityResult],
        hard: bool,
        min_remaining_seconds: float,
    ) -> tuple[CacheEntry, str]:
        """Newer credentials than ``held`` for ``material``'s key, and where they came from.

        :param hard: retry transient STS errors (nothing usable is held), else one attempt
        :raises StsError: when STS fails (after the retries of a hard refresh)
        :raises TokenSourceError: when a re-read token cannot be had
        :raises ClockSkewError: when STS's credentials are already unusable by our clock
        """
        key = material.key()

        def adoptable() -> Optional[CacheEntry]:
            return self._adoptable(key, held, min_remaining_seconds)

        entry = adoptable()
        if entry is not None:
            return entry, "cache"
        with self._cache.lock(key, stop_waiting=lambda: adoptable() is not None) as locked:
            entry = adoptable()  # written while we waited, or by the lock's last holder
            if entry is not None:
                return entry, "cache (after lock)" if locked else "cache (while waiting)"
            result = self._call_sts(material, token, hard=hard)
            entry = CacheEntry(
                key=key,
                result=result,
                role_arn=material.role_arn,
                role_session_name=material.role_session_name,
                refresh_at=self._policy.refresh_at(result, self._clock(), self._rng),
            )
            written = self._cache.write(entry)
        if written:
            self._cache.sweep_after(entry)
        return entry, "STS"

    def usable_entry(self, key: str) -> Optional[CacheEntry]:
        """The disk entry for ``key`` while it is usable, even past its refresh time (static
        stability: a new process serves it rather than nothing while STS is down)."""
        now = self._clock()
        entry = self._cache.read(key, now=now)
        if entry is None or not self._policy.usable(entry.result, now):
            return None
        return entry

    def _adoptable(
        self, key: str, held: Optional[WebIdentityResult], min_remaining_seconds: float
    ) -> Optional[CacheEntry]:
        """A cache entry newer than ``held`` that needs no refresh yet."""
        now = self._clock()
        entry = self._cache.read(key, now=now)
        if entry is None:
            return None
        if held is not None and entry.result.expiration <= held.expiration:
            return None
        if entry.result.seconds_left(now) < min_remaining_seconds:
            return None
        fresh = self._policy.phase(entry.result, entry.refresh_at, now) is Phase.FRESH
        return entry if fresh else None

    def _call_sts(
        self, material: KeyMaterial, first_token: str, *, hard: bool
    ) -> WebIdentityResult:
        def attempt(token: str) -> WebIdentityResult:
            request = StsRequest(
                role_arn=material.role_arn,
                role_session_name=material.role_session_name,
                token=token,
                duration_seconds=material.duration_seconds,
                policy=material.policy,
                policy_arns=material.policy_arns,
                provider_id=material.provider_id,
            )
            logger.info(
                "calling STS AssumeRoleWithWebIdentity for %s (session %s)",
                material.role_arn,
                material.role_session_name,
            )
            return assume_role_with_web_identity(
                self._sts_client(),
                request,
                clock=self._clock,
                min_seconds_left=self._policy.min_stop_seconds,
            )

        return call_with_retries(
            attempt,
            self._read_token,
            policy=self._retry_policy if hard else SINGLE_ATTEMPT,
            first_token=first_token,
        )
