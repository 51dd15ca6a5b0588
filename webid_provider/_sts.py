"""The AssumeRoleWithWebIdentity call: client, request, error classification, retries.

The STS client is created from the user's botocore session so region, ``AWS_ENDPOINT_URL_STS``,
``sts_regional_endpoints``, proxies and CA bundle apply. It is unsigned (the operation needs no
credentials, and signing would recurse into the credential chain) and makes exactly one attempt
per call: retries are ours alone, classified below, so botocore's and ours never multiply
(aws/aws-cli#7194, hashicorp/aws-sdk-go-base#342).

Classification (DESIGN.md, "STS errors"):

* transient, retried with capped exponential backoff and full jitter within a bounded total
  time: ``IDPCommunicationError``, throttling codes, HTTP 5xx, connection errors and timeouts,
  and ``InvalidIdentityToken`` saying it "couldn't retrieve verification key" (STS failed to
  fetch the IdP's JWKS);
* token re-read, then one retry: ``ExpiredTokenException`` (STS enforces token age itself);
* permanent, raised at once: everything else, with code, message and request id.

Security: the request carries the token; no request dict, response body or botocore exception
text containing it is logged or put in an exception. botocore's own DEBUG records of the call
(and of every request later signed with the result) are redacted by
:mod:`webid_provider._redaction`.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any, Callable, Optional

from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)

from webid_provider._aio import create_aio_sts_client, is_aio_session
from webid_provider._botocore import configured_endpoint_url
from webid_provider._clock import Clock
from webid_provider._errors import ClockSkewError, StsError, StsServiceError
from webid_provider._redaction import install_secret_redaction, remember_secrets
from webid_provider._result import WebIdentityResult

logger = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class StsRequest:
    """The parameters of one call; ``token`` is never shown by ``repr``."""

    role_arn: str
    role_session_name: str
    token: str = field(repr=False)
    duration_seconds: Optional[int] = None
    policy: Optional[str] = None
    policy_arns: tuple[str, ...] = ()
    provider_id: Optional[str] = None

    def to_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "RoleArn": self.role_arn,
            "RoleSessionName": self.role_session_name,
            "WebIdentityToken": self.token,
        }
        if self.duration_seconds is not None:
            params["DurationSeconds"] = self.duration_seconds
        if self.policy is not None:
            params["Policy"] = self.policy
        if self.policy_arns:
            params["PolicyArns"] = [{"arn": arn} for arn in self.policy_arns]
        if self.provider_id is not None:
            params["ProviderId"] = self.provider_id
        return params


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on our retries of transient failures.

    :param max_attempts: attempts in total, the first included
    :param max_total_seconds: no retry starts after this much time has passed
    """

    max_attempts: int = 4
    base_delay_seconds: float = 0.2
    max_delay_seconds: float = 5.0
    max_total_seconds: float = 20.0


SINGLE_ATTEMPT = RetryPolicy(max_attempts=1)


@dataclass(frozen=True)
class StsEndpoint:
    """Every input botocore's endpoint rules use to choose the STS URL for one session.

    Resolved with botocore's own pieces (:func:`resolve_sts_endpoint`), without building a
    client. Equal values give the same URL, so the cache key binds :meth:`identity` and the
    STS client is built from these exact values: credentials one endpoint minted are never
    served to a session whose calls would go to another.

    :param region_name: the client region (fixed when the credential resolver is built)
    :param endpoint_url: the configured URL (``AWS_ENDPOINT_URL_STS``, ``AWS_ENDPOINT_URL``,
        the profile's ``[services]`` section or ``endpoint_url``), ``None`` when unset or
        ignored (``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS``)
    """

    region_name: Optional[str] = None
    endpoint_url: Optional[str] = None
    use_fips_endpoint: Optional[bool] = None
    use_dualstack_endpoint: Optional[bool] = None
    sts_regional_endpoints: Optional[str] = None

    def identity(self) -> str:
        """The string the cache key binds."""
        return "|".join(
            _text(value)
            for value in (
                self.region_name,
                self.endpoint_url,
                self.use_fips_endpoint,
                self.use_dualstack_endpoint,
                self.sts_regional_endpoints,
            )
        )


def _text(value: object) -> str:
    return "" if value is None else str(value)


