"""Refresh jobs: read the token, fetch credentials, and land them in the key's shared state.

A job is claimed under the key's lock by the refresher (:mod:`webid_provider._refresh`), which
decides *when* to refresh; this module does the refresh itself, in the caller's thread or with
the refresher's job runner (a background thread). A job settles its ``Future`` whatever
happens, so waiters never hang on it; its failure is recorded in the key's state
(:mod:`webid_provider._refresh_failures`: back-off, or a replayed error). Its result becomes the
credentials in hand, with the refresh time its entry carries.

Tokens are read here too: an expired JWT is refused locally (after a leeway), and
``provider_id`` with a JWT is a configuration error, before any STS call.
"""

from __future__ import annotations

import logging
import random
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Optional

from webid_provider._cache import CacheEntry
from webid_provider._cache_key import KeyMaterial, key_material
from webid_provider._clock import Clock
from webid_provider._errors import (
    ClockSkewError,
    ConfigurationError,
    StsError,
    TokenSourceError,
    WebIdProviderError,
)
from webid_provider._jwt import TokenClaims
from webid_provider._policy import RefreshPolicy
from webid_provider._refresh_failures import record_failure
from webid_provider._refresh_fetch import EntryFetcher
from webid_provider._refresh_state import KeyState
from webid_provider._result import WebIdentityResult
from webid_provider._settings import WebIdentitySettings
from webid_provider._tokens import (
    TokenSource,
    peek_claims,
    refuse_expired,
    refuse_provider_id_with_jwt,
)

logger = logging.getLogger(__name__)

#: Runs a refresh job; the default starts a daemon thread. Tests pass ``run_inline``.
JobRunner = Callable[[Callable[[], None]], None]
#: A JWT is refused locally only once its ``exp`` is this far past by the local clock.
EXPIRED_TOKEN_LEEWAY_SECONDS = 300.0


def run_in_thread(job: Callable[[], None]) -> None:
    """The default :data:`JobRunner`: a daemon thread, so a hung STS never blocks exit."""
    threading.Thread(target=job, name="webid-provider-refresh", daemon=True).start()


def run_inline(job: Callable[[], None]) -> None:
    """A :data:`JobRunner` that runs the job before returning (deterministic tests)."""
    job()


@dataclass(frozen=True)
class Claim:
    """A refresh claimed under its key's lock (:meth:`KeyState.claim_job`), to be run once.

    :param hard: retry transient STS errors (nothing usable is held), else one attempt
    :param material: the key inputs of ``token`` as the claimer read them; ``None``: the job
        reads the token itself
    :param margin_seconds: the one-shot margin an adopted entry must have left
    """

    job: Future[WebIdentityResult]
    state: KeyState
    hard: bool
    material: Optional[KeyMaterial] = None
    token: Optional[str] = None
    margin_seconds: float = 0.0


