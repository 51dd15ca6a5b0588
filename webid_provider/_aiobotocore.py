"""The one place that touches aiobotocore private attributes, each with the reason.

This is :mod:`webid_provider._botocore`'s counterpart for aiobotocore (imported only by the
async glue, so only when aiobotocore is in use). aiobotocore offers no public way to (1) give
its deferred refreshable credentials refresh windows, or (2) build the credential resolver an
``AioSession`` would build for itself.
"""

from __future__ import annotations

from typing import Any

from aiobotocore.credentials import AioDeferredRefreshableCredentials

from webid_provider._botocore import BOTOCORE_ADVISORY_SECONDS, BOTOCORE_MANDATORY_SECONDS


class WindowedAioDeferredCredentials(AioDeferredRefreshableCredentials):  # type: ignore[misc]  # untyped
    """aiobotocore's deferred credentials with the same small windows as the sync ones.

    aiobotocore's async ``_refresh`` reads the windows from these class attributes, exactly as
    botocore's does (see :class:`webid_provider._botocore.WindowedDeferredCredentials`), so the
    refresher's effective expiry means the same thing on both paths.
    """

    _advisory_refresh_timeout = BOTOCORE_ADVISORY_SECONDS
    _mandatory_refresh_timeout = BOTOCORE_MANDATORY_SECONDS


def own_credential_resolver(session: Any) -> Any:
    """The resolver ``session`` (an ``AioSession``) would build for itself.

    ``AioSession._create_credential_resolver`` is what aiobotocore registers as the session's
    ``credential_provider`` component: it passes the region of the first client and, in
    aiobotocore 3, the session's async primitives (asyncio or anyio providers). Calling it,
    rather than rebuilding its arguments, keeps every other source in the chain exactly where
    and as aiobotocore put it.
    """
    return session._create_credential_resolver()
