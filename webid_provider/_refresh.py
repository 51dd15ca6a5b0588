"""When to refresh, what to do when STS fails, and the glue to botocore's refresh machinery.

botocore's windows are fixed (refresh 15 min before expiry, block at 10), so 900 s sessions
call STS on every request (boto/botocore#2189), any STS hiccup in the last 10 minutes fails
requests although the credentials in hand still work, and a slow STS call stalls every thread.
Our policy (:mod:`webid_provider._policy` has the numbers):

* windows scale with each credential's real lifetime, and the refresh time is drawn once per
  set of credentials, with jitter, by the process that obtained them, and stored with the
  cache entry: a host refreshes together (one process calls STS under the file lock, the others
  adopt its entry) while hosts spread;
* **no stalls**: while usable credentials are held, nobody waits. A due refresh runs as a
  *job* in a background thread; callers keep getting the credentials in hand until it lands.
  Only a caller with nothing usable waits, for a bounded time;
* **static stability**: a failed refresh keeps serving usable credentials — from memory, or
  from a disk entry a new process finds past its refresh time — and backs off exponentially;
  while usable credentials exist an attempt is a single STS call; only when nothing usable is
  left do we retry hard (classified retries in :mod:`webid_provider._sts`) and finally raise;
* permanent errors (and credentials a skewed clock cannot use) are replayed for a while per key
  and token, so many threads do not repeat a doomed call.

The decision a caller gets is one of the named :class:`Step` values, taken from the key's
in-process state without I/O (:meth:`WebIdentityRefresher.serve_from_memory`); I/O happens in
a job (:meth:`WebIdentityRefresher._run_job`: read the entry, lock, read again, STS, write).

**Trust rule of the cache key.** Claims in a token are never verified here. A token from a
file or a command — sources trusted to rotate one identity — is keyed by that identity
(issuer, subject, audience), so a rotated token reuses the entry. A token passed as a string
or returned by a callable (which may carry a caller's token in a multi-tenant service) is keyed
by its exact value: a token never obtains credentials STS did not issue for that token or its
rotation chain, and a forged token with a victim's claims goes to STS and fails there.

Glue: botocore's ``DeferredRefreshableCredentials`` keeps its per-object lock. We hand it an
*effective* expiry — the next instant we want to be asked plus botocore's own small margins — so
botocore calls ``refresh_using`` exactly when a decision is due and never signs with credentials
past our stop point. Every credentials object whose settings resolve to the same cache key
shares one state and one refresh (kedacore/keda#5177). A forked child starts with empty state
and with botocore's locks of our credentials objects reset.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import threading
import time
import weakref
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Callable, Optional, Union

from webid_provider._botocore import (
    BOTOCORE_ADVISORY_SECONDS,
    BOTOCORE_MANDATORY_SECONDS,
    WindowedDeferredCredentials,
    reset_refresh_lock,
)
from webid_provider._cache import CacheEntry, CredentialCache, KeyMaterial
from webid_provider._errors import (
    ClockSkewError,
    ConfigurationError,
    StsError,
    StsServiceError,
    TokenSourceError,
    WebIdProviderError,
)
from webid_provider._margin import MIN_SESSION_MARGINS as MARGIN_SESSIONS
from webid_provider._margin import effective_margin, jittered
from webid_provider._policy import Phase
from webid_provider._policy import RefreshPolicy as RefreshPolicy
from webid_provider._policy import utc_now as utc_now
from webid_provider._result import WebIdentityResult
from webid_provider._settings import WebIdentitySettings
from webid_provider._sts import (
    SINGLE_ATTEMPT,
    RetryPolicy,
    StsRequest,
    assume_role_with_web_identity,
    call_with_retries,
)
from webid_provider._tokens import (
    TokenClaims,
    TokenSource,
    default_session_name,
    peek_claims,
    token_identity,
)

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
#: Runs a refresh job; the default starts a daemon thread. Tests pass ``run_inline``.
JobRunner = Callable[[Callable[[], None]], None]
METHOD = "webid-provider"
#: Token sources trusted to rotate one identity: their entries are keyed by identity.
ROTATING_SOURCES = frozenset({"file", "command"})

# We report "next instant we want to be asked + ADVISORY" as the expiry, which leaves one
# second of non-blocking refresh before botocore makes threads wait for the refreshing one.
_NON_BLOCKING_SECONDS = BOTOCORE_ADVISORY_SECONDS - BOTOCORE_MANDATORY_SECONDS
#: While a background refresh runs, botocore is asked to check back this often (a memory read).
_REFRESH_POLL_SECONDS = 1.0
#: The state registry drops expired states once it holds this many.
_EVICT_ABOVE_STATES = 256
#: A JWT is refused locally only once its ``exp`` is this far past by the local clock.
EXPIRED_TOKEN_LEEWAY_SECONDS = 300.0
#: A caller with nothing usable waits at most this long beyond the lock and retry budgets.
_WAIT_SLACK_SECONDS = 5.0


class Step(Enum):
    """What a caller does next, decided from the key's in-process state alone."""

    SERVE = "serve the credentials in hand; ask again at their refresh time"
    BACK_OFF = "serve the credentials in hand; the last refresh failed, wait before the next"
    AWAIT_REFRESH = "serve the credentials in hand; a refresh is running"
    START_REFRESH = "serve the credentials in hand; start a refresh in the background"
    FETCH = "nothing usable is held: wait for a refresh"


