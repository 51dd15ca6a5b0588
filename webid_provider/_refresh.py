"""The refresher: one procedure that decides, for every caller, what to serve and when to refresh.

botocore's windows are fixed (refresh 15 min before expiry, block at 10), so 900 s sessions
call STS on every request (boto/botocore#2189), any STS hiccup in the last 10 minutes fails
requests although the credentials in hand still work, and a slow STS call stalls every thread.
Ours (README, "Refresh and failure behaviour"): windows scale with each credential's lifetime
and the refresh time, drawn once with jitter by the process that obtained the credentials, is
stored with the cache entry (:mod:`webid_provider._policy`); while usable credentials are held
nobody waits (a due refresh runs in the background); a failed refresh keeps serving them and
backs off (:mod:`webid_provider._refresh_failures`); only a caller with nothing usable waits,
for a bounded time, and only then are STS errors retried.

**The procedure** (:meth:`WebIdentityRefresher._procedure`) is shared by botocore's
``refresh_using`` (:meth:`~WebIdentityRefresher.serve`), the one-shot
:meth:`~WebIdentityRefresher.get` of ``credential-process`` and the container endpoint, and the
async glue (:meth:`~WebIdentityRefresher.serve_from_memory`,
:meth:`~WebIdentityRefresher.serve_without_waiting`):

1. *memory*: the key's shared state alone may answer (:func:`~webid_provider._refresh_state.
   decide`: serve, back off, a refresh running, or one started now in the background);
2. *token*: read it and find its key; a token that cannot be read serves the usable
   credentials in hand (found through the key index by a new process), else raises;
3. *disk*: a new process adopts a usable entry, even one past its refresh time;
4. *decide again*; a caller who must wait joins the running refresh or claims one
   (:mod:`webid_provider._refresh_job`: entry, lock, entry again, STS, write) and waits for it
   (:class:`~webid_provider._refresh_wait.PendingRefresh`).

Every credentials object whose settings resolve to the same cache key shares one state and one
refresh (kedacore/keda#5177); keys follow the trust rule of :mod:`webid_provider._cache_key`.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Optional, Union

from webid_provider._cache import CredentialCache
from webid_provider._cache_key import KeyMaterial, settings_fingerprint
from webid_provider._clock import Clock, utc_now
from webid_provider._credentials import botocore_metadata
from webid_provider._errors import ConfigurationError, TokenSourceError
from webid_provider._margin import effective_margin, jittered
from webid_provider._policy import RefreshPolicy
from webid_provider._refresh_failures import replay_negative
from webid_provider._refresh_fetch import EntryFetcher
from webid_provider._refresh_job import Claim, JobRunner, RefreshJobs, run_in_thread
from webid_provider._refresh_state import KeyState, Move, Step, decide, registry
from webid_provider._refresh_wait import (
    REFRESH_POLL_SECONDS,
    Answer,
    PendingRefresh,
    serve_blocking,
)
from webid_provider._result import WebIdentityResult
from webid_provider._settings import WebIdentitySettings
from webid_provider._sts import RetryPolicy
from webid_provider._tokens import TokenSource, peek_claims

logger = logging.getLogger(__name__)

#: A caller with nothing usable waits at most this long beyond the lock and retry budgets.
_WAIT_SLACK_SECONDS = 5.0


@dataclass(frozen=True)
class _Request:
    """What one caller asks of the procedure."""

    #: the caller hands credentials to a consumer that refreshes on its own (``get()``)
    one_shot: bool = False
    #: one-shot only: the margin with this call's jitter (0: none applies)
    margin_seconds: float = 0.0
    #: one-shot only: the margin asked for, when one applies
    base_margin_seconds: float = 0.0
    #: run a refresh this caller starts in its own thread (it waits anyway)
    run_here: bool = True


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
        self._rng = rng or random.Random()
        self._fingerprint = settings_fingerprint(settings, endpoint=endpoint)
        self._key: Optional[str] = None
        self._jobs = RefreshJobs(
            settings,
            token_source,
            fetcher=EntryFetcher(
                cache=cache,
                sts_client=sts_client,
                read_token=token_source.read_token,
                clock=clock,
                policy=policy,
                retry_policy=retry_policy,
                rng=self._rng,
            ),
            endpoint=endpoint,
            clock=clock,
            policy=policy,
            rng=self._rng,
            run_job=run_job,
            current_key=lambda: self._key,
            switch_key=self._switch_key,
        )
        #: the credentials this refresher handed out last (``.web_identity``)
        self.latest: Optional[WebIdentityResult] = None

    @property
    def key(self) -> Optional[str]:
        """The cache key of the last token read (``None`` before the first use)."""
        return self._key

    # -- entry points --------------------------------------------------------------------

    def __call__(self) -> dict[str, Any]:
        """Return botocore credential metadata; raise only when nothing usable is left."""
        return self.botocore_metadata(self.serve())

    def botocore_metadata(self, answer: Answer) -> dict[str, Any]:
        """botocore credential metadata for an answer of :meth:`serve`, with the effective
        expiry; the async glue's ``refresh_using`` returns this too."""
        return botocore_metadata(answer, self.clock(), self.policy)

    def serve(self) -> Answer:
        """The credentials to use now and when to ask again.

        Blocks only when nothing usable is held, for a bounded time.
        """
        answer = self._serve_blocking(one_shot=False, min_remaining_seconds=0.0)
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
        issues for these settings (``duration_seconds``, else STS's default of one hour) are at
        most twice as long (:func:`~webid_provider._margin.effective_margin`): refreshing for
        it would cost an STS call per hand-out for little gain.

        :raises WebIdProviderError: only when nothing usable is left
        """
        result, _ = self._serve_blocking(one_shot=True, min_remaining_seconds=min_remaining_seconds)
        self.latest = result
        return result

    def serve_without_waiting(self) -> Union[Answer, PendingRefresh]:
        """:meth:`serve` for a caller that must not block a thread on a refresh.

        The async glue runs this in a helper thread: it does the I/O of :meth:`serve` (token,
        disk entry) but, where :meth:`serve` would wait for a refresh, starts the refresh as a
        background job (``run_job``) and returns it, to be awaited on the event loop. So no
        helper thread sits blocked on a refresh, however many coroutines wait for one.
        """
        prepared = self._procedure(_Request(run_here=False))
        if not isinstance(prepared, PendingRefresh):
            self.latest = prepared[0]
        return prepared

    def serve_from_memory(self) -> Optional[Answer]:
        """Step 1 of the procedure alone (no I/O, never blocks); ``None`` when I/O is needed.

        Starts a background refresh when one is due; I/O is needed on first use and when
        nothing usable is held.
        """
        key = self._known_key()
        if key is None:
            return None
        return self._take(self._move(registry.get(key), _Request()))

    def key_material(self, token: str) -> KeyMaterial:
        """The cache key inputs for ``token`` under these settings (the trust rule).

        :raises ConfigurationError: when ``provider_id`` is set for an OpenID Connect JWT
        """
        return self._jobs.key_material(token, peek_claims(token))

    # -- the procedure -------------------------------------------------------------------

    def _serve_blocking(self, *, one_shot: bool, min_remaining_seconds: float) -> Answer:
        """The procedure, waiting for the refresh it hands over (see :func:`serve_blocking`)."""
        return serve_blocking(
            lambda: self._procedure(self._request(one_shot, min_remaining_seconds)),
            role_arn=self.settings.role_arn,
        )

    def _request(self, one_shot: bool, min_remaining_seconds: float) -> _Request:
        if not one_shot:
            return _Request()
        # The margin for one hand-out: none for sessions too short to outlive it, else the
        # requested one plus jitter drawn per call (so a fleet's hosts spread).
        base = effective_margin(self.settings.duration_seconds, min_remaining_seconds)
        return _Request(
            one_shot=True, margin_seconds=jittered(base, self._rng), base_margin_seconds=base
        )

    def _procedure(self, request: _Request) -> Union[Answer, PendingRefresh]:
        """Memory, token, disk, decide again, wait (the module docstring's four steps)."""
        key = self._known_key()
        if key is not None:
            answer = self._take(self._move(registry.get(key), request))
            if answer is not None:
                return answer
        try:
            token, material = self._jobs.read_token()
        except (TokenSourceError, ConfigurationError) as exc:
            return self._serve_despite(exc)
        key = material.key()
        state = self._state_of(key)
        self._jobs.adopt_usable_disk_entry(state, key)
        move = self._move(state, request, token=token)
        if move.answer is not None:
            answer = self._take(move)
            assert answer is not None
            return answer
        return self._wait_for(move, request, material, token)

    def _known_key(self) -> Optional[str]:
        """This refresher's key; for a rotating source, the key its settings resolved to last
        in this process, so a new session is served without running the token source."""
        if self._key is None and self._fingerprint is not None:
            self._key = registry.recent_key(self._fingerprint)
        return self._key

    def _state_of(self, key: str) -> KeyState:
        """Make ``key`` this refresher's key and record it in the key index."""
        self._key = key
        if self._fingerprint is not None and registry.remember_key(self._fingerprint, key):
            self.cache.write_key_index(self._fingerprint, key)
        return registry.get(key)

    def _switch_key(self, key: str) -> KeyState:
        """A job found that the token now names another identity: follow it."""
        self._key = key
        return registry.get(key)

    def _move(self, state: KeyState, request: _Request, *, token: Optional[str] = None) -> Move:
        """Decide under the key's lock and take the bookkeeping of the step.

        Serving steps answer at once (START_REFRESH also claims the background job). A caller
        that must wait joins the running refresh or claims one, which needs the token: without
        it the move has neither answer nor job, and the caller reads the token first.
        """
        now = self.clock()
        with state.lock:
            self._forget_stuck_job(state)
            step = decide(
                state,
                now,
                self.policy,
                one_shot=request.one_shot,
                margin_seconds=request.margin_seconds,
            )
            if step.serves:
                assert state.result is not None
                answer = (state.result, self._ask_at(state, step, now))
                if step is Step.START_REFRESH:
                    return Move(state, answer, state.claim_job(hard=False), own=True)
                return Move(state, answer)
            if token is None:
                return Move(state)
            if step is Step.FETCH:
                replay_negative(state, token, now)
            if state.job is not None:
                return Move(state, job=state.job, hard=state.job_hard)
            hard = step is Step.FETCH
            return Move(state, job=state.claim_job(hard=hard), own=True, hard=hard)

    def _ask_at(self, state: KeyState, step: Step, now: datetime) -> datetime:
        """When a caller served by ``step`` should ask again; caller holds ``state.lock``."""
        if step is Step.SERVE:
            assert state.refresh_at is not None
            return state.refresh_at
        if step is Step.BACK_OFF:
            assert state.next_attempt_at is not None
            return state.next_attempt_at
        return now + timedelta(seconds=REFRESH_POLL_SECONDS)  # a refresh runs: check back soon

    def _take(self, move: Move) -> Optional[Answer]:
        """The answer of a serving move, after starting its background refresh (START_REFRESH);
        ``None`` for a move that waits."""
        if move.answer is None or move.job is None:
            return move.answer
        state = move.state
        self._jobs.start(Claim(move.job, state, hard=False))
        now = self.clock()
        with state.lock:  # a job that ran inline has already landed
            if decide(state, now, self.policy) is Step.SERVE and state.result is not None:
                return state.result, self._ask_at(state, Step.SERVE, now)
        logger.debug("serving credentials in hand while %s refreshes", self.settings.role_arn)
        return move.answer

    def _wait_for(
        self, move: Move, request: _Request, material: KeyMaterial, token: str
    ) -> PendingRefresh:
        """Start the refresh this caller claimed (here when it waits anyway), and hand over
        the refresh to wait for."""
        assert move.job is not None
        state = move.state
        if move.own:
            claim = Claim(move.job, state, move.hard, material, token, request.margin_seconds)
            self._jobs.start(claim, here=request.run_here)
        return PendingRefresh(
            move.job,
            state,
            timeout_seconds=self._wait_limit_seconds(),
            policy=self.policy,
            clock=self.clock,
            role_arn=self.settings.role_arn,
            base_margin_seconds=request.base_margin_seconds,
            own=move.own,
            hard=move.hard,
        )

    def _serve_despite(self, exc: Exception) -> Answer:
        """The token could not be read: keep serving usable credentials, else raise.

        A new process finds the key through the disk index its predecessors wrote, so a token
        source that is down does not fail it while a usable entry is on disk.
        """
        if self._key is None and self._fingerprint is not None:
            self._key = self.cache.read_key_index(self._fingerprint)
        if self._key is None:
            raise exc
        state = registry.get(self._key)
        self._jobs.adopt_usable_disk_entry(state, self._key)
        self._jobs.record_failure(state, exc, token=None)
        with state.lock:
            held = state.result
            if held is None or not self.policy.usable(held, self.clock()):
                raise exc
            assert state.next_attempt_at is not None
            return held, state.next_attempt_at

    def _forget_stuck_job(self, state: KeyState) -> None:
        """Caller holds ``state.lock``; see :meth:`KeyState.forget_job_older_than`."""
        limit = self._wait_limit_seconds()
        if state.forget_job_older_than(limit):
            logger.warning(
                "a refresh for %s has run for over %g s; starting another",
                self.settings.role_arn,
                limit,
            )

    def _wait_limit_seconds(self) -> float:
        return (
            self.cache.lock_timeout_seconds
            + self.retry_policy.max_total_seconds
            + _WAIT_SLACK_SECONDS
        )
