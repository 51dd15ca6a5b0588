"""AWS credentials from STS AssumeRoleWithWebIdentity for boto3/botocore, kept fresh.

The public API is exactly ``__all__`` plus the ``webid_provider.testing`` package; every other
name may change without notice.

The public names are imported on first use (PEP 562): ``import webid_provider`` alone imports
no botocore, so the ``webid-provider`` command can answer ``credential-process`` from a warm
cache, and ``--version``, without paying for botocore's import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from webid_provider import _lazy

if TYPE_CHECKING:
    from webid_provider._aio import aioboto3_session
    from webid_provider._credentials import WebIdentityCredentials
    from webid_provider._errors import (
        ClockSkewError,
        ConfigurationError,
        StsError,
        StsServiceError,
        TokenSourceError,
        WebIdProviderError,
    )
    from webid_provider._policy import RefreshPolicy
    from webid_provider._provider import WebIdentityProvider
    from webid_provider._register import install, register, session, unregister
    from webid_provider._result import AssumedRoleUser, WebIdentityResult

__version__ = "0.1.0"

__all__ = [
    "AssumedRoleUser",
    "ClockSkewError",
    "ConfigurationError",
    "RefreshPolicy",
    "StsError",
    "StsServiceError",
    "TokenSourceError",
    "WebIdProviderError",
    "WebIdentityCredentials",
    "WebIdentityProvider",
    "WebIdentityResult",
    "__version__",
    "aioboto3_session",
    "install",
    "register",
    "session",
    "unregister",
]

#: public name -> the module that defines it (the TYPE_CHECKING imports above, for importing)
_LAZY = {
    "AssumedRoleUser": "webid_provider._result",
    "ClockSkewError": "webid_provider._errors",
    "ConfigurationError": "webid_provider._errors",
    "RefreshPolicy": "webid_provider._policy",
    "StsError": "webid_provider._errors",
    "StsServiceError": "webid_provider._errors",
    "TokenSourceError": "webid_provider._errors",
    "WebIdProviderError": "webid_provider._errors",
    "WebIdentityCredentials": "webid_provider._credentials",
    "WebIdentityProvider": "webid_provider._provider",
    "WebIdentityResult": "webid_provider._result",
    "aioboto3_session": "webid_provider._aio",
    "install": "webid_provider._register",
    "register": "webid_provider._register",
    "session": "webid_provider._register",
    "unregister": "webid_provider._register",
}


def __getattr__(name: str) -> Any:
    return _lazy.load(globals(), _LAZY, name)


def __dir__() -> list[str]:
    return _lazy.names(globals(), __all__)
