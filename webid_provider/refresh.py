"""When to refresh, what to do when STS fails, and the glue to botocore's refresh machinery.

botocore's windows are fixed (refresh 15 min before expiry, block at 10 min), so 900 s sessions
call STS on every request (boto/botocore#2189) and any STS hiccup in the last 10 minutes fails
requests although the credentials in hand still work. Our policy instead:

* windows scale with each credential's real lifetime: refresh a quarter of the lifetime
  before expiry (at most 15 min), stop using credentials 5 % of the lifetime before expiry
  (1-60 s), so steady state is one STS call per lifetime whatever the lifetime;
* each process draws its refresh time with jitter (up to +50 % of the window), so hosts and
  processes do not refresh in lockstep; within a host the first one refreshes under the file
  lock and the others adopt its newer cache entry without an STS call;
* a failed refresh keeps serving credentials that are still usable and backs off
  exponentially (with jitter, capped, and never past the point where they stop being usable);
  while usable credentials exist an attempt is a single STS call; only when nothing usable is
  left do we retry hard (classified retries in :mod:`webid_provider.sts`) and finally raise;
* permanent errors are remembered for a few seconds (per key and token) so many threads do not
  repeat a doomed call.

Glue: botocore's ``RefreshableCredentials`` keeps its per-object lock and its non-blocking /
blocking split. We hand it an *effective* expiry — the next instant we want to be asked plus
botocore's own small margins — so botocore calls ``refresh_using`` exactly when our policy is
due and never signs with credentials past our stop point.

In-process sharing: every credentials object whose settings resolve to the same cache key
shares one state and one refresh (kedacore/keda#5177).
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Optional

from webid_provider._botocore import (
    BOTOCORE_ADVISORY_SECONDS,
    BOTOCORE_MANDATORY_SECONDS,
    WindowedDeferredCredentials,
)
from webid_provider.cache import CacheEntry, CredentialCache, KeyMaterial
from webid_provider.errors import ConfigurationError, StsError, TokenSourceError
from webid_provider.policy import RefreshPolicy as RefreshPolicy
from webid_provider.policy import utc_now as utc_now
from webid_provider.result import WebIdentityResult
from webid_provider.settings import WebIdentitySettings
from webid_provider.sts import (
    SINGLE_ATTEMPT,
    RetryPolicy,
    StsRequest,
    assume_role_with_web_identity,
    call_with_retries,
)
from webid_provider.tokens import TokenSource, default_session_name, peek_claims, token_identity

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
METHOD = "webid-provider"

# We report "next instant we want to be asked + ADVISORY" as the expiry, which leaves one
# second of non-blocking refresh before botocore makes threads wait for the refreshing one.
_NON_BLOCKING_SECONDS = BOTOCORE_ADVISORY_SECONDS - BOTOCORE_MANDATORY_SECONDS


@dataclass
class _KeyState:
    """What one process knows about one cache key; guarded by ``lock``."""

    lock: threading.Lock
    result: Optional[WebIdentityResult] = None
    refresh_at: Optional[datetime] = None
    failures: int = 0
    next_attempt_at: Optional[datetime] = None
    last_error: Optional[Exception] = None
    last_error_at: Optional[datetime] = None
    negative_until: Optional[datetime] = None
    negative_token_hash: Optional[str] = None


class _StateRegistry:
    """Process-wide map from cache key to shared state; emptied in a forked child."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, _KeyState] = {}

    def get(self, key: str) -> _KeyState:
        with self._lock:
            state = self._states.get(key)
            if state is None:
                state = self._states[key] = _KeyState(lock=threading.Lock())
            return state

    def reset(self) -> None:
        # After fork the locks may be held by threads that no longer exist: start over.
        self._lock = threading.Lock()
        self._states = {}


_registry = _StateRegistry()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_registry.reset)


def clear_memory_state() -> None:
    """Forget every in-process result (tests, and ``webid-provider cache clear``)."""
    _registry.reset()


