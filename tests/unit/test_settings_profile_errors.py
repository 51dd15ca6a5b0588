"""Profile mistakes name the profile and the key (issue 16's papercuts): a near-miss key is
refused with the closest known key, and a bad value read from a profile says where it came
from. Keys that belong to other providers or to botocore pass untouched."""

from __future__ import annotations

from typing import Any, Dict, Optional

import pytest

from webid_provider._errors import ConfigurationError
from webid_provider._settings import WebIdentitySettings, resolve_settings

ROLE = "arn:aws:iam::123456789012:role/app"


def _resolve(
    profile: Dict[str, Any], options: Optional[Dict[str, Any]] = None
) -> Optional[WebIdentitySettings]:
    return resolve_settings(options or {}, environ={}, profile=profile, profile_name="dev")


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("web_identity_token_fle", "web_identity_token_file"),
        ("web_identity_token_files", "web_identity_token_file"),
        ("web_identity_tokn_command", "web_identity_token_command"),
    ],
)
def test_role_with_a_misspelled_token_key_names_it(typo: str, meant: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        _resolve({"role_arn": ROLE, typo: "/var/run/token"})

    assert str(info.value) == (f"profile dev has an unknown key {typo!r}; did you mean {meant!r}?")
    assert info.value.field == typo


def test_misspelled_policy_key_is_refused_even_with_a_token_source() -> None:
    """Silently dropping a session policy would hand out the role's full permissions."""
    with pytest.raises(
        ConfigurationError, match="'web_identity_polcy'; did you mean 'web_identity_policy'"
    ):
        _resolve(
            {"web_identity_policy_arns": "", "web_identity_polcy": "{}"},
            {"role_arn": ROLE, "web_identity_token": "a-token"},
        )


@pytest.mark.parametrize(
    "profile",
    [
        # AssumeRole profiles belong to botocore's other providers; their typos are not ours.
        {"role_arn": ROLE, "source_profile": "base", "web_identity_token_fle": "/t"},
        {"role_arn": ROLE, "credential_source": "Ec2InstanceMetadata", "role_sesion_name": "x"},
        # No role at all: nothing here is meant for web identity.
        {"region": "eu-west-1", "web_identity_token_fle": "/t"},
        # A role and ordinary keys, no token source: the chain moves on, as before.
        {
            "role_arn": ROLE,
            "region": "eu-west-1",
            "output": "json",
            "sts_regional_endpoints": "regional",
        },
    ],
)
def test_profiles_not_meant_for_web_identity_pass(profile: Dict[str, Any]) -> None:
    assert _resolve(profile) is None


def test_ordinary_keys_next_to_ours_pass() -> None:
    settings = _resolve(
        {
            "role_arn": ROLE,
            "web_identity_token_file": "/var/run/token",
            "region": "eu-west-1",
            "output": "json",
            "cli_pager": "",
            "retry_mode": "standard",
        }
    )

    assert settings is not None
    assert settings.role_arn == ROLE


@pytest.mark.parametrize(
    ("key", "value", "field", "problem"),
    [
        ("web_identity_policy", "{not json", "policy", "policy is not valid JSON"),
        ("web_identity_policy", "[1, 2]", "policy", "policy must be a JSON object"),
        ("duration_seconds", "60", "duration_seconds", "duration_seconds '60' is outside"),
        ("web_identity_policy_arns", "not-an-arn", "policy_arns", "is not an IAM policy ARN"),
        ("role_session_name", "a b", "role_session_name", "must be 2-64 characters"),
        ("role_arn", "arn:aws:iam::1:user/x", "role_arn", "is not an IAM role ARN"),
    ],
)
def test_bad_profile_value_names_the_profile_and_key(
    key: str, value: str, field: str, problem: str
) -> None:
    profile = {"role_arn": ROLE, "web_identity_token_file": "/var/run/token", key: value}

    with pytest.raises(ConfigurationError) as info:
        _resolve(profile)

    assert str(info.value).startswith(f"profile dev key {key}: ")
    assert problem in str(info.value)
    assert info.value.field == field


def test_bad_argument_value_is_not_blamed_on_the_profile() -> None:
    with pytest.raises(ConfigurationError) as info:
        _resolve(
            {"role_arn": ROLE, "web_identity_policy": '{"Statement": []}'},
            {"web_identity_token": "a-token", "policy": "{not json"},
        )

    assert str(info.value).startswith("policy is not valid JSON")
    assert info.value.field == "policy"
