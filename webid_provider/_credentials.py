"""The glue to botocore's refresh machinery: effective expiry, and the credentials class.

botocore's ``DeferredRefreshableCredentials`` keeps its per-object lock and asks its
``refresh_using`` callable when the expiry it was given comes near. We hand it an *effective*
expiry — the next instant we want to be asked plus botocore's own small margins
(:class:`~webid_provider._botocore.WindowedDeferredCredentials`) — so botocore calls the
refresher exactly when a decision is due and never signs with credentials past our stop point.
The async glue reports the same metadata to aiobotocore's credentials.

A forked child gets botocore's locks of our credentials objects reset: a thread of the parent
may have held one at fork time, and it does not exist in the child.
"""

from __future__ import annotations

import os
import weakref
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from webid_provider._botocore import (
    BOTOCORE_ADVISORY_SECONDS,
    BOTOCORE_MANDATORY_SECONDS,
    WindowedDeferredCredentials,
    reset_refresh_lock,
)
from webid_provider._policy import RefreshPolicy
from webid_provider._result import WebIdentityResult

if TYPE_CHECKING:
    from webid_provider._refresh import WebIdentityRefresher

METHOD = "webid-provider"

# We report "next instant we want to be asked + ADVISORY" as the expiry, which leaves one
# second of non-blocking refresh before botocore makes threads wait for the refreshing one.
_NON_BLOCKING_SECONDS = BOTOCORE_ADVISORY_SECONDS - BOTOCORE_MANDATORY_SECONDS


def effective_expiry(
    result: WebIdentityResult, ask_at: datetime, now: datetime, policy: RefreshPolicy
) -> datetime:
    """The expiry to report to botocore so it asks at ``ask_at`` and never past our stop."""
    latest = result.expiration - timedelta(
        seconds=policy.stop_seconds(result) + _NON_BLOCKING_SECONDS
    )
    # Never later than ``latest``, even when that has passed: botocore then blocks every
    # thread from our stop point on, instead of signing with the old credentials.
    ask = min(max(ask_at, now), latest)
    return ask + timedelta(seconds=BOTOCORE_ADVISORY_SECONDS)


def botocore_metadata(
    answer: tuple[WebIdentityResult, datetime], now: datetime, policy: RefreshPolicy
) -> dict[str, Any]:
    """botocore credential metadata for a refresher's answer (credentials, when to ask again)."""
    result, ask_at = answer
    return result.to_botocore_metadata(expiry_time=effective_expiry(result, ask_at, now, policy))


_credentials_objects: weakref.WeakSet[WebIdentityCredentials] = weakref.WeakSet()


def _reset_refresh_locks_in_child() -> None:
    # A thread of the parent may have been inside botocore's refresh (holding the object's
    # lock) at fork time; that thread does not exist here, so the lock would never be freed.
    for credentials in list(_credentials_objects):
        reset_refresh_lock(credentials)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_refresh_locks_in_child)


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
