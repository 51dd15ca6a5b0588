"""The exceptions ``webid_provider`` raises.

Every error is a :class:`WebIdProviderError`, which is itself a botocore ``BotoCoreError`` so
code that already catches botocore errors around ``boto3`` calls keeps working::

    BotoCoreError                             (botocore)
    └── WebIdProviderError                    base class; the one thing callers catch
        ├── ConfigurationError(ValueError)    bad role ARN, bad duration, conflicting sources
        ├── TokenSourceError                  token missing, unreadable, command failed
        ├── StsError                          STS rejected the exchange; .code, .retryable
        └── ClockSkewError                    STS's credentials are already unusable by this
                                              host's clock; .skew_seconds

``CacheError`` is internal: the cache never fails credential loading (an unusable directory
degrades to memory with a warning, a stuck lock is waited on for a bounded time), so no cache
exception reaches callers.

Security: messages never contain a token, a secret key or a session token. Callers build
messages from field names, paths, STS error codes and STS messages (which never echo secrets).
"""

from __future__ import annotations

from typing import Any, Optional

from botocore.exceptions import BotoCoreError


class WebIdProviderError(BotoCoreError):
    """Base class of every error this package raises."""

    def __init__(self, message: str) -> None:
        # BotoCoreError.__init__ formats ``fmt`` with kwargs; we carry a ready message instead.
        Exception.__init__(self, message)
        self.message = message
        self.kwargs: dict[str, Any] = {}

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.message,))


class ConfigurationError(WebIdProviderError, ValueError):
    """A setting is missing or invalid; raised before any network call.

    :param field: the option, environment variable or profile key at fault
    """

    def __init__(self, message: str, *, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.__class__, self.message, {"field": self.field}))


class TokenSourceError(WebIdProviderError):
    """The web identity token could not be obtained from its source.

    :param path: the token file, when the source is a file
    :param retryable: whether a later attempt may succeed (a token command that ran and failed
        or timed out); ``False`` for what needs fixing first (a missing or non-executable
        command, a missing or malformed token file)
    """

    def __init__(
        self, message: str, *, path: Optional[str] = None, retryable: bool = False
    ) -> None:
        super().__init__(message)
        self.path = path
        self.retryable = retryable

    def __reduce__(self) -> tuple[Any, ...]:
        attrs = {"path": self.path, "retryable": self.retryable}
        return (_rebuild, (self.__class__, self.message, attrs))


class StsError(WebIdProviderError):
    """STS refused or failed the AssumeRoleWithWebIdentity call.

    :param code: the STS error code (``AccessDenied``, ``InvalidIdentityToken``...), or the
        name of the connection error
    :param retryable: whether a later attempt may succeed
    :param request_id: STS's request id, for AWS support
    :param http_status: the HTTP status of the response, if one arrived
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        retryable: bool,
        request_id: Optional[str] = None,
        http_status: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable
        self.request_id = request_id
        self.http_status = http_status

    def __reduce__(self) -> tuple[Any, ...]:
        attrs = {
            "code": self.code,
            "retryable": self.retryable,
            "request_id": self.request_id,
            "http_status": self.http_status,
        }
        return (_rebuild, (self.__class__, self.message, attrs))


class CacheError(WebIdProviderError):
    """The credential cache directory or an entry cannot be used (internal: never raised to
    callers, who get a logged warning and a memory-only cache instead).

    :param path: the directory or entry at fault
    """

    def __init__(self, message: str, *, path: Optional[str] = None) -> None:
        super().__init__(message)
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.__class__, self.message, {"path": self.path}))


class ClockSkewError(WebIdProviderError):
    """STS issued credentials that this host's clock already considers unusable.

    botocore would sign nothing with them (it raises a bare ``RuntimeError``); the cause is
    almost always a local clock that is ahead of STS's.

    :param skew_seconds: how far the local clock seems ahead of STS, when it can be told
    """

    def __init__(self, message: str, *, skew_seconds: Optional[float] = None) -> None:
        super().__init__(message)
        self.skew_seconds = skew_seconds

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.__class__, self.message, {"skew_seconds": self.skew_seconds}))


def _rebuild(cls: type[WebIdProviderError], message: str, attrs: dict[str, Any]) -> Any:
    """Recreate an exception with keyword-only context (pickle support)."""
    return cls(message, **attrs)
