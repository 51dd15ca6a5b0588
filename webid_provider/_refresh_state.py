"""What one process knows about each cache key, and the decision a caller gets from it.

Every credentials object whose settings resolve to the same cache key shares one
:class:`KeyState` (kedacore/keda#5177): the credentials in hand, their refresh time, the
back-off after failures, the error to replay, and the one refresh job that may run for the key.
:func:`decide` turns that state into a :class:`Step` without I/O; the refresher
(:mod:`webid_provider._refresh`) takes the step. A forked child starts with an empty registry.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Optional, Tuple

from webid_provider._clock import utc_now
from webid_provider._policy import Phase, RefreshPolicy
from webid_provider._result import WebIdentityResult

#: The registry drops expired states once it holds this many.
_EVICT_ABOVE_STATES = 256


class Step(Enum):
    """What a caller does next, decided from the key's in-process state alone (README,
    "Refresh and failure behaviour")."""

    SERVE = "serve the credentials in hand; ask again at their refresh time"
    BACK_OFF = "serve the credentials in hand; the last refresh failed, wait before the next"
    AWAIT_REFRESH = "serve the credentials in hand; a refresh is running"
    START_REFRESH = "serve the credentials in hand; start a refresh in the background"
    REFRESH_NOW = "usable credentials, but a one-shot caller waits for a refresh (one attempt)"
    FETCH = "nothing usable is held: wait for a refresh (with retries)"

    @property
    def serves(self) -> bool:
        """Whether the caller gets the credentials in hand without waiting."""
        return self not in (Step.REFRESH_NOW, Step.FETCH)


@dataclass
class KeyState:
    """What one process knows about one cache key; guarded by ``lock``, never held over I/O."""

    lock: threading.Lock
    result: Optional[WebIdentityResult] = None
    refresh_at: Optional[datetime] = None
    failures: int = 0
    next_attempt_at: Optional[datetime] = None
    last_error: Optional[Exception] = None
    last_error_at: Optional[datetime] = None
    negative_until: Optional[datetime] = None
    negative_token_hash: Optional[str] = None
    job: Optional[Future[WebIdentityResult]] = None
    job_started: float = 0.0  # time.monotonic() when ``job`` was claimed
    job_hard: bool = False  # whether ``job`` retries, or makes a single background attempt
    #: the last refresh made for a one-shot margin gave sessions too short to keep it
    margin_unmet: bool = False

    def backing_off(self, now: datetime) -> bool:
        """Whether a failed refresh's back-off still runs at ``now``."""
        return self.next_attempt_at is not None and now < self.next_attempt_at

    def claim_job(self, *, hard: bool) -> Future[WebIdentityResult]:
        """Mark a refresh as running; caller holds ``lock``.

        :param hard: whether the refresh retries (nothing usable held) or makes one attempt
        """
        job: Future[WebIdentityResult] = Future()
        job.set_running_or_notify_cancel()
        self.job, self.job_started, self.job_hard = job, time.monotonic(), hard
        return job

    def end_job(self, job: Future[WebIdentityResult]) -> None:
        """Forget ``job`` unless a newer one replaced it; caller holds ``lock``."""
        if self.job is job:
            self.job = None

    def forget_job_older_than(self, seconds: float) -> bool:
        """Forget a job that outlived every bound (a token source or STS that hangs): it would
        otherwise hold the key for the life of the process. Caller holds ``lock``.

        :returns: whether a job was forgotten
        """
        if self.job is None or time.monotonic() - self.job_started <= seconds:
            return False
        self.job = None
        return True


def decide(
    state: KeyState,
    now: datetime,
    policy: RefreshPolicy,
    *,
    one_shot: bool = False,
    margin_seconds: float = 0.0,
) -> Step:
    """The next :class:`Step` for ``state`` at ``now``; caller holds ``state.lock``.

    A caller that keeps credentials and asks again (botocore, aiobotocore) never waits while
    usable credentials are held: a due refresh runs in the background. A one-shot caller
    (``credential-process``, the container endpoint) hands its credentials to a consumer that
    refreshes on its own schedule, so it waits for a due refresh instead, and also for one that
    gives ``margin_seconds`` left, unless a failed refresh is backing off or STS issued sessions
    too short for the margin (``margin_unmet``).
    """
    held = state.result
    if held is None or not policy.usable(held, now):
        return Step.FETCH
    fresh = policy.phase(held, state.refresh_at, now) is Phase.FRESH
    if one_shot:
        if state.job is not None:
            return Step.REFRESH_NOW  # wait for the refresh that is running
        if state.backing_off(now):
            return Step.BACK_OFF  # whatever the margin
        enough = state.margin_unmet or held.seconds_left(now) >= margin_seconds
        return Step.SERVE if fresh and enough else Step.REFRESH_NOW
    if state.job is not None:
        return Step.AWAIT_REFRESH
    if fresh:
        return Step.SERVE
    return Step.BACK_OFF if state.backing_off(now) else Step.START_REFRESH


@dataclass(frozen=True)
class Move:
    """A :class:`Step` taken under the key's lock: an answer, or a refresh to wait for."""

    state: KeyState
    #: the credentials to serve now and when to ask again (serving steps only)
    answer: Optional[Tuple[WebIdentityResult, datetime]] = None
    job: Optional[Future[WebIdentityResult]] = None
    #: this caller claimed ``job`` and must start it
    own: bool = False
    hard: bool = False


class StateRegistry:
    """Process-wide map from cache key to shared state; emptied in a forked child."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, KeyState] = {}
        self._recent_keys: dict[str, str] = {}

    def get(self, key: str) -> KeyState:
        with self._lock:
            state = self._states.get(key)
            if state is None:
                if len(self._states) >= _EVICT_ABOVE_STATES:
                    self._evict_expired()
                state = self._states[key] = KeyState(lock=threading.Lock())
            return state

    def _evict_expired(self) -> None:
        """Drop states whose credentials have expired and that nobody is refreshing.

        Keys bound to exact tokens (a service passing its callers' tokens) are unbounded in
        number; their expired secrets need not stay in memory. Caller holds ``self._lock``.
        """
        now = utc_now()
        for key, state in list(self._states.items()):
            result = state.result
            expired = result is None or result.expiration <= now
            replaying = state.negative_until is not None and state.negative_until > now
            if state.job is None and expired and not replaying:
                del self._states[key]

    def recent_key(self, fingerprint: str) -> Optional[str]:
        """The key the settings with ``fingerprint`` resolved to last, in this process."""
        with self._lock:
            return self._recent_keys.get(fingerprint)

    def remember_key(self, fingerprint: str, key: str) -> bool:
        """Note the key of ``fingerprint``; ``True`` when it is new or changed."""
        with self._lock:
            changed = self._recent_keys.get(fingerprint) != key
            self._recent_keys[fingerprint] = key
            return changed

    def reset(self) -> None:
        # After fork the locks may be held by threads that no longer exist: start over.
        self._lock = threading.Lock()
        self._states = {}
        self._recent_keys = {}


registry = StateRegistry()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=registry.reset)


def clear_memory_state() -> None:
    """Forget every in-process result, as a new process would start (tests, benchmarks)."""
    registry.reset()