def resolve_sts_endpoint(
    session: Any,
    *,
    region_name: Optional[str] = None,
    environ: Mapping[str, str] = os.environ,
) -> StsEndpoint:
    """Where an STS client created now from ``session`` would send its calls, as inputs.

    Follows ``Session.create_client``: the session's default client config wins over config
    variables, a configured endpoint URL is looked up by botocore's
    ``ConfiguredEndpointProvider`` unless ``ignore_configured_endpoint_urls`` is set.

    :param session: a ``botocore.session.Session``
    :param region_name: the region the client is created with; ``None``: the session's
    :param environ: the environment for the endpoint URL variables
    :raises InvalidConfigError: (botocore's) when the profile names a missing ``[services]``
        section, as botocore raises when it creates a client
    """
    defaults = session.get_default_client_config()

    def setting(config_name: str, variable: str) -> Any:
        value = getattr(defaults, config_name, None) if defaults is not None else None
        return value if value is not None else session.get_config_variable(variable)

    region = region_name or setting("region_name", "region")
    ignore = setting("ignore_configured_endpoint_urls", "ignore_configured_endpoint_urls")
    return StsEndpoint(
        region_name=region or None,
        endpoint_url=None if ignore else configured_endpoint_url(session, "sts", environ),
        use_fips_endpoint=setting("use_fips_endpoint", "use_fips_endpoint"),
        use_dualstack_endpoint=setting("use_dualstack_endpoint", "use_dualstack_endpoint"),
        sts_regional_endpoints=session.get_config_variable("sts_regional_endpoints"),
    )


def create_sts_client(
    session: Any,
    *,
    region_name: Optional[str] = None,
    endpoint: Optional[StsEndpoint] = None,
    connect_timeout_seconds: float = 5.0,
    read_timeout_seconds: float = 10.0,
) -> Any:
    """An unsigned, single-attempt STS client built from a botocore session.

    :param session: a ``botocore.session.Session``; for an aiobotocore ``AioSession``, a
        synchronous face over aiobotocore's async client (:mod:`webid_provider._aio_glue`)
    :param region_name: used to resolve ``endpoint`` when it is not given
    :param endpoint: the resolved endpoint; the client is pinned to it, so the URL it calls is
        the one the cache key names even if the environment changes later
    """
    # botocore's DEBUG records of this client quote the token and the new credentials.
    install_secret_redaction()
    if endpoint is None:
        endpoint = resolve_sts_endpoint(session, region_name=region_name)
    pinned: dict[str, Any] = {}
    if endpoint.use_fips_endpoint is not None:
        pinned["use_fips_endpoint"] = endpoint.use_fips_endpoint
    if endpoint.use_dualstack_endpoint is not None:
        pinned["use_dualstack_endpoint"] = endpoint.use_dualstack_endpoint
    options: dict[str, Any] = dict(
        signature_version=UNSIGNED,
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=connect_timeout_seconds,
        read_timeout=read_timeout_seconds,
        **pinned,
    )
    if is_aio_session(session):  # aiobotocore's async client, run off the caller's event loop
        return create_aio_sts_client(
            session,
            region_name=endpoint.region_name,
            endpoint_url=endpoint.endpoint_url,
            config_options=options,
        )
    kwargs: dict[str, Any] = {
        "region_name": endpoint.region_name,
        "endpoint_url": endpoint.endpoint_url,
        "config": Config(**options),
    }
    try:  # botocore >= 1.40: keeps client plugins out of credential-provider clients
        from botocore.utils import create_nested_client
    except ImportError:  # pragma: no cover - older botocore
        return session.create_client("sts", **kwargs)
    return create_nested_client(session, "sts", **kwargs)


def endpoint_identity(
    session: Any, environ: Mapping[str, str] = os.environ, *, region_name: Optional[str] = None
) -> str:
    """What decides which STS endpoint answers, for the cache key, without building a client.

    Credentials from different partitions or endpoints are not interchangeable.
    """
    return resolve_sts_endpoint(session, region_name=region_name, environ=environ).identity()


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


