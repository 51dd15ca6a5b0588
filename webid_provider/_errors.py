"""The exceptions ``webid_provider`` raises.

Every error is a :class:`WebIdProviderError`, which is itself a botocore ``BotoCoreError`` so
code that already catches botocore errors around ``boto3`` calls keeps working. Where botocore's
own provider raises a well-known class for the same situation, ours subclasses it too, so
``register()`` breaks no ``except`` clause written for botocore (issue 10)::

    BotoCoreError                                   (botocore)
    └── WebIdProviderError                          base class; the one thing callers catch
        ├── ConfigurationError(InvalidConfigError,  bad role ARN, bad duration, conflicting
        │                      ValueError)          sources; botocore: InvalidConfigError
        ├── TokenSourceError                        token missing, unreadable, command failed
        ├── StsError                                STS call failed; .code, .retryable, .request_id
        │   └── StsServiceError(ClientError)        STS answered with an error (AccessDenied,
        │                                           InvalidIdentityToken, 5xx...): botocore's
        │                                           ClientError with its ``response`` shape
        └── ClockSkewError                          STS's credentials are already unusable by
                                                    this host's clock; .skew_seconds

``CacheError`` is internal: the cache never fails credential loading (an unusable directory
degrades to memory with a warning, a stuck lock is waited on for a bounded time), so no cache
exception reaches callers.

A failure without an answer from STS (connection refused, timeout, unreadable response) is a
plain :class:`StsError`: botocore raises ``EndpointConnectionError`` and friends there, which
are ``BotoCoreError`` subclasses, not ``ClientError`` either; the botocore exception is
chained as ``__cause__``.

Security: messages never contain a token, a secret key or a session token. Callers build
messages from field names, paths, STS error codes and STS messages (which never echo secrets).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from botocore.exceptions import BotoCoreError, ClientError, InvalidConfigError


class WebIdProviderError(BotoCoreError):
    """Base class of every error this package raises."""

    def __init__(self, message: str) -> None:
        # BotoCoreError.__init__ formats ``fmt`` with kwargs; we carry a ready message instead.
        Exception.__init__(self, message)
        self.message = message
        self.kwargs = {}

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.__class__, self.message, {}))


class ConfigurationError(WebIdProviderError, InvalidConfigError, ValueError):
    """A setting is missing or invalid; raised before any network call.

    Also botocore's ``InvalidConfigError``, which botocore's provider raises for the one web
    identity misconfiguration it detects (a token file without a role ARN); ``kwargs`` carries
    its ``error_msg`` like botocore's.

    :param field: the option, environment variable or profile key at fault
    """

    def __init__(self, message: str, *, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.kwargs = {"error_msg": message}
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
    """The AssumeRoleWithWebIdentity call failed.

    Raised as is when no answer came from STS (connection error, timeout, unusable response).
    When STS answered with an error, the exception is a :class:`StsServiceError`, which is
    also a botocore ``ClientError``; constructing an ``StsError`` with an ``http_status``
    returns one, so every place that knows STS answered produces the ``ClientError``
    botocore users catch.

    :param code: the STS error code (``AccessDenied``, ``InvalidIdentityToken``...), or the
        name of the connection error
    :param retryable: whether a later attempt may succeed
    :param request_id: STS's request id, for AWS support
    :param http_status: the HTTP status of STS's answer, if one arrived
    """

    def __new__(cls, message: str, **attrs: Any) -> StsError:
        if cls is StsError and attrs.get("http_status") is not None:
            cls = StsServiceError
        return super().__new__(cls, message)

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

    def _attrs(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "retryable": self.retryable,
            "request_id": self.request_id,
            "http_status": self.http_status,
        }

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.__class__, self.message, self._attrs()))


class StsServiceError(StsError, ClientError):
    """STS answered the call with an error: an :class:`StsError` and a botocore ``ClientError``.

    botocore's own provider lets the ``ClientError`` of its STS call reach the caller, so
    ``except ClientError as e: e.response["Error"]["Code"]`` works the same with this package.
    ``response`` has botocore's shape (``Error.Code``/``Message``/``Type``,
    ``ResponseMetadata.RequestId``/``HTTPStatusCode``); ``operation_name`` is
    ``AssumeRoleWithWebIdentity``. botocore's modelled subclasses (``client.exceptions.
    InvalidIdentityTokenException``) are not reproduced: match on ``Error.Code``.

    :param sts_message: STS's own error message (``Error.Message``); defaults to ``message``
    :param response: the parsed error response; built from the other fields when omitted
    """

    OPERATION_NAME = "AssumeRoleWithWebIdentity"

    def __init__(
        self,
        message: str,
        *,
        code: str,
        retryable: bool,
        request_id: Optional[str] = None,
        http_status: Optional[int] = None,
        sts_message: Optional[str] = None,
        response: Optional[Mapping[str, Any]] = None,
    ) -> None:
        # ClientError.__init__ is not called: it would replace our message (and ``args``) with
        # its own template. Its two attributes are set here instead.
        super().__init__(
            message,
            code=code,
            retryable=retryable,
            request_id=request_id,
            http_status=http_status,
        )
        self.sts_message = message if sts_message is None else sts_message
        # Any: botocore-stubs types ``response`` with a TypedDict private to the stubs.
        shaped: Any = (
            _copy_response(response)
            if response is not None
            else _build_response(code, self.sts_message, request_id, http_status)
        )
        self.response = shaped
        self.operation_name = self.OPERATION_NAME

    def _attrs(self) -> dict[str, Any]:
        return {
            **super()._attrs(),
            "sts_message": self.sts_message,
            "response": self.response,
        }


def _build_response(
    code: str, message: str, request_id: Optional[str], http_status: Optional[int]
) -> dict[str, Any]:
    """botocore's parsed error response for a query-protocol error."""
    error = {"Type": "Receiver" if (http_status or 0) >= 500 else "Sender", "Code": code}
    error["Message"] = message
    metadata: dict[str, Any] = {}
    if request_id is not None:
        metadata["RequestId"] = request_id
    if http_status is not None:
        metadata["HTTPStatusCode"] = http_status
    return {"Error": error, "ResponseMetadata": metadata}


def _copy_response(response: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the parts of an error response botocore code reads; never a request echo."""
    copied: dict[str, Any] = {}
    for part in ("Error", "ResponseMetadata"):
        value = response.get(part)
        if isinstance(value, Mapping):
            copied[part] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in value.items()}
    return copied


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


def with_note(error: WebIdProviderError, note: str) -> WebIdProviderError:
    """``error`` again, of the same class with the same context attributes, its message followed
    by ``note`` (a replayed failure says that it is one)."""
    cls, message, attrs = error.__reduce__()[1]
    copied: WebIdProviderError = _rebuild(cls, f"{message} {note}", attrs)
    return copied