@dataclass
class _KeyState:
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


class _StateRegistry:
    """Process-wide map from cache key to shared state; emptied in a forked child."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, _KeyState] = {}
        self._recent_keys: dict[str, str] = {}

    def get(self, key: str) -> _KeyState:
        with self._lock:
            state = self._states.get(key)
            if state is None:
                if len(self._states) >= _EVICT_ABOVE_STATES:
                    self._evict_expired()
                state = self._states[key] = _KeyState(lock=threading.Lock())
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


_registry = _StateRegistry()
_credentials_objects: weakref.WeakSet[WebIdentityCredentials] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    _registry.reset()
    # A thread of the parent may have been inside botocore's refresh (holding the object's
    # lock) at fork time; that thread does not exist here, so the lock would never be freed.
    for credentials in list(_credentials_objects):
        reset_refresh_lock(credentials)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def clear_memory_state() -> None:
    """Forget every in-process result, as a new process would start (tests and benchmarks)."""
    _registry.reset()


def run_in_thread(job: Callable[[], None]) -> None:
    """The default :data:`JobRunner`: a daemon thread, so a hung STS never blocks exit."""
    threading.Thread(target=job, name="webid-provider-refresh", daemon=True).start()


def run_inline(job: Callable[[], None]) -> None:
    """A :data:`JobRunner` that runs the job before returning (deterministic tests)."""
    job()


class WebIdentityRefresher:
    """The ``refresh_using`` callable, and the blocking :meth:`get` of the command line.

    One instance per credentials object; instances with the same key share state.
    Thread-safe: the key state's lock guards every decision, a job per key does the I/O, and
    the file lock serialises jobs across processes.
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
        run_job: JobRunner = run_in_thread,
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
        self._run_job = run_job
        self._key: Optional[str] = None
        self.latest: Optional[WebIdentityResult] = None

    @property
    def key(self) -> Optional[str]:
        """The cache key of the last token read (``None`` before the first use)."""
        return self._key

    # -- entry points --------------------------------------------------------------------

    def __call__(self) -> dict[str, Any]:
        """Return botocore credential metadata; raise only when nothing usable is left."""
        return self.botocore_metadata(self.serve())

    def botocore_metadata(self, answer: tuple[WebIdentityResult, datetime]) -> dict[str, Any]:
        """botocore credential metadata for an answer of :meth:`serve`, with the effective expiry
        (see :meth:`_effective_expiry`); the async glue's ``refresh_using`` returns this too."""
        result, ask_at = answer
        return result.to_botocore_metadata(expiry_time=self._effective_expiry(result, ask_at))

    def serve(self) -> tuple[WebIdentityResult, datetime]:
        """The credentials to use now and when to ask again.

        Blocks only when nothing usable is held, for a bounded time.
        """
        answer = self.serve_from_memory()
        if answer is None:
            answer = self._serve_blocking(min_remaining_seconds=0.0)
        self.latest = answer[0]
        return answer

    def get(self, min_remaining_seconds: float = 0.0) -> WebIdentityResult:
        """Credentials with at least ``min_remaining_seconds`` left when a refresh can give them.

        For one-shot consumers (``credential-process``, the container endpoint) that cannot
        leave a due refresh to a background thread: a refresh, when due or when the
        credentials in hand have less than the margin left, happens now — one STS call per
        host under the file lock, and an entry another process wrote with enough time left is
        adopted instead. If that refresh fails, the usable credentials in hand are returned,
        and the usual back-off applies to the next calls.

        The margin gets 7-20 % of jitter per call. No margin applies when the sessions STS
        issues for these settings
        (``duration_seconds``, else STS's default of one hour) are at most twice as long
        (:func:`~webid_provider._margin.effective_margin`): refreshing for it would cost an STS
        call per hand-out for little gain.

        :raises WebIdProviderError: only when nothing usable is left
        """
        result, _ = self._serve_blocking(min_remaining_seconds=min_remaining_seconds, one_shot=True)
        self.latest = result
        return result

    def serve_without_waiting(self) -> Union[tuple[WebIdentityResult, datetime], PendingRefresh]:
        """:meth:`serve` for a caller that must not block a thread on a refresh.

        The async glue runs this in a helper thread: it does the I/O of :meth:`serve` (token,
        disk entry) but, where :meth:`serve` would wait for a refresh, starts the refresh as a
        background job (``run_job``) and returns it, to be awaited on the event loop. So no
        helper thread sits blocked on a refresh, however many coroutines wait for one.
        """
        prepared = self._prepare(min_remaining_seconds=0.0, one_shot=False, run_here=False)
        if not isinstance(prepared, PendingRefresh):
            self.latest = prepared[0]
        return prepared

    def serve_from_memory(self) -> Optional[tuple[WebIdentityResult, datetime]]:
        """Decide from memory alone (no I/O, never blocks); ``None`` when I/O is needed.

        Starts a background refresh when one is due; I/O is needed on first use and when
        nothing usable is held.
        """
        if self._key is None:
            return None
        state = _registry.get(self._key)
        now = self.clock()
        with state.lock:
            step = self._decide(state, now)
            held = state.result
            if step is Step.FETCH or held is None:
                return None
            if step is Step.SERVE:
                assert state.refresh_at is not None
                return held, state.refresh_at
            if step is Step.BACK_OFF:
                assert state.next_attempt_at is not None
                return held, state.next_attempt_at
            job = self._claim_job(state) if step is Step.START_REFRESH else None
        if job is not None:
            self._start(job, state, first_token=None, hard=False, min_remaining_seconds=0.0)
            with state.lock:  # a job that ran inline has already landed
                if self._decide(state, self.clock()) is Step.SERVE and state.result is not None:
                    assert state.refresh_at is not None
                    return state.result, state.refresh_at
        logger.debug("serving credentials in hand while %s refreshes", self.settings.role_arn)
        return held, now + timedelta(seconds=_REFRESH_POLL_SECONDS)

    # -- decisions -----------------------------------------------------------------------

    def _decide(self, state: _KeyState, now: datetime) -> Step:
        """The next :class:`Step` for ``state`` at ``now``; caller holds ``state.lock``."""
        held = state.result
        if held is None or not self.policy.usable(held, now):
            return Step.FETCH
        if self._live_job(state) is not None:
            return Step.AWAIT_REFRESH
        if self.policy.phase(held, state.refresh_at, now) is Phase.FRESH:
            return Step.SERVE
        if state.next_attempt_at is not None and now < state.next_attempt_at:
            return Step.BACK_OFF
        return Step.START_REFRESH

    def _margin_seconds(self, min_remaining_seconds: float) -> float:
        """The margin for one hand-out: none for sessions too short to outlive it, else the
        requested one plus jitter drawn per call (so a fleet's hosts spread)."""
        margin = effective_margin(self.settings.duration_seconds, min_remaining_seconds)
        return jittered(margin, self._rng)

    def _held_answer(
        self, state: _KeyState, now: datetime, margin_seconds: float, *, one_shot: bool
    ) -> Optional[tuple[WebIdentityResult, datetime]]:
        """The credentials in hand when a blocking caller may have them without a refresh;
        caller holds ``state.lock``.

        A one-shot caller gets them when they are fresh with the margin left, or while a failed
        refresh backs off; a due refresh or a running one is waited for instead.
        """
        held = state.result
        if held is None or not self.policy.usable(held, now):
            return None
        if one_shot and state.job is not None:
            return None  # wait for the refresh that is running
        if state.next_attempt_at is not None and now < state.next_attempt_at:
            return held, state.next_attempt_at  # backing off, whatever the margin
        step = self._decide(state, now)
        enough = not one_shot or state.margin_unmet or held.seconds_left(now) >= margin_seconds
        if step is Step.SERVE and state.refresh_at is not None and enough:
            return held, state.refresh_at
        return None

    def _answer_from_memory(
        self, margin_seconds: float, *, one_shot: bool
    ) -> Optional[tuple[WebIdentityResult, datetime]]:
        """What the key's state alone can answer, before any token read."""
        if not one_shot:
            return self.serve_from_memory()
        assert self._key is not None
        state = _registry.get(self._key)
        with state.lock:
            return self._held_answer(state, self.clock(), margin_seconds, one_shot=True)

    def _serve_blocking(
        self, *, min_remaining_seconds: float = 0.0, one_shot: bool = False
    ) -> tuple[WebIdentityResult, datetime]:
        """Read the token, find the key's state, and wait for a refresh if one is needed.

        When the refresh waited for was another caller's and it either outlived every bound
        (a token source or STS that hangs) or was a single background attempt that failed,
        this caller makes one full attempt of its own rather than fail or wait forever.
        """
        prepared = self._prepare(
            min_remaining_seconds=min_remaining_seconds, one_shot=one_shot, run_here=True
        )
        if not isinstance(prepared, PendingRefresh):
            return prepared
        try:
            result, ask_at = prepared.wait()
        except WebIdProviderError as exc:
            if not prepared.worth_own_attempt(exc):
                raise
            with prepared.state.lock:
                self._end_job_if_current(prepared.state, prepared.job)
            logger.info("making an own attempt for %s after: %s", self.settings.role_arn, exc)
            retried = self._prepare(
                min_remaining_seconds=min_remaining_seconds, one_shot=one_shot, run_here=True
            )
            if not isinstance(retried, PendingRefresh):
                return retried
            prepared = retried
            result, ask_at = prepared.wait()
        if prepared.base_margin_seconds > 0:
            with prepared.state.lock:
                # STS issues shorter sessions than the settings promise: asking again before
                # the refresh time would cost an STS call per hand-out for nothing.
                prepared.state.margin_unmet = (
                    result.lifetime_seconds <= MARGIN_SESSIONS * prepared.base_margin_seconds
                )
        return result, ask_at

    def _prepare(
        self, *, min_remaining_seconds: float, one_shot: bool, run_here: bool
    ) -> Union[tuple[WebIdentityResult, datetime], PendingRefresh]:
        """Read the token, find the key's state; the answer, or the refresh to wait for.

        :param run_here: run a refresh this call starts in the calling thread (which waits
            anyway) rather than with ``run_job``
        """
        fingerprint = self._settings_fingerprint()
        margin = self._margin_seconds(min_remaining_seconds) if one_shot else 0.0
        if self._key is None and fingerprint is not None:
            # A rotating source names one identity: the key it resolved to last in this
            # process serves a new session without running the token source again.
            self._key = _registry.recent_key(fingerprint)
        if self._key is not None:
            answer = self._answer_from_memory(margin, one_shot=one_shot)
            if answer is not None:
                return answer
        try:
            token, material = self._read_token()
        except (TokenSourceError, ConfigurationError) as exc:
            return self._serve_despite(exc, fingerprint)
        key = self._key = material.key()
        if fingerprint is not None and _registry.remember_key(fingerprint, key):
            self.cache.write_key_index(fingerprint, key)
        state = _registry.get(key)
        self._adopt_usable_disk_entry(state, key)
        if not one_shot:
            answer = self.serve_from_memory()
            if answer is not None:
                return answer
        base_margin = min_remaining_seconds if margin > 0 else 0.0
        now = self.clock()
        with state.lock:
            answer = self._held_answer(state, now, margin, one_shot=one_shot)
            if answer is not None:
                return answer
            usable = state.result is not None and self.policy.usable(state.result, now)
            if not usable:
                self._replay_negative(state, token, now)
            job = self._live_job(state)
            if job is None:
                job = claimed = self._claim_job(state, hard=not usable)
            else:
                claimed = None
            hard = state.job_hard
        if claimed is not None and run_here:
            # The caller waits anyway: run the job here rather than hand it to a thread.
            self._execute(
                claimed,
                state,
                material,
                first_token=token,
                hard=not usable,
                min_remaining_seconds=margin,
            )
        elif claimed is not None:
            self._start(
                claimed,
                state,
                material=material,
                first_token=token,
                hard=not usable,
                min_remaining_seconds=margin,
            )
        return PendingRefresh(
            self,
            job,
            state,
            base_margin_seconds=base_margin,
            own=claimed is not None,
            hard=hard,
        )

    def _outcome(
        self, job: Future[WebIdentityResult], state: _KeyState
    ) -> tuple[WebIdentityResult, datetime]:
        """After waiting for ``job`` (done, or the wait timed out): its result; on failure or
        timeout the usable credentials in hand, else raise. Memory only."""
        if not job.done():
            failure: BaseException = _StuckRefresh(
                f"waited {self._wait_limit_seconds():g} s for credentials for "
                f"{self.settings.role_arn}; the refresh is still running"
            )
        else:
            error = job.exception()
            if error is None:
                result = job.result()
                with state.lock:
                    return result, state.refresh_at or self.clock()
            if not isinstance(error, WebIdProviderError):
                raise error
            failure = error
        now = self.clock()
        with state.lock:
            held = state.result
            if held is not None and self.policy.usable(held, now):
                return held, state.next_attempt_at or now + timedelta(seconds=_REFRESH_POLL_SECONDS)
        raise failure

    def _wait_limit_seconds(self) -> float:
        return (
            self.cache.lock_timeout_seconds
            + self.retry_policy.max_total_seconds
            + _WAIT_SLACK_SECONDS
        )

    # -- jobs ----------------------------------------------------------------------------

    def _claim_job(self, state: _KeyState, *, hard: bool = False) -> Future[WebIdentityResult]:
        """Mark a refresh as running for ``state``; caller holds ``state.lock``.

        :param hard: whether the refresh retries (nothing usable held) or makes one attempt
        """
        job: Future[WebIdentityResult] = Future()
        job.set_running_or_notify_cancel()
        state.job, state.job_started, state.job_hard = job, time.monotonic(), hard
        return job

    def _live_job(self, state: _KeyState) -> Optional[Future[WebIdentityResult]]:
        """The running job of ``state``, forgetting one that outlived every bound (a token
        source or STS that hangs): it would otherwise hold the key for the life of the
        process. Caller holds ``state.lock``."""
        if state.job is not None and time.monotonic() - state.job_started > (
            self._wait_limit_seconds()
        ):
            logger.warning(
                "a refresh for %s has run for over %g s; starting another",
                self.settings.role_arn,
                self._wait_limit_seconds(),
            )
            state.job = None
        return state.job

    def _start(
        self,
        job: Future[WebIdentityResult],
        state: _KeyState,
        *,
        material: Optional[KeyMaterial] = None,
        first_token: Optional[str],
        hard: bool,
        min_remaining_seconds: float,
    ) -> None:
        def run() -> None:
            self._execute(
                job,
                state,
                material,
                first_token=first_token,
                hard=hard,
                min_remaining_seconds=min_remaining_seconds,
            )

        try:
            self._run_job(run)
        except RuntimeError as exc:  # no thread could be started (interpreter shutting down)
            with state.lock:
                state.job = None
            job.set_exception(WebIdProviderError(f"cannot start a refresh: {exc}"))

    def _execute(
        self,
        job: Future[WebIdentityResult],
        state: _KeyState,
        material: Optional[KeyMaterial],
        *,
        first_token: Optional[str],
        hard: bool,
        min_remaining_seconds: float,
    ) -> None:
        """Run one refresh and settle ``job``; failures are recorded in the key's state."""
        try:
            result = self._run_job_body(state, material, first_token, hard, min_remaining_seconds)
        except BaseException as exc:
            self._end_job(state, job)
            job.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        self._end_job(state, job)
        job.set_result(result)

    @classmethod
    def _end_job(cls, state: _KeyState, job: Future[WebIdentityResult]) -> None:
        with state.lock:
            cls._end_job_if_current(state, job)

    @staticmethod
    def _end_job_if_current(state: _KeyState, job: Future[WebIdentityResult]) -> None:
        """Forget ``job`` unless a newer one replaced it; caller holds ``state.lock``."""
        if state.job is job:
            state.job = None

    def _run_job_body(
        self,
        state: _KeyState,
        material: Optional[KeyMaterial],
        first_token: Optional[str],
        hard: bool,
        min_remaining_seconds: float,
    ) -> WebIdentityResult:
        token = first_token
        if material is None or token is None:
            try:
                token, material = self._read_token()
            except (TokenSourceError, ConfigurationError) as exc:
                self._record_failure(state, exc, token=None)
                raise
        key = material.key()
        if key != self._key:
            # The token now names another identity: the refresh belongs to that key's state.
            logger.info("the web identity token changed identity; switching cache entries")
            self._key = key
            state = _registry.get(key)
        try:
            fetched = self._fetch(state, material, token, key, hard, min_remaining_seconds)
        except (StsError, TokenSourceError, ClockSkewError) as exc:
            self._record_failure(state, exc, token=token, hard=hard)
            raise
        return self._adopt(state, fetched)

    def _fetch(
        self,
        state: _KeyState,
        material: KeyMaterial,
        token: str,
        key: str,
        hard: bool,
        min_remaining_seconds: float,
    ) -> tuple[CacheEntry, str]:
        """Read the entry, lock, read again, call STS, write: the one I/O path of a refresh."""
        with state.lock:
            held = state.result

        def adoptable() -> Optional[CacheEntry]:
            return self._adoptable(key, held, self.clock(), min_remaining_seconds)

        entry = adoptable()
        if entry is not None:
            return entry, "cache"
        with self.cache.lock(key, stop_waiting=lambda: adoptable() is not None) as locked:
            entry = adoptable()  # written while we waited, or by the lock's last holder
            if entry is not None:
                return entry, "cache (after lock)" if locked else "cache (while waiting)"
            result = self._call_sts(material, token, hard=hard)
            entry = CacheEntry(
                key=key,
                result=result,
                role_arn=material.role_arn,
                role_session_name=material.role_session_name,
                refresh_at=self.policy.refresh_at(result, self.clock(), self._rng),
            )
            self.cache.write(entry)
        return entry, "STS"

    def _adoptable(
        self,
        key: str,
        held: Optional[WebIdentityResult],
        now: datetime,
        min_remaining_seconds: float,
    ) -> Optional[CacheEntry]:
        """A cache entry newer than ``held`` that needs no refresh yet."""
        entry = self.cache.read(key, now=now)
        if entry is None:
            return None
        if held is not None and entry.result.expiration <= held.expiration:
            return None
        if entry.result.seconds_left(now) < min_remaining_seconds:
            return None
        return (
            entry if self.policy.phase(entry.result, entry.refresh_at, now) is Phase.FRESH else None
        )

    def _adopt_usable_disk_entry(self, state: _KeyState, key: str) -> None:
        """Static stability for a new process: a usable disk entry beats nothing, even if due."""
        with state.lock:
            if state.result is not None and self.policy.usable(state.result, self.clock()):
                return
        now = self.clock()
        entry = self.cache.read(key, now=now)
        if entry is None or not self.policy.usable(entry.result, now):
            return
        with state.lock:
            held = state.result
            if held is None or entry.result.expiration > held.expiration:
                state.result = entry.result
                state.refresh_at = entry.refresh_at or self.policy.refresh_at(
                    entry.result, now, self._rng
                )
                logger.debug("credentials for %s found on disk", self.settings.role_arn)

    def _adopt(self, state: _KeyState, fetched: tuple[CacheEntry, str]) -> WebIdentityResult:
        entry, source = fetched
        result = entry.result
        with state.lock:
            state.result = result
            state.refresh_at = entry.refresh_at or self.policy.refresh_at(
                result, self.clock(), self._rng
            )
            state.failures = 0
            state.next_attempt_at = None
            state.negative_until = None
            refresh_at = state.refresh_at
        logger.info(
            "credentials for %s from %s; valid until %s, refresh at %s",
            self.settings.role_arn,
            source,
            result.expiration.isoformat(),
            refresh_at.isoformat(),
        )
        return result

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
                clock=self.clock,
                min_seconds_left=self.policy.min_stop_seconds,
            )

        return call_with_retries(
            attempt,
            self.token_source.read_token,
            policy=self.retry_policy if hard else SINGLE_ATTEMPT,
            first_token=first_token,
        )

    # -- failures ------------------------------------------------------------------------

    def _record_failure(
        self, state: _KeyState, exc: Exception, *, token: Optional[str], hard: bool = False
    ) -> None:
        """Count a failed refresh: back off while usable credentials are held; else replay the
        error for a few seconds to every caller with the same token — an error retrying cannot
        fix (permanent, an expired token STS refused, a skewed clock), or a transient one after
        a full round of retries (so that an outage does not make every request start its own
        round). A single background attempt that failed is never replayed."""
        now = self.clock()
        with state.lock:
            state.failures += 1
            state.last_error, state.last_error_at = exc, now
            held = state.result
            if held is not None and self.policy.usable(held, now):
                state.next_attempt_at = self.policy.next_attempt_at(
                    held, state.failures, now, self._rng
                )
                logger.warning(
                    "refreshing credentials for %s failed (%s); still serving credentials valid "
                    "until %s; next attempt at %s",
                    self.settings.role_arn,
                    exc,
                    held.expiration.isoformat(),
                    state.next_attempt_at.isoformat(),
                )
                return
            if token is None or not (hard or _is_doomed(exc)):
                return
            seconds = self.policy.negative_cache_seconds * self._rng.uniform(0.5, 1.0)
            if isinstance(exc, ClockSkewError):
                # A clock does not fix itself in seconds: back off as for failed refreshes.
                seconds = max(
                    seconds,
                    min(
                        self.policy.backoff_cap_seconds,
                        self.policy.negative_cache_seconds * 2 ** (state.failures - 1),
                    ),
                )
            state.negative_until = now + timedelta(seconds=seconds)
            state.negative_token_hash = _hash(token)

    def _replay_negative(self, state: _KeyState, token: str, now: datetime) -> None:
        """Raise the last error again without calling STS; caller holds ``state.lock``."""
        error = state.last_error
        if (
            state.negative_until is None
            or now >= state.negative_until
            or state.negative_token_hash != _hash(token)
            or not isinstance(error, (StsError, ClockSkewError))
        ):
            return
        note = (
            f"(repeated without calling STS: the same request failed at "
            f"{state.last_error_at.isoformat() if state.last_error_at else 'just now'}; "
            f"next attempt after {state.negative_until.isoformat()})"
        )
        if isinstance(error, ClockSkewError):
            raise ClockSkewError(f"{error} {note}", skew_seconds=error.skew_seconds) from error
        if isinstance(error, StsServiceError):
            # Still botocore's ClientError, with STS's own response, as on the first failure.
            raise StsServiceError(
                f"{error} {note}",
                code=error.code,
                retryable=error.retryable,
                request_id=error.request_id,
                http_status=error.http_status,
                sts_message=error.sts_message,
                response=error.response,
            ) from error
        raise StsError(
            f"{error} {note}",
            code=error.code,
            retryable=error.retryable,
            request_id=error.request_id,
        ) from error

    def _serve_despite(
        self, exc: Exception, fingerprint: Optional[str]
    ) -> tuple[WebIdentityResult, datetime]:
        """The token could not be read: keep serving usable credentials, else raise.

        A new process finds the key through the disk index its predecessors wrote, so a token
        source that is down does not fail it while a usable entry is on disk.
        """
        if self._key is None and fingerprint is not None:
            self._key = self.cache.read_key_index(fingerprint)
        if self._key is None:
            raise exc
        state = _registry.get(self._key)
        self._adopt_usable_disk_entry(state, self._key)
        self._record_failure(state, exc, token=None)
        with state.lock:
            held = state.result
            if held is None or not self.policy.usable(held, self.clock()):
                raise exc
            assert state.next_attempt_at is not None
            return held, state.next_attempt_at

    # -- tokens and keys -----------------------------------------------------------------

    def _settings_fingerprint(self) -> Optional[str]:
        """Everything but the token that decides the key, for sources that rotate one identity
        (``None`` for strings and callables, which are bound to their exact token)."""
        spec = self.settings.token
        if spec.kind not in ROTATING_SOURCES:
            return None
        material = json.dumps(
            [
                spec.kind,
                str(spec.file) if spec.file is not None else None,
                list(spec.command),
                self.settings.role_arn,
                self.settings.role_session_name,
                self.settings.duration_seconds,
                self.settings.policy,
                list(self.settings.policy_arns),
                self.settings.provider_id,
                self._endpoint,
            ]
        )
        return hashlib.sha256(material.encode("utf-8")).hexdigest()[:40]

    def _read_token(self) -> tuple[str, KeyMaterial]:
        """The current token and its key material.

        :raises TokenSourceError: when the token cannot be read, or is a JWT that has expired
        :raises ConfigurationError: see :meth:`key_material`
        """
        token = self.token_source.read_token()
        claims = peek_claims(token)
        self._refuse_expired(claims)
        return token, self._key_material(token, claims)

    def key_material(self, token: str) -> KeyMaterial:
        """The cache key inputs for ``token`` under these settings (see the trust rule).

        :raises ConfigurationError: when ``provider_id`` is set for an OpenID Connect JWT
        """
        return self._key_material(token, peek_claims(token))

    def _key_material(self, token: str, claims: Optional[TokenClaims]) -> KeyMaterial:
        if self.settings.provider_id is not None and claims is not None:
            raise ConfigurationError(
                f"provider_id is only for OAuth 2.0 access tokens, but the "
                f"{self.token_source.description} holds an OpenID Connect JWT; remove provider_id",
                field="provider_id",
            )
        identity = token_identity(token, claims)
        if self.settings.token.kind in ROTATING_SOURCES:
            bound_to = identity
        else:
            bound_to = "exact:" + _hash(token)
        return KeyMaterial(
            role_arn=self.settings.role_arn,
            role_session_name=self.settings.role_session_name or default_session_name(identity),
            duration_seconds=self.settings.duration_seconds,
            policy=self.settings.policy,
            policy_arns=self.settings.policy_arns,
            provider_id=self.settings.provider_id,
            endpoint=self._endpoint,
            token_identity=bound_to,
        )

    def _refuse_expired(self, claims: Optional[TokenClaims]) -> None:
        """STS refuses a JWT past its ``exp``; say so locally instead of calling it twice."""
        if claims is None or claims.expires_at is None:
            return
        now = self.clock()
        # The leeway keeps a host whose clock runs a few minutes fast working, as STS would.
        if claims.expires_at + timedelta(seconds=EXPIRED_TOKEN_LEEWAY_SECONDS) <= now:
            seconds = (now - claims.expires_at).total_seconds()
            raise TokenSourceError(
                f"{self.token_source.description} holds a token that expired at "
                f"{claims.expires_at.isoformat()} ({seconds:.0f} s ago by this host's clock); "
                "STS would refuse it",
                path=getattr(self.token_source, "path", None),
            )

    # -- botocore glue -------------------------------------------------------------------

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