def assume_role_with_web_identity(
    client: Any, request: StsRequest, *, clock: Clock, min_seconds_left: float = 0.0
) -> WebIdentityResult:
    """Make one AssumeRoleWithWebIdentity call.

    :param min_seconds_left: credentials with no more than this left by ``clock`` are refused
        as a clock problem: botocore could never use them
    :raises StsError: for any failure, classified via ``retryable``
    :raises ClockSkewError: when the fresh credentials are already unusable by ``clock``
    """
    try:
        response = client.assume_role_with_web_identity(**request.to_params())
    except Exception as exc:
        raise to_sts_error(exc) from exc
    now = clock()
    try:
        result = WebIdentityResult.from_response(response, obtained_at=now)
    except ValueError as exc:
        raise StsError(
            f"AssumeRoleWithWebIdentity returned an unusable response: {exc}",
            code="InvalidResponse",
            retryable=True,
        ) from exc
    if result.seconds_left(now) <= min_seconds_left:
        raise _clock_skew_error(result, response, now, request.duration_seconds)
    remember_secrets(result.session_token, result.secret_access_key)
    return result


def _clock_skew_error(
    result: WebIdentityResult, response: Any, now: datetime, duration_seconds: Optional[int]
) -> ClockSkewError:
    """Explain credentials that are dead on arrival, estimating the skew from STS's clock."""
    skew: Optional[float] = None
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    date = headers.get("date") if isinstance(headers, Mapping) else None
    if isinstance(date, str):
        try:
            skew = (now - parsedate_to_datetime(date)).total_seconds()
        except (TypeError, ValueError):
            skew = None
    if skew is None and duration_seconds is not None:
        issued_at = result.expiration - timedelta(seconds=duration_seconds)
        skew = (now - issued_at).total_seconds()
    left = result.seconds_left(now)
    when = f"{-left:.0f} s ago" if left <= 0 else f"in {left:.0f} s"
    ahead = (
        f"this host's clock is ahead of STS's by about {skew:.0f} s"
        if skew is not None and skew > 0
        else "this host's clock is probably ahead of STS's"
    )
    return ClockSkewError(
        f"STS issued credentials that expire at {result.expiration.isoformat()} ({when} by "
        f"this host's clock), too soon to use: {ahead}; synchronise the clock (NTP)",
        skew_seconds=skew,
    )


def call_with_retries(
    attempt: Callable[[str], WebIdentityResult],
    read_token: Callable[[], str],
    *,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    rng: Optional[random.Random] = None,
    first_token: Optional[str] = None,
) -> WebIdentityResult:
    """Run ``attempt(token)`` with classified retries, within a wall-clock budget.

    The budget counts the attempts themselves, not only the waits between them: no attempt
    starts unless the slowest one so far still fits in ``policy.max_total_seconds``.

    :param attempt: one STS call for a token
    :param read_token: fetches the token; called first (unless ``first_token`` is given), and
        again after ExpiredTokenException — a re-read that returns the very same token ends
        the retries, since STS would refuse it again
    :raises StsError: the last error once retries are exhausted, or a permanent one at once
    :raises TokenSourceError: when the token cannot be read
    """
    rng = rng or random.Random()
    started = monotonic()
    token = first_token if first_token is not None else read_token()
    reread_done = False
    attempts = 0
    slowest = 0.0
    while True:
        attempts += 1
        attempt_started = monotonic()
        try:
            return attempt(token)
        except StsError as error:
            slowest = max(slowest, monotonic() - attempt_started)
            kind = _kind_of(error)
            if kind is ErrorKind.REREAD_TOKEN and not reread_done:
                reread_done = True
                fresh = read_token()
                if fresh == token:
                    logger.info("STS says the token expired and the source holds no newer one")
                    raise
                logger.info("STS says the token expired; read a newer one, retrying once")
                token = fresh
                continue
            if kind is not ErrorKind.TRANSIENT or attempts >= policy.max_attempts:
                raise
            delay = rng.uniform(
                0, min(policy.max_delay_seconds, policy.base_delay_seconds * 2 ** (attempts - 1))
            )
            if monotonic() - started + delay + slowest > policy.max_total_seconds:
                raise
            logger.info(
                "STS call failed with %s (attempt %d of %d); retrying in %.2f s",
                error.code,
                attempts,
                policy.max_attempts,
                delay,
            )
            sleep(delay)


def _kind_of(error: StsError) -> ErrorKind:
    if error.code == "ExpiredTokenException":
        return ErrorKind.REREAD_TOKEN
    return ErrorKind.TRANSIENT if error.retryable else ErrorKind.PERMANENT
