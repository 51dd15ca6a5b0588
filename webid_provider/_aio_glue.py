"""aiobotocore sessions (and so aioboto3 and s3fs) on the same refresher as the sync path.

There is one refresh procedure (:class:`~webid_provider._refresh.WebIdentityRefresher`: one
in-process state per cache key, one cache entry format, one file lock, one policy). This
module only lets an event loop use it without ever blocking:

* **decisions** run on the loop: ``serve_from_memory()`` reads the key's shared state under a
  lock that is never held over I/O, and starts a background refresh job when one is due;
* **I/O** (token file or command, cache files) runs in a helper thread
  (``serve_without_waiting()`` in ``asyncio.to_thread``), which never waits for a refresh: when
  one is needed it starts it as a job and hands back its future;
* **waiting** for a refresh happens on the loop, on that future (``asyncio.wrap_future``), so
  200 coroutines waiting for one refresh hold no threads;
* **the refresh job** (read entry, file lock, read again, STS, write) runs in its own thread,
  exactly as for the sync path. Its STS call uses aiobotocore's async client, run to
  completion on a private event loop in that thread (:class:`OffLoopStsClient`).

Why a private loop rather than the caller's: the job may outlive the caller (a cancelled
coroutine, an ``asyncio.run`` that returns, s3fs's loop thread shutting down) and may be
shared by sync callers; on a private loop it neither depends on the caller's loop being alive
nor puts work (client creation, model loading, response parsing) on it.

A sync session and an async session in one process share state (one STS call between them),
and a sync process and an async process on one host share the cache (one STS call between
them), because the key, the entry and the registry are the sync path's own.

Cancelling a coroutine that waits for a refresh cancels only its wait: the job finishes in its
thread and releases the file lock when it ends, and its cache write is atomic (temporary file
and rename), so no partial entry exists at any moment.

Security: as for the sync path; nothing here sees a token except the job, which hands it to
STS only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Optional

from aiobotocore.config import AioConfig
from aiobotocore.utils import create_nested_client

from webid_provider._aiobotocore import WindowedAioDeferredCredentials, own_credential_resolver
from webid_provider._chain import chain_position
from webid_provider._clock import Clock, utc_now
from webid_provider._credentials import METHOD
from webid_provider._errors import StsError, WebIdProviderError
from webid_provider._policy import RefreshPolicy
from webid_provider._provider import WebIdentityProvider
from webid_provider._refresh import WebIdentityRefresher
from webid_provider._refresh_wait import PendingRefresh
from webid_provider._result import WebIdentityResult
from webid_provider._sts import RetryPolicy

logger = logging.getLogger(__name__)


class AsyncRefresh:
    """aiobotocore's ``refresh_using`` over a :class:`WebIdentityRefresher`: the same answers
    as the sync ``refresh_using``, awaited.

    aiobotocore's credentials hold an ``asyncio.Lock`` and await this when the effective
    expiry says a decision is due, exactly as botocore calls the refresher itself.
    """

    def __init__(self, refresher: WebIdentityRefresher) -> None:
        self._refresher = refresher

    async def __call__(self) -> dict[str, Any]:
        refresher = self._refresher
        answer = refresher.serve_from_memory()
        if answer is None:
            answer = await serve_off_loop(refresher)
        refresher.latest = answer[0]
        return refresher.botocore_metadata(answer)


async def serve_off_loop(refresher: WebIdentityRefresher) -> tuple[WebIdentityResult, datetime]:
    """:meth:`WebIdentityRefresher.serve` for a coroutine: I/O in a helper thread (the loop's
    default executor), any wait for a refresh on the loop. Raises what ``serve()`` raises.

    :raises WebIdProviderError: when not running on an asyncio event loop (trio)
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError as exc:
        raise WebIdProviderError(
            "webid_provider's aiobotocore credentials need an asyncio event loop; this "
            "coroutine runs on another one (trio is not supported)"
        ) from exc
    prepared = await asyncio.to_thread(refresher.serve_without_waiting)
    if not isinstance(prepared, PendingRefresh):
        return prepared
    waiter = asyncio.wrap_future(prepared.job)
    # A cancelled caller leaves the waiter behind; fetch its outcome so asyncio does not log
    # "exception was never retrieved" (the refresh's failure is in the key's state anyway).
    waiter.add_done_callback(_retrieve_outcome)
    await asyncio.wait({waiter}, timeout=prepared.timeout_seconds)
    return prepared.outcome()