class WebIdentityRefresher:
    """The ``refresh_using`` callable: memory -> disk -> lock -> disk -> STS -> disk.

    One instance per credentials object; instances with the same key share state.
    Thread-safe: botocore serialises calls per credentials object, the key state lock
    serialises them across objects, the file lock across processes.
    """

    def __init__(
        self,
        settings: WebIdentitySettings,
        token_source: TokenSource,
        *,
        sts_client: Callable[[], Any],
        endpoint: str,
        cache: CredentialCache,
        clock: Clock = utc_now,
        policy: RefreshPolicy = RefreshPolicy(),  # noqa: B008 - immutable
        retry_policy: RetryPolicy = RetryPolicy(),  # noqa: B008 - immutable
        rng: Optional[random.Random] = None,
    ) -> None:
        self.settings = settings
        self.token_source = token_source
        self.cache = cache
        self.clock = clock
        self.policy = policy
        self.retry_policy = retry_policy
        self._sts_client = sts_client
        self._endpoint = endpoint
        self._rng = rng or random.Random()
        self._state: Optional[_KeyState] = None
        self.latest: Optional[WebIdentityResult] = None
        self.last_key: Optional[str] = None

    def __call__(self) -> dict[str, Any]:
        """Return botocore credential metadata; raise only when nothing usable is left."""
        try:
            token = self.token_source.read_token()
            material = self.key_material(token)
        except (TokenSourceError, ConfigurationError) as exc:
            return self._serve_despite(exc)
        key = material.key()
        state = _registry.get(key)
        self._state = state
        self.last_key = key
        with state.lock:
            result, due = self._resolve(state, material, key, token)
        self.latest = result
        return result.to_botocore_metadata(expiry_time=self._effective_expiry(result, due))

    def key_material(self, token: str) -> KeyMaterial:
        """The cache key inputs for ``token`` under these settings.

        :raises ConfigurationError: when ``provider_id`` is set for an OpenID Connect JWT
        """
        claims = peek_claims(token)
        if self.settings.provider_id is not None and claims is not None:
            raise ConfigurationError(
                f"provider_id is only for OAuth 2.0 access tokens, but the "
                f"{self.token_source.description} holds an OpenID Connect JWT; remove provider_id",
                field="provider_id",
            )
        identity = token_identity(token, claims)
        return KeyMaterial(
            role_arn=self.settings.role_arn,
            role_session_name=self.settings.role_session_name or default_session_name(identity),
            duration_seconds=self.settings.duration_seconds,
            policy=self.settings.policy,
            policy_arns=self.settings.policy_arns,
            provider_id=self.settings.provider_id,
            endpoint=self._endpoint,
            token_identity=identity,
        )

    def _resolve(
        self, state: _KeyState, material: KeyMaterial, key: str, token: str
    ) -> tuple[WebIdentityResult, datetime]:
        now = self.clock()
        held = state.result
        if (
            held is not None
            and state.refresh_at is not None
            and now < state.refresh_at
            and self.policy.usable(held, now)
        ):
            logger.debug("credentials for %s served from memory", material.role_arn)
            return held, state.refresh_at
        usable = held is not None and self.policy.usable(held, now)
        if usable and state.next_attempt_at is not None and now < state.next_attempt_at:
            assert held is not None
            return held, state.next_attempt_at
        if not usable:
            self._replay_negative(state, token, now)

        adopted = self._adoptable(key, held, now)
        if adopted is not None:
            return self._adopt(state, adopted, source="cache")
        with self.cache.lock(key) as locked:
            if locked:
                adopted = self._adoptable(key, held, now)
                if adopted is not None:
                    return self._adopt(state, adopted, source="cache (after lock)")
            try:
                result = self._call_sts(material, token, hard=not usable)
            except (StsError, TokenSourceError) as exc:
                return self._after_failure(state, exc, token)
            entry = CacheEntry(
                key=key,
                result=result,
                role_arn=material.role_arn,
                role_session_name=material.role_session_name,
                refresh_at=self.policy.refresh_at(result, self.clock(), self._rng),
            )
            self.cache.write(entry)
        return self._adopt(state, entry, source="STS")

    def _adoptable(
        self, key: str, held: Optional[WebIdentityResult], now: datetime
    ) -> Optional[CacheEntry]:
        """A cache entry newer than ``held`` whose refresh time has not come yet."""
        entry = self.cache.read(key, now=now)
        if entry is None:
            return None
        if held is not None and entry.result.expiration <= held.expiration:
            return None
        if entry.refresh_at is not None:
            fresh = now < entry.refresh_at and self.policy.usable(entry.result, now)
        else:
            fresh = self.policy.fresh(entry.result, now)
        return entry if fresh else None

    def _adopt(
        self, state: _KeyState, entry: CacheEntry, *, source: str
    ) -> tuple[WebIdentityResult, datetime]:
        result = entry.result
        state.result = result
        state.refresh_at = entry.refresh_at or self.policy.refresh_at(
            result, self.clock(), self._rng
        )
        state.failures = 0
        state.next_attempt_at = None
        state.negative_until = None
        logger.info(
            "credentials for %s from %s; valid until %s, refresh at %s",
            self.settings.role_arn,
            source,
            result.expiration.isoformat(),
            state.refresh_at.isoformat(),
        )
        return result, state.refresh_at

    def _call_sts(
        self, material: KeyMaterial, first_token: str, *, hard: bool
    ) -> WebIdentityResult:
        tokens = iter([first_token])

        def read_token() -> str:
            return next(tokens, None) or self.token_source.read_token()

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
            return assume_role_with_web_identity(self._sts_client(), request, clock=self.clock)

        return call_with_retries(
            attempt, read_token, policy=self.retry_policy if hard else SINGLE_ATTEMPT
        )

    def _after_failure(
        self, state: _KeyState, exc: Exception, token: str
    ) -> tuple[WebIdentityResult, datetime]:
        served = self._back_off(state, exc, "refreshing credentials failed")
        if served is not None:
            return served
        if isinstance(exc, StsError) and not exc.retryable:
            seconds = self.policy.negative_cache_seconds * self._rng.uniform(0.5, 1.0)
            assert state.last_error_at is not None
            state.negative_until = state.last_error_at + timedelta(seconds=seconds)
            state.negative_token_hash = _hash(token)
        raise exc

    def _back_off(
        self, state: _KeyState, exc: Exception, what: str
    ) -> Optional[tuple[WebIdentityResult, datetime]]:
        """Record a failure; while the held credentials are usable, keep them and back off.

        :returns: the credentials to serve and the next attempt, or ``None`` when nothing
            usable is held (the caller raises)
        """
        now = self.clock()
        state.failures += 1
        state.last_error, state.last_error_at = exc, now
        held = state.result
        if held is None or not self.policy.usable(held, now):
            return None
        state.next_attempt_at = self.policy.next_attempt_at(held, state.failures, now, self._rng)
        logger.warning(
            "%s for %s (%s); still serving credentials valid until %s; next attempt at %s",
            what,
            self.settings.role_arn,
            exc,
            held.expiration.isoformat(),
            state.next_attempt_at.isoformat(),
        )
        return held, state.next_attempt_at

    def _replay_negative(self, state: _KeyState, token: str, now: datetime) -> None:
        if (
            state.negative_until is not None
            and now < state.negative_until
            and state.negative_token_hash == _hash(token)
            and isinstance(state.last_error, StsError)
        ):
            error = state.last_error
            raise StsError(
                f"{error} (repeated without calling STS: the same request failed at "
                f"{state.last_error_at.isoformat() if state.last_error_at else 'just now'}; "
                f"next attempt after {state.negative_until.isoformat()})",
                code=error.code,
                retryable=error.retryable,
                request_id=error.request_id,
                http_status=error.http_status,
            ) from error

    def _serve_despite(self, exc: Exception) -> dict[str, Any]:
        """The token could not be read: keep serving usable credentials, else raise."""
        state = self._state
        if state is None:
            raise exc
        with state.lock:
            served = self._back_off(state, exc, "cannot read the web identity token")
        if served is None:
            raise exc
        held, due = served
        self.latest = held
        return held.to_botocore_metadata(expiry_time=self._effective_expiry(held, due))

    def _effective_expiry(self, result: WebIdentityResult, due: datetime) -> datetime:
        """The expiry to report to botocore so it asks us at ``due`` and never past our stop."""
        now = self.clock()
        latest = result.expiration - timedelta(
            seconds=self.policy.stop_seconds(result) + _NON_BLOCKING_SECONDS
        )
        # Never later than ``latest``, even when that has passed: botocore then blocks every
        # thread from our stop point on, instead of signing with the old credentials.
        ask_at = min(max(due, now), latest)
        return ask_at + timedelta(seconds=BOTOCORE_ADVISORY_SECONDS)


class WebIdentityCredentials(WindowedDeferredCredentials):
    """botocore refreshable credentials with the latest STS result at ``.web_identity``."""

    def __init__(self, refresher: WebIdentityRefresher) -> None:
        super().__init__(refresh_using=refresher, method=METHOD, time_fetcher=refresher.clock)
        self._webid_refresher = refresher

    @property
    def web_identity(self) -> WebIdentityResult:
        """The latest AssumeRoleWithWebIdentity result, fetching it first if needed."""
        self.get_frozen_credentials()
        latest = self._webid_refresher.latest
        assert latest is not None  # get_frozen_credentials raised otherwise
        return latest

    @property
    def refresher(self) -> WebIdentityRefresher:
        """The refresh policy object behind these credentials (read-only use)."""
        return self._webid_refresher


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
