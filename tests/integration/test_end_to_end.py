"""End to end through the strict STS emulator: registration, profiles, sources, parameters."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

import webid_provider
from webid_provider import ConfigurationError, StsError, TokenSourceError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _credentials(session: Any) -> Any:
    """The session's credentials, which these tests expect to exist."""
    creds = session.get_credentials()
    assert creds is not None
    return creds


ROLE = "arn:aws:iam::123456789012:role/webid-test"


def _write_config(path: Path, text: str) -> None:
    path.write_text(text)


def test_irsa_environment_with_register(irsa_env: Any) -> None:
    webid_provider.register()
    session = boto3.Session()
    identity = session.client("sts").get_caller_identity()

    creds = _credentials(session)
    assert creds.method == "webid-provider"
    calls = irsa_env.emulator.calls
    assert len(calls) == 1
    assert calls[0].role_arn == irsa_env.role_arn
    session_name = calls[0].role_session_name
    assert session_name.startswith("webid-")
    assert identity["Arn"].endswith(f"assumed-role/webid-test/{session_name}")


def test_default_session_name_is_stable_across_processes_and_hides_the_subject(
    irsa_env: Any,
) -> None:
    webid_provider.register(cache_dir=None)
    _credentials(boto3.Session()).get_frozen_credentials()
    webid_provider.session(cache_dir=None).get_credentials().get_frozen_credentials()
    names = {call.role_session_name for call in irsa_env.emulator.calls}
    assert len(names) == 1
    assert "serviceaccount" not in names.pop()


