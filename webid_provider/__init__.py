"""AWS credentials from STS AssumeRoleWithWebIdentity for boto3/botocore, kept fresh.

The public API is exactly ``__all__`` plus the ``webid_provider.testing`` package; every other
name may change without notice.
"""

from __future__ import annotations

from webid_provider._aio import aioboto3_session
from webid_provider.errors import (
    ClockSkewError,
    ConfigurationError,
    StsError,
    TokenSourceError,
    WebIdProviderError,
)
from webid_provider.policy import RefreshPolicy
from webid_provider.provider import WebIdentityProvider, install, register, session, unregister
from webid_provider.refresh import WebIdentityCredentials
from webid_provider.result import AssumedRoleUser, WebIdentityResult

__version__ = "0.1.0"

__all__ = [
    "AssumedRoleUser",
    "ClockSkewError",
    "ConfigurationError",
    "RefreshPolicy",
    "StsError",
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
