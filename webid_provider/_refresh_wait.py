"""A refresh a caller with nothing usable waits for, blocking or on an event loop.

The refresher (:mod:`webid_provider._refresh`) hands a :class:`PendingRefresh` to a caller
whose step is to wait: the sync path blocks on :meth:`PendingRefresh.wait`, the async glue
(:mod:`webid_provider._aio_glue`) awaits :attr:`PendingRefresh.job` on its event loop, and both
take :meth:`PendingRefresh.outcome` once the wait is over. The wait is bounded (README, "No
stalls"): the lock timeout plus the retry budget plus a little slack.
"""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timedelta
from typing import Callable, Union

from webid_provider._clock import Clock
from webid_provider._errors import WebIdProviderError
from webid_provider._margin import MIN_SESSION_MARGINS
from webid_provider._policy import RefreshPolicy
from webid_provider._refresh_failures import StuckRefresh, is_doomed
from webid_provider._refresh_state import KeyState
from webid_provider._result import WebIdentityResult

logger = logging.getLogger(__name__)

#: While a refresh runs, botocore is asked to check back this often (a memory read).
REFRESH_POLL_SECONDS = 1.0
#: The credentials to use now, and when to ask again.
Answer = tuple[WebIdentityResult, datetime]


class PendingRefresh:
    """A refresh a caller with nothing usable must wait for: wait for :attr:`job` at most
    :attr:`timeout_seconds` — blocking with :meth:`wait`, or on an event loop — then take
    :meth:`outcome`.

    :param state: the key's shared state, whose credentials serve if the refresh fails
    :param base_margin_seconds: the one-shot margin asked for, when one applies (``get()``)
    :param own: whether this caller started the refresh (else it waits for another caller's)
    :param hard: whether the refresh retries, or is a single background attempt
    """

    def __init__(
        self,
        job: Future[WebIdentityResult],
        state: KeyState,
        *,
        timeout_seconds: float,
        policy: RefreshPolicy,
        clock: Clock,
        role_arn: str,
        base_margin_seconds: float = 0.0,
        own: bool = True,
        hard: bool = True,
    ) -> None:
        #: Settled by the refresh job's thread; never cancelled (it is running).
        self.job = job
        self.state = state
        self.timeout_seconds = timeout_seconds
        self.base_margin_seconds = base_margin_seconds
        self.own = own
        self.hard = hard
        self._policy = policy
        self._clock = clock
        self._role_arn = role_arn

    def wait(self) -> Answer:
        """Block until the job settles or the wait times out, then :meth:`outcome`."""
        with contextlib.suppress(FutureTimeout, WebIdProviderError):  # judged by outcome()
            self.job.result(timeout=self.timeout_seconds)
        return self.outcome()

    def outcome(self) -> Answer:
        """The credentials to use once the wait is over: the job's result; on failure or
        timeout the usable credentials in hand. No I/O, never blocks.

        :raises WebIdProviderError: the refresh's error (or a timeout) when nothing usable is held
        """
        if not self.job.done():
            failure: BaseException = StuckRefresh(
                f"waited {self.timeout_seconds:g} s for credentials for {self._role_arn}; the "
                "refresh is still running"
            )
        else:
            error = self.job.exception()
            if error is None:
                result = self.job.result()
                with self.state.lock:
                    return result, self.state.refresh_at or self._clock()
            if not isinstance(error, WebIdProviderError):
                raise error
            failure = error
        now = self._clock()
        with self.state.lock:
            held = self.state.result
            if held is not None and self._policy.usable(held, now):
                ask_at = self.state.next_attempt_at or now + timedelta(seconds=REFRESH_POLL_SECONDS)
                return held, ask_at
        raise failure

    def worth_own_attempt(self, error: BaseException) -> bool:
        """Whether a caller whose wait ended in ``error`` should make one attempt of its own:
        the refresh it waited for was another caller's and either hangs or was a single
        attempt (a retrying one might still succeed)."""
        if self.own:
            return False
        if isinstance(error, StuckRefresh):
            return True
        return not self.hard and isinstance(error, Exception) and not is_doomed(error)

    def abandon(self) -> None:
        """Stop treating :attr:`job` as the key's running refresh (it hangs, or failed as a
        single attempt), so the caller's own attempt can claim a new one."""
        with self.state.lock:
            self.state.end_job(self.job)

    def note_margin_unmet(self, result: WebIdentityResult) -> None:
        """After a one-shot refresh: whether STS issues sessions too short to keep the margin
        (shorter than the settings promise). Asking again before the refresh time would then
        cost an STS call per hand-out for nothing."""
        with self.state.lock:
            self.state.margin_unmet = (
                result.lifetime_seconds <= MIN_SESSION_MARGINS * self.base_margin_seconds
            )


def serve_blocking(
    procedure: Callable[[], Union[Answer, PendingRefresh]], *, role_arn: str
) -> Answer:
    """Run the refresher's ``procedure``; when it hands over a refresh, wait for it.

    When the refresh waited for was another caller's and it either outlived every bound (a
    token source or STS that hangs) or was a single background attempt that failed, this
    caller makes one full attempt of its own (the procedure again) rather than fail or wait
    forever.
    """
    prepared = procedure()
    if not isinstance(prepared, PendingRefresh):
        return prepared
    try:
        answer = prepared.wait()
    except WebIdProviderError as exc:
        if not prepared.worth_own_attempt(exc):
            raise
        prepared.abandon()
        logger.info("making an own attempt for %s after: %s", role_arn, exc)
        retried = procedure()
        if not isinstance(retried, PendingRefresh):
            return retried
        prepared = retried
        answer = prepared.wait()
    if prepared.base_margin_seconds > 0:
        prepared.note_margin_unmet(answer[0])
    return answer