def test_web_identity_exposes_every_output_field(irsa_env: Any) -> None:
    irsa_env.rotate(
        sub="system:serviceaccount:prod:api", **{"https://aws.amazon.com/source_identity": "alice"}
    )
    creds = webid_provider.session(
        policy={
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
    ).get_credentials()

    result = creds.web_identity
    assert result.subject_from_web_identity_token == "system:serviceaccount:prod:api"
    assert result.audience == "sts.amazonaws.com"
    assert result.provider == irsa_env.issuer.issuer
    assert result.source_identity == "alice"
    assert result.packed_policy_size is not None
    assert result.packed_policy_size > 0
    assert result.assumed_role_user is not None
    assert result.assumed_role_user.arn.startswith(
        "arn:aws:sts::123456789012:assumed-role/webid-test/"
    )
    assert result.assumed_role_user.assumed_role_id.endswith(
        ":" + irsa_env.emulator.calls[0].role_session_name
    )
    assert result.expiration == irsa_env.emulator.calls[0].expiration
    assert creds.get_frozen_credentials().account_id == "123456789012"


def test_profile_selected_by_aws_profile(
    irsa_env: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name)
    config = tmp_path / "profile-config"
    _write_config(
        config,
        f"""[profile wi]
role_arn = arn:aws:iam::123456789012:role/from-profile
web_identity_token_file = {irsa_env.token_file}
role_session_name = profile-session
duration_seconds = 1800
web_identity_policy = {{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}]}}
web_identity_policy_arns = arn:aws:iam::aws:policy/ReadOnlyAccess, arn:aws:iam::123456789012:policy/extra
""",
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "wi")
    webid_provider.register()
    boto3.Session().client("sts").get_caller_identity()

    (call,) = irsa_env.emulator.calls
    assert call.role_arn == "arn:aws:iam::123456789012:role/from-profile"
    assert call.role_session_name == "profile-session"
    assert call.duration_seconds == 1800
    assert call.policy is not None
    assert json.loads(call.policy)["Statement"][0]["Action"] == "s3:GetObject"
    assert call.policy_arns == (
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
        "arn:aws:iam::123456789012:policy/extra",
    )


def test_explicit_profile_name_wins_over_irsa_environment(
    irsa_env: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "profile-config"
    _write_config(
        config,
        f"""[profile other]
role_arn = arn:aws:iam::123456789012:role/other
web_identity_token_file = {irsa_env.token_file}
""",
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    webid_provider.register()
    _credentials(boto3.Session(profile_name="other")).get_frozen_credentials()
    assert [c.role_arn for c in irsa_env.emulator.calls] == ["arn:aws:iam::123456789012:role/other"]


def test_profile_with_token_command(
    irsa_env: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name)
    config = tmp_path / "profile-config"
    command = f'{sys.executable} -c "import sys; sys.stdout.write(open(sys.argv[1]).read())" {irsa_env.token_file}'
    _write_config(
        config,
        f"""[profile cmd]
role_arn = arn:aws:iam::123456789012:role/cmd
web_identity_token_command = {command}
""",
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    webid_provider.register()
    boto3.Session(profile_name="cmd").client("sts").get_caller_identity()
    assert [c.error_code for c in irsa_env.emulator.calls] == [None]


def test_install_with_a_callable_calls_it_for_every_sts_call(irsa_env: Any) -> None:
    minted: list[str] = []

    def fetch_token() -> bytes:
        minted.append(irsa_env.issuer.mint(sub="callable-user", jti=str(len(minted))))
        return minted[-1].encode()

    for _ in range(2):
        session = webid_provider.install(
            boto3.Session(), web_identity_token=fetch_token, cache_dir=None
        )
        session.client("sts").get_caller_identity()
        webid_provider._refresh_state.clear_memory_state()

    hashes = [c.token_sha256 for c in irsa_env.emulator.calls]
    assert len(minted) == 2
    assert len(hashes) == 2
    assert hashes[0] != hashes[1]
    assert irsa_env.emulator.calls[0].token_subject == "callable-user"


def test_session_sends_policy_policy_arns_and_duration(irsa_env: Any) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}],
    }
    session = webid_provider.session(
        policy=policy,
        policy_arns=["arn:aws:iam::aws:policy/ReadOnlyAccess"],
        duration_seconds=900,
        role_session_name="explicit-name",
    )
    session.client("sts").get_caller_identity()
    (call,) = irsa_env.emulator.calls
    assert json.loads(call.policy) == policy
    assert call.policy_arns == ("arn:aws:iam::aws:policy/ReadOnlyAccess",)
    assert call.duration_seconds == 900
    assert call.role_session_name == "explicit-name"


def test_token_rotation_is_picked_up_on_the_next_sts_call(irsa_env: Any) -> None:
    webid_provider.register(cache_dir=None)
    _credentials(boto3.Session()).get_frozen_credentials()
    irsa_env.rotate(jti="rotated")
    webid_provider._refresh_state.clear_memory_state()
    _credentials(boto3.Session()).get_frozen_credentials()
    first, second = irsa_env.emulator.calls
    assert first.token_sha256 != second.token_sha256
    assert first.role_session_name == second.role_session_name  # same identity, same name


def test_environment_keys_still_win(irsa_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    webid_provider.register()
    creds = _credentials(boto3.Session())
    assert creds.method == "env"
    assert irsa_env.emulator.calls == []


def test_a_token_source_passed_in_code_wins_over_environment_keys(
    irsa_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    session = webid_provider.session(web_identity_token_file=irsa_env.token_file)
    assert _credentials(session).method == "webid-provider"
    assert _credentials(session).get_frozen_credentials().access_key != "AKIDEXAMPLE"


def test_without_web_identity_settings_the_chain_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    webid_provider.register()
    session = boto3.Session()
    assert _credentials(session).method == "env"
    provider = webid_provider.WebIdentityProvider(session._session)
    assert provider.load() is None


def _cache_files(irsa_env: Any) -> list[Path]:
    return sorted(irsa_env.cache_dir.glob("arwwi-*.json")) if irsa_env.cache_dir.exists() else []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"role_arn": "arn:aws:iam::123:role/short-account"}, "role_arn"),
        ({"role_arn": "arn:aws:sts::123456789012:assumed-role/x/y"}, "role_arn"),
        ({"role_session_name": "has space"}, "role_session_name"),
        ({"role_session_name": "x"}, "role_session_name"),
        ({"duration_seconds": 899}, "duration_seconds"),
        ({"duration_seconds": 43201}, "duration_seconds"),
        ({"policy": "{not json"}, "policy"),
        ({"policy": "x" * 2049}, "policy"),
        ({"policy_arns": [f"arn:aws:iam::aws:policy/P{i}" for i in range(11)]}, "policy_arns"),
        ({"policy_arns": ["not-an-arn"]}, "policy_arns"),
        ({"provider_id": "https://www.amazon.com:443"}, "provider_id"),
        ({"durationseconds": 900}, "durationseconds"),
    ],
)
def test_bad_options_fail_locally_naming_the_field(
    irsa_env: Any, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        webid_provider.session(**options).get_credentials().get_frozen_credentials()
    assert info.value.field == field
    assert field in str(info.value)
    assert irsa_env.emulator.calls == []
    assert _cache_files(irsa_env) == []


def test_provider_id_with_a_jwt_is_refused_before_sts(irsa_env: Any) -> None:
    creds = webid_provider.session(provider_id="www.amazon.com").get_credentials()
    with pytest.raises(ConfigurationError, match="provider_id"):
        creds.get_frozen_credentials()
    assert irsa_env.emulator.calls == []


def test_missing_role_names_role_arn(irsa_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ROLE_ARN")
    with pytest.raises(ConfigurationError, match="role_arn"):
        webid_provider.session().get_credentials()
    assert irsa_env.emulator.calls == []


def _raise_runtime_error() -> str:
    raise RuntimeError("idp down")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"web_identity_token_file": "/nonexistent/token"}, "/nonexistent/token"),
        ({"web_identity_token": _raise_runtime_error}, "RuntimeError"),
        ({"web_identity_token": lambda: None}, "NoneType"),
        ({"web_identity_token": "   "}, "empty"),
        (
            {
                "web_identity_token_command": [
                    sys.executable,
                    "-c",
                    "import sys; sys.stderr.write('no idp'); sys.exit(3)",
                ]
            },
            "no idp",
        ),
        ({"web_identity_token_command": "/nonexistent/get-token --audience sts"}, "not found"),
    ],
)
def test_token_source_failures_are_clear_and_cache_nothing(
    irsa_env: Any, options: dict[str, Any], expected: str
) -> None:
    creds = webid_provider.session(**options).get_credentials()
    with pytest.raises(TokenSourceError) as info:
        creds.get_frozen_credentials()
    assert expected in str(info.value)
    assert irsa_env.emulator.calls == []
    assert _cache_files(irsa_env) == []


