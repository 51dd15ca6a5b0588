"""What an STS failure means: the error kinds, and the translation of botocore's failures.

Classification (DESIGN.md, "STS errors"; README, "Refresh and failure behaviour"):

* transient, retried with capped exponential backoff and full jitter within a bounded total
  time: ``IDPCommunicationError``, throttling codes, HTTP 5xx, connection errors and timeouts,
  and ``InvalidIdentityToken`` saying it "couldn't retrieve verification key" (STS failed to
  fetch the IdP's JWKS);
* token re-read, then one retry: ``ExpiredTokenException`` (STS enforces token age itself);
* permanent, raised at once: everything else, with code, message and request id.

:func:`classify` is the one judgement of an STS answer; :func:`to_sts_error` records it as the
error's ``retryable`` and :func:`kind_of` reads it back from the error for the retry loop.

Security: botocore's exception text can quote request parameters, the token among them; only
STS's own error code and message (which never echo secrets) and exception class names are
kept.
"""

from __future__ import annotations

from enum import Enum
from typing import Optional

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)

from webid_provider._errors import StsError, StsServiceError

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "IDPCommunicationError",
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
VERIFICATION_KEY_MESSAGE = "couldn't retrieve verification key"


class ErrorKind(Enum):
    """What to do about an STS failure."""

    TRANSIENT = "transient"
    REREAD_TOKEN = "reread-token"
    PERMANENT = "permanent"


def classify(code: str, message: str, http_status: Optional[int]) -> ErrorKind:
    """Decide whether an STS error is worth retrying."""
    if code == "ExpiredTokenException":
        return ErrorKind.REREAD_TOKEN
    if code in THROTTLING_CODES or code in TRANSIENT_CODES:
        return ErrorKind.TRANSIENT
    if code == "InvalidIdentityToken" and VERIFICATION_KEY_MESSAGE in message.lower():
        return ErrorKind.TRANSIENT
    if http_status is not None and http_status >= 500:
        return ErrorKind.TRANSIENT
    return ErrorKind.PERMANENT


def to_sts_error(exc: BaseException) -> StsError:
    """Translate a botocore failure into an :class:`StsError` without leaking the request.

    A ``ClientError`` (STS answered) becomes an :class:`StsServiceError` carrying its
    ``response``; anything else a plain :class:`StsError`.
    """
    if isinstance(exc, StsError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        code = str(error.get("Code") or "Unknown")
        message = str(error.get("Message") or "")
        status = meta.get("HTTPStatusCode")
        request_id = meta.get("RequestId")
        kind = classify(code, message, status)
        text = f"AssumeRoleWithWebIdentity failed: {code}: {message}".rstrip(": ")
        if request_id:
            text += f" (request id {request_id})"
        # STS answered: the caller gets a ClientError, as from botocore's own provider.
        return StsServiceError(
            text,
            code=code,
            retryable=kind is not ErrorKind.PERMANENT,
            request_id=request_id,
            http_status=status,
            sts_message=message,
            response=exc.response,
        )
    # No answer from STS: a plain StsError (a BotoCoreError, like botocore's own
    # EndpointConnectionError & co.), never a ClientError.
    if isinstance(
        exc,
        (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError),
    ):
        name = type(exc).__name__
        # These messages name only the endpoint URL, never the request body.
        return StsError(
            f"AssumeRoleWithWebIdentity failed: {name}: {exc}", code=name, retryable=True
        )
    if isinstance(exc, HTTPClientError):
        return StsError(
            f"AssumeRoleWithWebIdentity failed: {type(exc).__name__}",
            code=type(exc).__name__,
            retryable=True,
        )
    if isinstance(exc, BotoCoreError):
        # Parameter validation and similar: botocore's text can quote parameters, including
        # the token, so only the class name is kept.
        return StsError(
            f"AssumeRoleWithWebIdentity was rejected by botocore: {type(exc).__name__}",
            code=type(exc).__name__,
            retryable=False,
        )
    return StsError(
        f"AssumeRoleWithWebIdentity failed: {type(exc).__name__}",
        code=type(exc).__name__,
        retryable=False,
    )


def kind_of(error: StsError) -> ErrorKind:
    """How the retry loop treats ``error``: STS's answer as :func:`classify` judges it; a call
    that got no answer (no HTTP status) is transient exactly when it is ``retryable`` (a
    connection error or timeout, an unusable response)."""
    if isinstance(error, StsServiceError):
        return classify(error.code, error.sts_message, error.http_status)
    return ErrorKind.TRANSIENT if error.retryable else ErrorKind.PERMANENT