class RefreshJobs:
    """The refresh jobs of one configuration (one refresher). Thread-safe: the key states'
    locks guard what jobs change.

    :param current_key: the refresher's key now
    :param switch_key: make a key the refresher's and return its state (a rotated token that
        names another identity)
    """

    def __init__(
        self,
        settings: WebIdentitySettings,
        token_source: TokenSource,
        *,
        fetcher: EntryFetcher,
        endpoint: str,
        clock: Clock,
        policy: RefreshPolicy,
        rng: random.Random,
        run_job: JobRunner,
        current_key: Callable[[], Optional[str]],
        switch_key: Callable[[str], KeyState],
    ) -> None:
        self._settings = settings
        self._token_source = token_source
        self._fetcher = fetcher
        self._endpoint = endpoint
        self._clock = clock
        self._policy = policy
        self._rng = rng
        self._run_job = run_job
        self._current_key = current_key
        self._switch_key = switch_key

    def start(self, claim: Claim, *, here: bool = False) -> None:
        """Run a claimed refresh: in this thread (``here``: its caller waits anyway), else with
        ``run_job`` (a background thread by default)."""
        if here:
            self._execute(claim)
            return
        try:
            self._run_job(lambda: self._execute(claim))
        except RuntimeError as exc:  # no thread could be started (interpreter shutting down)
            with claim.state.lock:
                claim.state.end_job(claim.job)
            claim.job.set_exception(WebIdProviderError(f"cannot start a refresh: {exc}"))

    def _execute(self, claim: Claim) -> None:
        """Run one refresh and settle its job; failures are recorded in the key's state."""
        try:
            result = self._refresh(claim)
        except BaseException as exc:
            with claim.state.lock:
                claim.state.end_job(claim.job)
            claim.job.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        with claim.state.lock:
            claim.state.end_job(claim.job)
        claim.job.set_result(result)

    def _refresh(self, claim: Claim) -> WebIdentityResult:
        state, material, token = claim.state, claim.material, claim.token
        if material is None or token is None:
            try:
                token, material = self.read_token()
            except (TokenSourceError, ConfigurationError) as exc:
                self.record_failure(state, exc, token=None)
                raise
        key = material.key()
        if key != self._current_key():
            # The token now names another identity: the refresh belongs to that key's state.
            logger.info("the web identity token changed identity; switching cache entries")
            state = self._switch_key(key)
        with state.lock:
            held = state.result
        try:
            fetched = self._fetcher.fetch(
                material,
                token,
                held=held,
                hard=claim.hard,
                min_remaining_seconds=claim.margin_seconds,
            )
        except (StsError, TokenSourceError, ClockSkewError) as exc:
            self.record_failure(state, exc, token=token, hard=claim.hard)
            raise
        return self._adopt(state, *fetched)

    def _adopt(self, state: KeyState, entry: CacheEntry, source: str) -> WebIdentityResult:
        """Make a fetched entry the key's credentials in hand; the back-off ends."""
        result = entry.result
        with state.lock:
            state.result = result
            state.refresh_at = self._refresh_at_of(entry)
            state.failures = 0
            state.next_attempt_at = None
            state.negative_until = None
            refresh_at = state.refresh_at
        logger.info(
            "credentials for %s from %s; valid until %s, refresh at %s",
            self._settings.role_arn,
            source,
            result.expiration.isoformat(),
            refresh_at.isoformat(),
        )
        return result

    def _refresh_at_of(self, entry: CacheEntry) -> datetime:
        """The refresh time stored with ``entry``, else one drawn now (older entries)."""
        return entry.refresh_at or self._policy.refresh_at(entry.result, self._clock(), self._rng)

    def adopt_usable_disk_entry(self, state: KeyState, key: str) -> None:
        """Static stability for a new process: a usable disk entry beats nothing, even if due."""
        with state.lock:
            if state.result is not None and self._policy.usable(state.result, self._clock()):
                return
        entry = self._fetcher.usable_entry(key)
        if entry is None:
            return
        with state.lock:
            held = state.result
            if held is None or entry.result.expiration > held.expiration:
                state.result = entry.result
                state.refresh_at = self._refresh_at_of(entry)
                logger.debug("credentials for %s found on disk", self._settings.role_arn)

    def record_failure(
        self, state: KeyState, exc: Exception, *, token: Optional[str], hard: bool = False
    ) -> None:
        record_failure(
            state,
            exc,
            token=token,
            hard=hard,
            now=self._clock(),
            policy=self._policy,
            rng=self._rng,
            role_arn=self._settings.role_arn,
        )

    def read_token(self) -> tuple[str, KeyMaterial]:
        """The current token and its key material.

        :raises TokenSourceError: when the token cannot be read, or is a JWT that has expired
        :raises ConfigurationError: when ``provider_id`` is set for an OpenID Connect JWT
        """
        token = self._token_source.read_token()
        claims = peek_claims(token)
        refuse_expired(
            claims,
            self._clock(),
            description=self._token_source.description,
            leeway_seconds=EXPIRED_TOKEN_LEEWAY_SECONDS,
            path=getattr(self._token_source, "path", None),
        )
        return token, self.key_material(token, claims)

    def key_material(self, token: str, claims: Optional[TokenClaims]) -> KeyMaterial:
        """The key inputs for ``token`` (the trust rule of :mod:`webid_provider._cache_key`).

        :raises ConfigurationError: when ``provider_id`` is set for an OpenID Connect JWT
        """
        refuse_provider_id_with_jwt(
            self._settings.provider_id, claims, description=self._token_source.description
        )
        return key_material(self._settings, token, claims, endpoint=self._endpoint)
