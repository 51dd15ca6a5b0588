"""WebIdentityResult: parsing STS responses, the JSON form, and botocore metadata."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.utils import parse_timestamp as botocore_parse_timestamp

from webid_provider._fields import format_timestamp, parse_timestamp
from webid_provider._result import AssumedRoleUser, WebIdentityResult

OBTAINED = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
EXPIRES = datetime(2026, 1, 1, 13, 0, tzinfo=timezone.utc)
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLE-session-token//////////"


def response(expiration: object = EXPIRES) -> dict[str, Any]:
    return {
        "Credentials": {
            "AccessKeyId": "ASIAEXAMPLE123",
            "SecretAccessKey": SECRET_KEY,
            "SessionToken": SESSION_TOKEN,
            "Expiration": expiration,
        },
        "SubjectFromWebIdentityToken": "system:serviceaccount:ns:app",
        "AssumedRoleUser": {
            "Arn": "arn:aws:sts::123456789012:assumed-role/web-role/session-1",
            "AssumedRoleId": "AROAEXAMPLE:session-1",
        },
        "PackedPolicySize": 12,
        "Provider": "arn:aws:iam::123456789012:oidc-provider/oidc.example.com",
        "Audience": "sts.amazonaws.com",
        "SourceIdentity": "alice",
    }


def full_result() -> WebIdentityResult:
    return WebIdentityResult.from_response(response(), obtained_at=OBTAINED)


def test_from_response_with_datetime_keeps_every_field() -> None:
    result = full_result()
    assert result.access_key_id == "ASIAEXAMPLE123"
    assert result.secret_access_key == SECRET_KEY
    assert result.session_token == SESSION_TOKEN
    assert result.expiration == EXPIRES
    assert result.obtained_at == OBTAINED
    assert result.assumed_role_user == AssumedRoleUser(
        arn="arn:aws:sts::123456789012:assumed-role/web-role/session-1",
        assumed_role_id="AROAEXAMPLE:session-1",
    )
    assert result.subject_from_web_identity_token == "system:serviceaccount:ns:app"
    assert result.packed_policy_size == 12
    assert result.provider == "arn:aws:iam::123456789012:oidc-provider/oidc.example.com"
    assert result.audience == "sts.amazonaws.com"
    assert result.source_identity == "alice"
    assert result.lifetime_seconds == 3600
    assert result.seconds_left(OBTAINED + timedelta(minutes=10)) == 3000
    assert result.seconds_left(EXPIRES + timedelta(seconds=5)) == -5


@pytest.mark.parametrize(
    "expiration",
    [
        "2026-01-01T13:00:00Z",
        "2026-01-01T13:00:00+00:00",
        "2026-01-01T15:00:00+02:00",
        " 2026-01-01T13:00:00Z ",
        datetime(2026, 1, 1, 8, 0, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_from_response_with_iso_strings_and_offsets(expiration: object) -> None:
    result = WebIdentityResult.from_response(response(expiration), obtained_at=OBTAINED)
    assert result.expiration == EXPIRES
    assert result.expiration.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "expiration",
    ["2026-01-01T13:00:00", datetime(2026, 1, 1, 13, 0), None, "tomorrow", 1767272400],
    ids=["naive-string", "naive-datetime", "missing", "garbage", "epoch-int"],
)
def test_bad_expiration_is_a_value_error(expiration: object) -> None:
    with pytest.raises(ValueError):
        WebIdentityResult.from_response(response(expiration), obtained_at=OBTAINED)


def test_missing_credentials_is_a_value_error() -> None:
    data = response()
    del data["Credentials"]
    with pytest.raises(ValueError, match="Credentials"):
        WebIdentityResult.from_response(data, obtained_at=OBTAINED)


@pytest.mark.parametrize("key", ["AccessKeyId", "SecretAccessKey", "SessionToken"])
def test_missing_credential_keys_are_value_errors(key: str) -> None:
    data = response()
    del data["Credentials"][key]
    with pytest.raises(ValueError, match=key):
        WebIdentityResult.from_response(data, obtained_at=OBTAINED)


@pytest.mark.parametrize("size", ["12", True, 1.5])
def test_non_integer_packed_policy_size_is_a_value_error(size: object) -> None:
    data = response()
    data["PackedPolicySize"] = size
    with pytest.raises(ValueError, match="PackedPolicySize"):
        WebIdentityResult.from_response(data, obtained_at=OBTAINED)


def test_naive_obtained_at_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="obtained_at"):
        WebIdentityResult.from_response(response(), obtained_at=datetime(2026, 1, 1, 12))


def test_minimal_response_leaves_optional_fields_unset() -> None:
    data = {"Credentials": response()["Credentials"]}
    result = WebIdentityResult.from_response(data, obtained_at=OBTAINED)
    assert result.assumed_role_user is None
    assert result.account_id is None
    assert result.packed_policy_size is None
    assert result.provider is None
    assert result.to_response() == {
        "Credentials": {
            "AccessKeyId": "ASIAEXAMPLE123",
            "SecretAccessKey": SECRET_KEY,
            "SessionToken": SESSION_TOKEN,
            "Expiration": "2026-01-01T13:00:00+00:00",
        }
    }


def test_to_response_round_trip() -> None:
    result = full_result()
    out = result.to_response()
    assert out["Credentials"]["Expiration"] == "2026-01-01T13:00:00+00:00"
    expected = copy.deepcopy(response())
    expected["Credentials"]["Expiration"] = "2026-01-01T13:00:00+00:00"
    assert out == expected
    assert WebIdentityResult.from_response(out, obtained_at=OBTAINED) == result


@pytest.mark.parametrize(
    ("arn", "account"),
    [
        ("arn:aws:sts::123456789012:assumed-role/web-role/session-1", "123456789012"),
        ("arn:aws-cn:sts::210987654321:assumed-role/r/s", "210987654321"),
        ("not-an-arn", None),
    ],
)
def test_account_id_from_assumed_role_arn(arn: str, account: object) -> None:
    data = response()
    data["AssumedRoleUser"]["Arn"] = arn
    assert WebIdentityResult.from_response(data, obtained_at=OBTAINED).account_id == account


def test_repr_hides_secret_key_and_session_token() -> None:
    text = repr(full_result())
    assert SECRET_KEY not in text
    assert SESSION_TOKEN not in text
    assert "ASIAEXAMPLE123" in text


def test_to_botocore_metadata() -> None:
    result = full_result()
    metadata = result.to_botocore_metadata()
    assert metadata == {
        "access_key": "ASIAEXAMPLE123",
        "secret_key": SECRET_KEY,
        "token": SESSION_TOKEN,
        "expiry_time": "2026-01-01T13:00:00+00:00",
        "account_id": "123456789012",
    }
    assert botocore_parse_timestamp(metadata["expiry_time"]) == EXPIRES


def test_to_botocore_metadata_with_an_earlier_expiry() -> None:
    earlier = datetime(2026, 1, 1, 13, 30, tzinfo=timezone(timedelta(hours=1)))
    metadata = full_result().to_botocore_metadata(expiry_time=earlier)
    assert metadata["expiry_time"] == "2026-01-01T12:30:00+00:00"


def test_format_and_parse_timestamp() -> None:
    moment = datetime(2026, 1, 1, 13, 0, 0, 123456, tzinfo=timezone.utc)
    text = format_timestamp(moment)
    assert text.endswith("+00:00")
    assert parse_timestamp(text) == moment
    assert parse_timestamp("2026-01-01T13:00:00Z") == EXPIRES
    with pytest.raises(ValueError):
        parse_timestamp("2026-01-01T13:00:00")
