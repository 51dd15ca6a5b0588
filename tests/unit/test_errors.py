"""The exception hierarchy: what callers can catch, and what survives pickling."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError, InvalidConfigError

from webid_provider._errors import (
    CacheError,
    ClockSkewError,
    ConfigurationError,
    StsError,
    StsServiceError,
    TokenSourceError,
    WebIdProviderError,
)


@pytest.mark.parametrize(
    "cls",
    [ConfigurationError, TokenSourceError, StsError, StsServiceError, CacheError, ClockSkewError],
)
def test_every_error_is_a_webid_provider_error_and_a_botocore_error(cls: type[Exception]) -> None:
    assert issubclass(cls, WebIdProviderError)
    assert issubclass(cls, BotoCoreError)


def test_base_class_is_a_botocore_error() -> None:
    assert issubclass(WebIdProviderError, BotoCoreError)
    with pytest.raises(BotoCoreError):
        raise WebIdProviderError("boom")


def test_configuration_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="bad role"):
        raise ConfigurationError("bad role", field="role_arn")


def test_cache_errors_are_not_public() -> None:
    # The cache never fails credential loading, so no cache exception reaches callers.
    import webid_provider

    assert "CacheError" not in webid_provider.__all__
    assert "CacheLockTimeout" not in webid_provider.__all__
    assert not hasattr(webid_provider, "CacheLockTimeout")


def test_configuration_error_is_botocores_invalid_config_error() -> None:
    error = ConfigurationError("role_arn is required", field="role_arn")
    assert isinstance(error, InvalidConfigError)
    assert error.kwargs == {"error_msg": "role_arn is required"}
    with pytest.raises(InvalidConfigError, match="role_arn is required"):
        raise error


def test_sts_service_error_is_one_class_with_both_bases() -> None:
    assert issubclass(StsServiceError, StsError)
    assert issubclass(StsServiceError, ClientError)
    assert issubclass(StsServiceError, WebIdProviderError)
    assert not issubclass(StsError, ClientError)


def test_sts_service_error_has_botocores_response_shape() -> None:
    error = StsServiceError(
        "AssumeRoleWithWebIdentity failed: AccessDenied: Not authorized (request id r-1)",
        code="AccessDenied",
        retryable=False,
        request_id="r-1",
        http_status=403,
        sts_message="Not authorized",
    )
    with pytest.raises(ClientError) as info:
        raise error
    assert info.value.response == {
        "Error": {"Type": "Sender", "Code": "AccessDenied", "Message": "Not authorized"},
        "ResponseMetadata": {"RequestId": "r-1", "HTTPStatusCode": 403},
    }
    assert info.value.operation_name == "AssumeRoleWithWebIdentity"
    assert str(info.value) == (
        "AssumeRoleWithWebIdentity failed: AccessDenied: Not authorized (request id r-1)"
    )


def test_an_sts_error_with_an_http_status_is_a_service_error() -> None:
    """Wherever STS's answer is known (a replayed error too), the caller gets a ClientError."""
    replayed = StsError("again", code="AccessDenied", retryable=False, http_status=403)
    assert type(replayed) is StsServiceError
    response: Any = replayed.response
    assert response["Error"]["Code"] == "AccessDenied"
    assert response["Error"]["Type"] == "Sender"
    unavailable: Any = StsError("down", code="ServiceUnavailable", retryable=True, http_status=503)
    assert unavailable.response["Error"]["Type"] == "Receiver"
    no_answer = StsError("refused", code="EndpointConnectionError", retryable=True)
    assert type(no_answer) is StsError
    assert not isinstance(no_answer, ClientError)


def test_other_errors_are_not_value_or_timeout_errors() -> None:
    assert not issubclass(TokenSourceError, ValueError)
    assert not issubclass(StsError, ValueError)
    assert not issubclass(CacheError, TimeoutError)


def test_str_is_the_message_without_botocore_formatting() -> None:
    error = StsError("AccessDenied: {not a format field}", code="AccessDenied", retryable=False)
    assert str(error) == "AccessDenied: {not a format field}"
    assert error.message == "AccessDenied: {not a format field}"


ERRORS: list[tuple[WebIdProviderError, dict[str, Any]]] = [
    (WebIdProviderError("base message"), {}),
    (ConfigurationError("bad duration", field="duration_seconds"), {"field": "duration_seconds"}),
    (ConfigurationError("no field"), {"field": None}),
    (TokenSourceError("token file /x missing", path="/x"), {"path": "/x", "retryable": False}),
    (
        TokenSourceError("token command 'x' exited with status 1", retryable=True),
        {"path": None, "retryable": True},
    ),
    (
        StsError(
            "AccessDenied: no",
            code="AccessDenied",
            retryable=False,
            request_id="req-123",
            http_status=403,
        ),
        {"code": "AccessDenied", "retryable": False, "request_id": "req-123", "http_status": 403},
    ),
    (
        StsError("throttled", code="Throttling", retryable=True),
        {"code": "Throttling", "retryable": True, "request_id": None, "http_status": None},
    ),
    (
        StsServiceError(
            "AssumeRoleWithWebIdentity failed: InvalidIdentityToken: bad (request id r-9)",
            code="InvalidIdentityToken",
            retryable=False,
            request_id="r-9",
            http_status=400,
            sts_message="bad",
            response={
                "Error": {"Type": "Sender", "Code": "InvalidIdentityToken", "Message": "bad"},
                "ResponseMetadata": {
                    "RequestId": "r-9",
                    "HTTPStatusCode": 400,
                    "HTTPHeaders": {"x-amzn-requestid": "r-9"},
                    "RetryAttempts": 0,
                },
            },
        ),
        {
            "code": "InvalidIdentityToken",
            "request_id": "r-9",
            "http_status": 400,
            "sts_message": "bad",
            "operation_name": "AssumeRoleWithWebIdentity",
            "response": {
                "Error": {"Type": "Sender", "Code": "InvalidIdentityToken", "Message": "bad"},
                "ResponseMetadata": {
                    "RequestId": "r-9",
                    "HTTPStatusCode": 400,
                    "HTTPHeaders": {"x-amzn-requestid": "r-9"},
                    "RetryAttempts": 0,
                },
            },
        },
    ),
    (CacheError("cache dir unusable", path="/c"), {"path": "/c"}),
    (ClockSkewError("clock ahead by 7200 s", skew_seconds=7200.0), {"skew_seconds": 7200.0}),
    (ClockSkewError("clock ahead", skew_seconds=None), {"skew_seconds": None}),
]


@pytest.mark.parametrize(
    ("error", "attributes"), ERRORS, ids=[type(error).__name__ for error, _ in ERRORS]
)
def test_pickle_round_trip_keeps_class_message_and_attributes(
    error: WebIdProviderError, attributes: dict[str, Any]
) -> None:
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is type(error)
    assert str(clone) == str(error)
    assert clone.message == error.message
    assert clone.args == error.args
    for name, value in attributes.items():
        assert getattr(clone, name) == value