def test_empty_token_file_names_the_path(irsa_env: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty-token"
    empty.write_text("\n")
    creds = webid_provider.session(web_identity_token_file=empty).get_credentials()
    with pytest.raises(TokenSourceError) as info:
        creds.get_frozen_credentials()
    assert info.value.path == str(empty)
    assert str(empty) in str(info.value)
    assert irsa_env.emulator.calls == []


def test_sts_rejection_names_the_code_and_never_the_token(irsa_env: Any) -> None:
    token = irsa_env.issuer.mint_badly_signed()
    creds = webid_provider.session(web_identity_token=token, cache_dir=None).get_credentials()
    with pytest.raises(StsError) as info:
        creds.get_frozen_credentials()
    assert info.value.code == "InvalidIdentityToken"
    assert info.value.retryable is False
    assert token not in str(info.value)
    assert [c.error_code for c in irsa_env.emulator.calls] == ["InvalidIdentityToken"]


def test_no_token_or_secret_in_any_log_record_even_at_debug(
    irsa_env: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = irsa_env.token_file.read_text().strip()
    session = webid_provider.session(cache_dir=None)
    session.client("sts").get_caller_identity()
    frozen = _credentials(session).get_frozen_credentials()
    text = caplog.text
    assert "Making request for OperationModel(name=AssumeRoleWithWebIdentity)" in text
    for secret in (token, token.split(".")[1], frozen.secret_key):
        assert secret not in text
    # botocore itself logs the X-Amz-Security-Token header of every signed request at DEBUG;
    # that is botocore's behaviour for any credentials, so the session token is checked only
    # in the AssumeRoleWithWebIdentity records.
    for record in caplog.records:
        if "AssumeRoleWithWebIdentity" in record.getMessage():
            assert str(frozen.token) not in record.getMessage()