class PendingRefresh:
    """A refresh a caller with nothing usable must wait for (:meth:`~WebIdentityRefresher.
    serve_without_waiting`): wait for :attr:`job` at most :attr:`timeout_seconds` — blocking
    with :meth:`wait`, or on an event loop — then take :meth:`outcome`."""

    def __init__(
        self,
        refresher: WebIdentityRefresher,
        job: Future[WebIdentityResult],
        state: _KeyState,
        *,
        base_margin_seconds: float = 0.0,
        own: bool = True,
        hard: bool = True,
    ) -> None:
        self._refresher = refresher
        #: The key's shared state (the refresher's business; see its ``_serve_blocking``).
        self.state = state
        #: The one-shot margin asked for, when one applies (``get()``); else 0.
        self.base_margin_seconds = base_margin_seconds
        #: Settled by the refresh job's thread; never cancelled (it is running).
        self.job = job
        self.timeout_seconds = refresher._wait_limit_seconds()
        #: Whether this caller started the refresh (else it waits for another caller's).
        self.own = own
        #: Whether the refresh retries, or is a single background attempt.
        self.hard = hard

    def wait(self) -> tuple[WebIdentityResult, datetime]:
        """Block until the job settles or the wait times out, then :meth:`outcome`."""
        with contextlib.suppress(FutureTimeout, WebIdProviderError):  # judged by outcome()
            self.job.result(timeout=self.timeout_seconds)
        return self.outcome()

    def outcome(self) -> tuple[WebIdentityResult, datetime]:
        """The credentials to use once the wait is over; no I/O, never blocks.

        :raises WebIdProviderError: the refresh's error (or a timeout) when nothing usable is held
        """
        return self._refresher._outcome(self.job, self.state)

    def worth_own_attempt(self, error: BaseException) -> bool:
        """Whether a caller whose wait ended in ``error`` should make one attempt of its own:
        the refresh it waited for was another caller's and either hangs or was a single
        attempt (a retrying one might still succeed)."""
        if self.own:
            return False
        if isinstance(error, _StuckRefresh):
            return True
        return not self.hard and isinstance(error, Exception) and not _is_doomed(error)


class WebIdentityCredentials(WindowedDeferredCredentials):
    """botocore refreshable credentials with the latest STS result at ``.web_identity``."""

    def __init__(self, refresher: WebIdentityRefresher) -> None:
        super().__init__(refresh_using=refresher, method=METHOD, time_fetcher=refresher.clock)
        self._webid_refresher = refresher
        _credentials_objects.add(self)

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


def _is_doomed(exc: Exception) -> bool:
    """Whether the same request would fail the same way however often it is retried."""
    if isinstance(exc, ClockSkewError):
        return True
    if isinstance(exc, StsError) and exc.code == "ExpiredTokenException":
        return True  # raised after a re-read gave the same token: it will not change by itself
    return isinstance(exc, StsError) and not exc.retryable


class _StuckRefresh(WebIdProviderError):
    """A caller waited its whole bound for another caller's refresh (internal)."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
