"""Settings resolution (argument > environment > profile) and every local limit."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Optional, Union

import pytest

from webid_provider._errors import ConfigurationError
from webid_provider._settings import (
    DEFAULT_CACHE_DIR,
    WebIdentitySettings,
    resolve_cache_dir,
    resolve_settings,
)
from webid_provider._token_spec import TokenSpec, parse_command
from webid_provider._validation import (
    validate_duration,
    validate_policy,
    validate_policy_arns,
    validate_provider_id,
    validate_role_arn,
    validate_session_name,
)

ROLE = "arn:aws:iam::123456789012:role/from-argument"
ENV_ROLE = "arn:aws:iam::123456789012:role/from-env"
PROFILE_ROLE = "arn:aws:iam::123456789012:role/from-profile"
POLICY_ARN = "arn:aws:iam::aws:policy/ReadOnlyAccess"
SECRET_TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2VuLXZhbHVl.c2lnbmF0dXJl"

PathInput = Callable[[Path], Union[str, Path]]
PATH_TYPES: list[PathInput] = [str, Path]


def resolve(
    options: Optional[Mapping[str, Any]] = None,
    *,
    environ: Optional[Mapping[str, str]] = None,
    profile: Optional[Mapping[str, Any]] = None,
    profile_name: Optional[str] = None,
    use_environment: bool = True,
) -> WebIdentitySettings:
    settings = resolve_settings(
        options or {},
        environ=environ or {},
        profile=profile,
        profile_name=profile_name,
        use_environment=use_environment,
    )
    assert settings is not None
    return settings


def with_token(**options: Any) -> dict[str, Any]:
    """Options with a token string and a role, overridden by ``options``."""
    merged: dict[str, Any] = {"role_arn": ROLE, "web_identity_token": SECRET_TOKEN}
    merged.update(options)
    return merged


def check_field(error: ConfigurationError, field: str) -> None:
    """The error carries the field and its message names it; no token is quoted."""
    assert error.field == field
    assert field in str(error)
    assert SECRET_TOKEN not in str(error)


# -- no configuration -------------------------------------------------------------------------


def test_nothing_configured_returns_none() -> None:
    assert resolve_settings({}, environ={}) is None


def test_a_role_without_any_token_source_returns_none() -> None:
    assert (
        resolve_settings(
            {"role_arn": ROLE},
            environ={"AWS_ROLE_ARN": ENV_ROLE},
            profile={"role_arn": PROFILE_ROLE},
        )
        is None
    )


def test_empty_environment_values_count_as_unset() -> None:
    assert resolve_settings({}, environ={"AWS_WEB_IDENTITY_TOKEN_FILE": ""}) is None


# -- precedence -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "environ", "profile", "expected", "origin"),
    [
        (
            {"role_arn": ROLE},
            {"AWS_ROLE_ARN": ENV_ROLE},
            {"role_arn": PROFILE_ROLE},
            ROLE,
            "argument",
        ),
        ({}, {"AWS_ROLE_ARN": ENV_ROLE}, {"role_arn": PROFILE_ROLE}, ENV_ROLE, "env AWS_ROLE_ARN"),
        ({}, {}, {"role_arn": PROFILE_ROLE}, PROFILE_ROLE, "profile dev key role_arn"),
        ({}, {"AWS_ROLE_ARN": ""}, {"role_arn": PROFILE_ROLE}, PROFILE_ROLE, "profile dev key"),
    ],
    ids=["argument-wins", "env-beats-profile", "profile-only", "empty-env-skipped"],
)
def test_role_arn_precedence(
    options: dict[str, Any],
    environ: dict[str, str],
    profile: dict[str, str],
    expected: str,
    origin: str,
) -> None:
    settings = resolve(
        {"web_identity_token": SECRET_TOKEN, **options},
        environ=environ,
        profile=profile,
        profile_name="dev",
    )
    assert settings.role_arn == expected
    assert settings.origins["role_arn"].startswith(origin)


@pytest.mark.parametrize(
    ("options", "environ", "profile", "expected", "origin"),
    [
        (
            {"role_session_name": "arg-session"},
            {"AWS_ROLE_SESSION_NAME": "env-session"},
            {"role_session_name": "profile-session"},
            "arg-session",
            "argument",
        ),
        (
            {},
            {"AWS_ROLE_SESSION_NAME": "env-session"},
            {"role_session_name": "profile-session"},
            "env-session",
            "env AWS_ROLE_SESSION_NAME",
        ),
        (
            {},
            {},
            {"role_session_name": "profile-session"},
            "profile-session",
            "profile dev key role_session_name",
        ),
    ],
    ids=["argument-wins", "env-beats-profile", "profile-only"],
)
def test_session_name_precedence(
    options: dict[str, Any],
    environ: dict[str, str],
    profile: dict[str, str],
    expected: str,
    origin: str,
) -> None:
    settings = resolve(with_token(**options), environ=environ, profile=profile, profile_name="dev")
    assert settings.role_session_name == expected
    assert settings.origins["role_session_name"] == origin


@pytest.mark.parametrize("path_type", PATH_TYPES)
def test_token_file_argument_beats_env_and_profile(tmp_path: Path, path_type: PathInput) -> None:
    settings = resolve(
        {"role_arn": ROLE, "web_identity_token_file": path_type(tmp_path / "arg-token")},
        environ={"AWS_WEB_IDENTITY_TOKEN_FILE": str(tmp_path / "env-token")},
        profile={"web_identity_token_file": str(tmp_path / "profile-token")},
    )
    assert settings.token == TokenSpec(kind="file", file=tmp_path / "arg-token")
    assert isinstance(settings.token.file, Path)
    assert settings.origins["token"] == "argument"


def test_token_file_env_beats_profile(tmp_path: Path) -> None:
    settings = resolve(
        {},
        environ={"AWS_ROLE_ARN": ENV_ROLE, "AWS_WEB_IDENTITY_TOKEN_FILE": str(tmp_path / "env")},
        profile={"web_identity_token_command": "get-token", "role_arn": PROFILE_ROLE},
        profile_name="dev",
    )
    assert settings.token.kind == "file"
    assert settings.token.file == tmp_path / "env"
    assert settings.role_arn == ENV_ROLE
    assert settings.origins["token"] == "env AWS_WEB_IDENTITY_TOKEN_FILE"


def test_token_string_argument_beats_env_token_file(tmp_path: Path) -> None:
    settings = resolve(
        with_token(), environ={"AWS_WEB_IDENTITY_TOKEN_FILE": str(tmp_path / "env-token")}
    )
    assert settings.token.kind == "string"
    assert settings.token.string == SECRET_TOKEN


def test_profile_token_command_and_role() -> None:
    settings = resolve(
        {},
        profile={"role_arn": PROFILE_ROLE, "web_identity_token_command": "get-token --aud sts"},
        profile_name="ci",
    )
    assert settings.token == TokenSpec(kind="command", command=("get-token", "--aud", "sts"))
    assert settings.origins["token"] == "profile ci key web_identity_token_command"
    assert settings.origins["role_arn"] == "profile ci key role_arn"
    assert settings.profile_name == "ci"


def test_profile_origin_defaults_to_default_profile(tmp_path: Path) -> None:
    settings = resolve(
        {}, profile={"role_arn": PROFILE_ROLE, "web_identity_token_file": str(tmp_path / "t")}
    )
    assert settings.origins["token"] == "profile default key web_identity_token_file"


def test_environment_is_ignored_when_use_environment_is_false(tmp_path: Path) -> None:
    environ = {
        "AWS_ROLE_ARN": ENV_ROLE,
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(tmp_path / "env-token"),
        "AWS_ROLE_SESSION_NAME": "env-session",
    }
    profile = {
        "role_arn": PROFILE_ROLE,
        "web_identity_token_file": str(tmp_path / "profile-token"),
        "role_session_name": "profile-session",
    }
    settings = resolve({}, environ=environ, profile=profile, use_environment=False)
    assert settings.role_arn == PROFILE_ROLE
    assert settings.token.file == tmp_path / "profile-token"
    assert settings.role_session_name == "profile-session"
    assert not any(origin.startswith("env") for origin in settings.origins.values())


def test_environment_only_is_nothing_when_use_environment_is_false(tmp_path: Path) -> None:
    environ = {"AWS_ROLE_ARN": ENV_ROLE, "AWS_WEB_IDENTITY_TOKEN_FILE": str(tmp_path / "t")}
    assert resolve_settings({}, environ=environ, use_environment=False) is None
    assert resolve_settings({}, environ=environ, use_environment=True) is not None


def test_profile_keys_of_this_project_are_read() -> None:
    policy = {"Version": "2012-10-17", "Statement": []}
    settings = resolve(
        {"web_identity_token": SECRET_TOKEN},
        profile={
            "role_arn": PROFILE_ROLE,
            "duration_seconds": "900",
            "web_identity_policy": json.dumps(policy),
            "web_identity_policy_arns": f"{POLICY_ARN}, arn:aws:iam::123456789012:policy/p2",
            "web_identity_provider_id": "www.amazon.com",
        },
        profile_name="dev",
    )
    assert settings.duration_seconds == 900
    assert settings.policy is not None
    assert json.loads(settings.policy) == policy
    assert settings.policy_arns == (POLICY_ARN, "arn:aws:iam::123456789012:policy/p2")
    assert settings.provider_id == "www.amazon.com"
    assert settings.origins["duration_seconds"] == "profile dev key duration_seconds"
    assert settings.origins["policy"] == "profile dev key web_identity_policy"
    assert settings.origins["policy_arns"] == "profile dev key web_identity_policy_arns"
    assert settings.origins["provider_id"] == "profile dev key web_identity_provider_id"


def test_origins_record_every_source() -> None:
    settings = resolve(
        {"web_identity_token": SECRET_TOKEN, "duration_seconds": 3600},
        environ={"AWS_ROLE_ARN": ENV_ROLE},
        profile={"role_session_name": "from-profile"},
        profile_name="dev",
    )
    assert dict(settings.origins) == {
        "token": "argument",
        "role_arn": "env AWS_ROLE_ARN",
        "role_session_name": "profile dev key role_session_name",
        "duration_seconds": "argument",
        "cache_dir": "default",
    }


def test_unset_optional_values_stay_none() -> None:
    settings = resolve(with_token())
    assert settings.role_session_name is None
    assert settings.duration_seconds is None
    assert settings.policy is None
    assert settings.policy_arns == ()
    assert settings.provider_id is None


# -- configuration errors ---------------------------------------------------------------------


def test_role_arn_missing_names_role_arn() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings({"web_identity_token": SECRET_TOKEN}, environ={})
    check_field(info.value, "role_arn")
    assert "AWS_ROLE_ARN" in str(info.value)


def test_unknown_option_is_named() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings({"role_arn": ROLE, "durationseconds": 900}, environ={})
    check_field(info.value, "durationseconds")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("web_identity_token_file", "web_identity_token"),
        ("web_identity_token_file", "web_identity_token_command"),
        ("web_identity_token", "web_identity_token_command"),
    ],
)
def test_two_token_options_are_an_error(first: str, second: str) -> None:
    values = {
        "web_identity_token_file": "/var/run/token",
        "web_identity_token": SECRET_TOKEN,
        "web_identity_token_command": "get-token",
    }
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(
            {"role_arn": ROLE, first: values[first], second: values[second]}, environ={}
        )
    assert first in str(info.value)
    check_field(info.value, second)


def test_profile_with_token_file_and_command_is_an_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(
            {},
            environ={},
            profile={
                "role_arn": PROFILE_ROLE,
                "web_identity_token_file": "/var/run/token",
                "web_identity_token_command": "get-token",
            },
            profile_name="both",
        )
    check_field(info.value, "web_identity_token_command")
    assert "web_identity_token_file" in str(info.value)
    assert "profile both" in str(info.value)


def test_token_of_wrong_type_is_an_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings({"role_arn": ROLE, "web_identity_token": 12345}, environ={})
    check_field(info.value, "web_identity_token")


def test_token_file_of_wrong_type_is_an_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings({"role_arn": ROLE, "web_identity_token_file": 42}, environ={})
    check_field(info.value, "web_identity_token_file")


def test_token_callable_and_bytes() -> None:
    def get_token() -> str:
        return SECRET_TOKEN

    settings = resolve({"role_arn": ROLE, "web_identity_token": get_token})
    assert settings.token.kind == "callable"
    assert settings.token.function is get_token
    assert "get_token" in settings.token.describe()

    from_bytes = resolve({"role_arn": ROLE, "web_identity_token": SECRET_TOKEN.encode()})
    assert from_bytes.token == TokenSpec(kind="string", string=SECRET_TOKEN)


def test_token_is_not_in_repr_or_description() -> None:
    settings = resolve(with_token())
    assert SECRET_TOKEN not in repr(settings)
    assert SECRET_TOKEN not in settings.token.describe()


@pytest.mark.parametrize("path_type", PATH_TYPES)
def test_token_file_expands_user(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, path_type: Callable[[str], Union[str, Path]]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    settings = resolve({"role_arn": ROLE, "web_identity_token_file": path_type("~/token")})
    assert settings.token.file == tmp_path / "home" / "token"


# -- role ARN -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123456789012:role/path/name",
        "arn:aws:iam::123456789012:role/name",
        "arn:aws-cn:iam::123456789012:role/name",
        "arn:aws-us-gov:iam::123456789012:role/a/b/c+=,.@-_",
        "  arn:aws:iam::123456789012:role/padded  ",
    ],
)
def test_valid_role_arns(arn: str) -> None:
    assert validate_role_arn(arn) == arn.strip()
    assert resolve(with_token(role_arn=arn)).role_arn == arn.strip()


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123:role/x",
        "arn:aws:sts::123456789012:assumed-role/role/session",
        "arn:aws:iam::123456789012:user/alice",
        "arn:aws:iam::123456789012:role/",
        "not-an-arn",
        "",
    ],
)
def test_invalid_role_arns(arn: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(with_token(role_arn=arn), environ={})
    check_field(info.value, "role_arn")


def test_invalid_role_arn_from_env_is_rejected() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(
            {"web_identity_token": SECRET_TOKEN}, environ={"AWS_ROLE_ARN": "arn:aws:iam::1:role/x"}
        )
    check_field(info.value, "role_arn")


# -- session name -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ab", "a" * 64, "a+b=c,d.e@f-g_h", "1234"])
def test_valid_session_names(name: str) -> None:
    assert validate_session_name(name) == name
    assert resolve(with_token(role_session_name=name)).role_session_name == name


@pytest.mark.parametrize("name", ["a", "a" * 65, "has space", "slash/x", "colon:x", "", "   "])
def test_invalid_session_names(name: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(with_token(role_session_name=name), environ={})
    check_field(info.value, "role_session_name")


@pytest.mark.parametrize("name", ["sessi\u00f3n", "\u30bb\u30c3\u30b7\u30e7\u30f3"])
def test_non_ascii_session_names_are_rejected(name: str) -> None:
    with pytest.raises(ConfigurationError):
        validate_session_name(name)


def test_session_name_none_stays_none() -> None:
    assert validate_session_name(None) is None


# -- duration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(900, 900), (43200, 43200), ("900", 900), (" 3600 ", 3600)]
)
def test_valid_durations(value: object, expected: int) -> None:
    assert validate_duration(value) == expected


def test_duration_string_from_profile() -> None:
    settings = resolve(
        {"web_identity_token": SECRET_TOKEN},
        profile={"role_arn": PROFILE_ROLE, "duration_seconds": "900"},
    )
    assert settings.duration_seconds == 900


@pytest.mark.parametrize("value", ["abc", 899, 43201, True, 900.5, "", -1])
def test_invalid_durations(value: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(with_token(duration_seconds=value), environ={})
    check_field(info.value, "duration_seconds")


def test_invalid_duration_from_profile() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(
            {"role_arn": ROLE, "web_identity_token": SECRET_TOKEN},
            environ={},
            profile={"duration_seconds": "abc"},
        )
    check_field(info.value, "duration_seconds")


# -- inline policy ----------------------------------------------------------------------------


def policy_of_length(length: int) -> str:
    text = '{"a":"' + "x" * (length - 8) + '"}'
    assert len(text) == length
    json.loads(text)
    return text


def test_policy_at_the_limit_is_accepted() -> None:
    policy = policy_of_length(2048)
    assert validate_policy(policy) == policy


def test_policy_over_the_limit_is_rejected() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(with_token(policy=policy_of_length(2049)), environ={})
    check_field(info.value, "policy")
    assert "2049" in str(info.value)


@pytest.mark.parametrize("policy", ["{not json", "[]", '"a string"', "42", 42, ["Statement"]])
def test_policy_must_be_a_json_object(policy: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(with_token(policy=policy), environ={})
    check_field(info.value, "policy")


def test_dict_policy_is_encoded_to_compact_json() -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
    settings = resolve(with_token(policy=policy))
    assert settings.policy is not None
    assert json.loads(settings.policy) == policy
    assert " " not in settings.policy
    assert settings.policy == json.dumps(policy, separators=(",", ":"), sort_keys=True)


def test_dict_policy_over_the_limit_is_rejected() -> None:
    with pytest.raises(ConfigurationError) as info:
        validate_policy({"Statement": "x" * 2100})
    check_field(info.value, "policy")


# -- policy ARNs ------------------------------------------------------------------------------

TEN_ARNS = [f"arn:aws:iam::123456789012:policy/p{index}" for index in range(10)]


def test_ten_policy_arns_are_accepted() -> None:
    assert resolve(with_token(policy_arns=TEN_ARNS)).policy_arns == tuple(TEN_ARNS)


def test_eleven_policy_arns_are_rejected() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(with_token(policy_arns=[*TEN_ARNS, POLICY_ARN]), environ={})
    check_field(info.value, "policy_arns")
    assert "11" in str(info.value)


@pytest.mark.parametrize(
    "arn",
    [
        "not-an-arn",
        "arn:aws:iam::123456789012:role/not-a-policy",
        "arn:aws:iam::123:policy/x",
        "arn:aws:s3:::bucket",
    ],
)
def test_bad_policy_arn_is_rejected(arn: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(with_token(policy_arns=[POLICY_ARN, arn]), environ={})
    check_field(info.value, "policy_arns")
    assert arn in str(info.value)


@pytest.mark.parametrize(
    "value",
    [
        f"{POLICY_ARN}, arn:aws:iam::123456789012:policy/mine",
        f"{POLICY_ARN},arn:aws:iam::123456789012:policy/mine",
        f"  {POLICY_ARN}\n  arn:aws:iam::123456789012:policy/mine\n",
        [POLICY_ARN, "arn:aws:iam::123456789012:policy/mine"],
        ({"arn": POLICY_ARN}, {"arn": "arn:aws:iam::123456789012:policy/mine"}),
        [{"arn": POLICY_ARN}, "arn:aws:iam::123456789012:policy/mine"],
    ],
    ids=["comma-space", "comma", "newlines", "list", "arn-dicts", "mixed"],
)
def test_policy_arn_forms(value: object) -> None:
    expected = (POLICY_ARN, "arn:aws:iam::123456789012:policy/mine")
    assert validate_policy_arns(value) == expected


def test_policy_arns_from_profile_string() -> None:
    settings = resolve(
        {"web_identity_token": SECRET_TOKEN},
        profile={
            "role_arn": PROFILE_ROLE,
            "web_identity_policy_arns": f"{POLICY_ARN}, {POLICY_ARN}2",
        },
    )
    assert settings.policy_arns == (POLICY_ARN, f"{POLICY_ARN}2")


def test_policy_arns_of_wrong_type_are_rejected() -> None:
    with pytest.raises(ConfigurationError) as info:
        validate_policy_arns(42)
    check_field(info.value, "policy_arns")


# -- provider id ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["www.amazon.com", "graph.facebook.com"])
def test_valid_provider_ids(value: str) -> None:
    assert validate_provider_id(value) == value


@pytest.mark.parametrize(
    "value", ["https://www.amazon.com", "www.amazon.com:443", "abc", "www.amazon.com/path", ""]
)
def test_invalid_provider_ids(value: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(with_token(provider_id=value), environ={})
    check_field(info.value, "provider_id")


# -- token command ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("get-token", ("get-token",)),
        (
            'get-token --audience "sts amazonaws" --flag',
            ("get-token", "--audience", "sts amazonaws", "--flag"),
        ),
        ("cmd 'single quoted' a\\ b", ("cmd", "single quoted", "a b")),
        ("cmd $HOME; rm -rf / | cat", ("cmd", "$HOME;", "rm", "-rf", "/", "|", "cat")),
        (["get token", "--x", "a b"], ("get token", "--x", "a b")),
        (("prog",), ("prog",)),
    ],
)
def test_command_parsing(value: object, expected: tuple[str, ...]) -> None:
    assert parse_command(value) == expected


@pytest.mark.parametrize("value", ["", "   ", [], [""], ()])
def test_empty_command_is_an_error(value: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_command(value)
    check_field(info.value, "web_identity_token_command")
    assert "empty" in str(info.value)


@pytest.mark.parametrize("value", ['get-token "unbalanced', "get-token 'unbalanced"])
def test_unbalanced_quotes_are_an_error(value: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings({"role_arn": ROLE, "web_identity_token_command": value}, environ={})
    check_field(info.value, "web_identity_token_command")


@pytest.mark.parametrize("value", [42, ["ok", 1], b"get-token"])
def test_command_of_wrong_type_is_an_error(value: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_command(value)
    check_field(info.value, "web_identity_token_command")


def test_command_option_resolves_to_command_spec() -> None:
    settings = resolve({"role_arn": ROLE, "web_identity_token_command": ["gh", "auth", "token"]})
    assert settings.token == TokenSpec(kind="command", command=("gh", "auth", "token"))
    assert "gh auth token" in settings.token.describe()


# -- cache directory --------------------------------------------------------------------------


def test_cache_dir_none_means_memory_only() -> None:
    settings = resolve(with_token(cache_dir=None), environ={"WEBID_PROVIDER_CACHE_DIR": "/env"})
    assert settings.cache_dir is None
    assert settings.origins["cache_dir"] == "argument (memory only)"


@pytest.mark.parametrize("path_type", PATH_TYPES)
def test_cache_dir_argument_beats_env(tmp_path: Path, path_type: PathInput) -> None:
    settings = resolve(
        with_token(cache_dir=path_type(tmp_path / "arg")),
        environ={"WEBID_PROVIDER_CACHE_DIR": str(tmp_path / "env")},
    )
    assert settings.cache_dir == tmp_path / "arg"
    assert settings.origins["cache_dir"] == "argument"


def test_cache_dir_from_env(tmp_path: Path) -> None:
    settings = resolve(with_token(), environ={"WEBID_PROVIDER_CACHE_DIR": str(tmp_path / "env")})
    assert settings.cache_dir == tmp_path / "env"
    assert settings.origins["cache_dir"] == "env WEBID_PROVIDER_CACHE_DIR"


def test_cache_dir_default_is_under_home_dot_aws(tmp_path: Path) -> None:
    home = Path(os.environ["HOME"])
    assert home == tmp_path / "home"  # conftest points HOME into tmp_path
    settings = resolve(with_token())
    assert settings.cache_dir == home / ".aws" / "webid-provider" / "cache"
    assert settings.origins["cache_dir"] == "default"


def test_cache_dir_expands_user(tmp_path: Path) -> None:
    assert resolve_cache_dir("~/cache", {}) == tmp_path / "home" / "cache"
    assert resolve_cache_dir(Path("~/cache"), {}) == tmp_path / "home" / "cache"
    assert resolve_cache_dir(None, {}) is None


def test_cache_dir_falls_back_to_the_passwd_home_when_home_is_empty(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import pwd

    monkeypatch.setenv("HOME", "")  # expanduser("~") would make that "/"
    entry = pwd.getpwuid(os.getuid())
    assert resolve_cache_dir(DEFAULT_CACHE_DIR, {}) == (
        Path(entry.pw_dir) / ".aws" / "webid-provider" / "cache"
    )


# -- bad Python-API input names its field (issue 11, item 19) ----------------------------------


class _Circular(dict):  # type: ignore[type-arg]  # a dict that contains itself
    pass


def _circular_policy() -> dict[str, Any]:
    policy: dict[str, Any] = _Circular(Version="2012-10-17")
    policy["Statement"] = policy
    return policy


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"policy": {"a": {1}}}, "policy"),
        ({"policy": {"Version": float("nan")}}, "policy"),
        ({"policy": {1: "mixed", "key": "types"}}, "policy"),
        ({"policy": "[" * 100_000}, "policy"),
        ({"cache_dir": 123}, "cache_dir"),
        ({"cache_dir": b"/tmp/cache"}, "cache_dir"),
        ({"cache_dir": ""}, "cache_dir"),
        ({"cache_dir": "/tmp/ca\0che"}, "cache_dir"),
        ({"cache_dir": True}, "cache_dir"),
        ({"web_identity_token_file": "/tmp/to\0ken"}, "web_identity_token_file"),
        ({"web_identity_token_file": b"/tmp/token"}, "web_identity_token_file"),
        (
            {"web_identity_token_command": ["get-token", "--audience\0x"]},
            "web_identity_token_command",
        ),
        ({"web_identity_token_command": ["get-token", 3]}, "web_identity_token_command"),
        ({"policy_arns": {"arn": POLICY_ARN}}, "policy_arns"),
        ({"policy_arns": [7]}, "policy_arns"),
        ({"duration_seconds": 900.5}, "duration_seconds"),
        ({"duration_seconds": [900]}, "duration_seconds"),
        ({"duration_seconds": True}, "duration_seconds"),
        ({"role_session_name": ["a", "b"]}, "role_session_name"),
        ({"role_arn": 123456789012}, "role_arn"),
        ({"provider_id": {"host": "www.amazon.com"}}, "provider_id"),
    ],
    ids=lambda value: repr(value)[:40] if isinstance(value, dict) else str(value),
)
def test_bad_python_api_values_are_configuration_errors_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    import webid_provider

    token_options = {"web_identity_token": SECRET_TOKEN}
    if any(name in options for name in ("web_identity_token_file", "web_identity_token_command")):
        token_options = {}
    with pytest.raises(ConfigurationError) as info:
        webid_provider.session(**{"role_arn": ROLE, **token_options, **options})
    check_field(info.value, field)


def test_a_circular_policy_names_the_field() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(with_token(policy=_circular_policy()), environ={})
    check_field(info.value, "policy")