def _retrieve_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class AioWebIdentityCredentials(WindowedAioDeferredCredentials):
    """aiobotocore refreshable credentials fed by the shared refresher.

    ``await credentials.get_frozen_credentials()`` as for any aiobotocore credentials;
    ``await credentials.get_web_identity()`` for the latest STS result with every output field.
    """

    def __init__(self, refresher: WebIdentityRefresher) -> None:
        super().__init__(
            refresh_using=AsyncRefresh(refresher), method=METHOD, time_fetcher=refresher.clock
        )
        self._webid_refresher = refresher

    async def get_web_identity(self) -> WebIdentityResult:
        """The latest AssumeRoleWithWebIdentity result, fetching it first if needed."""
        await self.get_frozen_credentials()
        latest = self._webid_refresher.latest
        assert latest is not None  # get_frozen_credentials raised otherwise
        return latest


class AioWebIdentityProvider:
    """The credential provider in an aiobotocore session's chain (its ``load`` is awaited).

    Settings, token source, cache and refresher come from the sync
    :class:`~webid_provider._provider.WebIdentityProvider` for the same session, so both paths
    resolve the same options the same way; only the credentials object differs.
    """

    METHOD = METHOD
    CANONICAL_NAME = WebIdentityProvider.CANONICAL_NAME

    def __init__(
        self,
        session: Any,
        options: Mapping[str, Any],
        *,
        clock: Clock = utc_now,
        policy: Optional[RefreshPolicy] = None,
        retry_policy: Optional[RetryPolicy] = None,
        environ: Optional[Mapping[str, str]] = None,
    ) -> None:
        self._provider = WebIdentityProvider(
            session,
            options,
            clock=clock,
            policy=policy,
            retry_policy=retry_policy,
            environ=environ,
        )

    async def load(self) -> Optional[AioWebIdentityCredentials]:
        """Credentials, or ``None`` when web identity is not configured (the chain goes on).

        Reads settings only (environment, the already loaded profile); no token, no network.

        :raises ConfigurationError: for invalid settings, as the sync provider does
        """
        settings = self._provider.resolve()
        if settings is None:
            return None
        logger.debug(
            "web identity configured for an aiobotocore session: role %s, %s",
            settings.role_arn,
            settings.token.describe(),
        )
        return AioWebIdentityCredentials(self._provider.refresher(settings))


def build_resolver(session: Any, options: Mapping[str, Any]) -> Any:
    """aiobotocore's own resolver for ``session`` with our provider where the sync path puts
    it (see :mod:`webid_provider._chain`): just before ``assume-role``, or first when a token
    source is passed in code. aiobotocore's own web identity provider stays in the chain after
    ours, as botocore's does in the sync chain (code looks it up by name); it never answers in
    our place.

    Not mirrored from the sync chain: role chaining through a web identity ``source_profile``
    stays aiobotocore's own (its ``AioAssumeRoleProvider`` is left as it is).
    """
    resolver = own_credential_resolver(session)
    position = chain_position(resolver.providers, options)
    resolver.providers.insert(position, AioWebIdentityProvider(session, options))
    return resolver


class OffLoopStsClient:
    """The STS client a refresh job calls for an aiobotocore session.

    ``assume_role_with_web_identity(**params)`` is synchronous, as the refresher expects, and
    runs aiobotocore's async STS client (built from the user's session, so its region,
    endpoint, proxies, CA bundle and HTTP backend apply) on a private event loop in the calling
    thread — the job's. Unsigned and single-attempt, like the sync client: retries are the
    refresher's.
    """

    def __init__(
        self,
        session: Any,
        *,
        region_name: Optional[str],
        endpoint_url: Optional[str] = None,
        config_options: Mapping[str, Any],
    ) -> None:
        self._session = session
        self._region_name = region_name
        self._endpoint_url = endpoint_url
        self._config_options = dict(config_options)

    def assume_role_with_web_identity(self, **params: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise StsError(
                "AssumeRoleWithWebIdentity for an aiobotocore session was called on an event "
                "loop's thread, where waiting for it would stall the loop; refresh jobs must run "
                "in their own thread (the refresher's run_job)",
                code="CalledOnEventLoop",
                retryable=False,
            )
        return asyncio.run(self._call(params))

    async def _call(self, params: Mapping[str, Any]) -> Any:
        config = AioConfig(**self._config_options)
        async with create_nested_client(
            self._session,
            "sts",
            region_name=self._region_name,
            endpoint_url=self._endpoint_url,
            config=config,
        ) as client:
            return await client.assume_role_with_web_identity(**params)
