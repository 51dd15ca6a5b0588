"""aiobotocore sessions after ``register()``/``install()``: our credentials where web identity
is configured, aiobotocore's own chain untouched everywhere else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.credentials import AioCredentialResolver, AioCredentials
from aiobotocore.session import AioSession, get_session

import webid_provider
from tests_aio._support import run
from webid_provider._aio_glue import AioWebIdentityCredentials

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def _identity(session: AioSession) -> tuple[Any, str]:
    credentials = await session.get_credentials()
    async with session.create_client("sts", region_name="us-east-1") as client:
        identity = await client.get_caller_identity()
    return credentials, identity["Arn"]


def test_register_gives_new_aiobotocore_sessions_web_identity_credentials(irsa_env: Any) -> None:
    webid_provider.register()
    credentials, arn = run(_identity(get_session()))
    assert isinstance(credentials, AioWebIdentityCredentials)
    assert credentials.method == "webid-provider"
    assert arn.startswith("arn:aws:sts::123456789012:assumed-role/webid-test/")
    (call,) = irsa_env.emulator.successful_calls
    frozen = run(credentials.get_frozen_credentials())
    assert frozen.access_key == call.access_key_id
    signed = {request.access_key_id for request in irsa_env.emulator.signed_requests}
    assert signed == {call.access_key_id}


def test_get_web_identity_returns_every_output_field(irsa_env: Any) -> None:
    webid_provider.register(role_session_name="async-fields")
    credentials = run(get_session().get_credentials())
    result = run(credentials.get_web_identity())
    assert result.assumed_role_user.arn.endswith("/webid-test/async-fields")
    assert result.subject_from_web_identity_token == "system:serviceaccount:default:app"
    assert result.access_key_id == irsa_env.emulator.successful_calls[-1].access_key_id


def test_environment_keys_still_win_after_register(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bug this replaces: register() made ``await get_credentials()`` raise TypeError."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENTKEY01")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "environment-secret")
    webid_provider.register()
    credentials = run(get_session().get_credentials())
    assert isinstance(credentials, AioCredentials)
    assert credentials.method == "env"
    assert run(credentials.get_frozen_credentials()).access_key == "AKIAENVIRONMENTKEY01"


def test_environment_keys_win_over_web_identity_settings_from_the_environment(
    irsa_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENTKEY01")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "environment-secret")
    webid_provider.register()
    credentials = run(get_session().get_credentials())
    assert credentials.method == "env"
    assert irsa_env.emulator.assume_count == 0


def test_without_any_source_aiobotocore_finds_nothing_as_before() -> None:
    webid_provider.register()
    assert run(get_session().get_credentials()) is None


def _methods(session: AioSession) -> list[str]:
    resolver = session.get_component("credential_provider")
    assert isinstance(resolver, AioCredentialResolver)
    return [provider.METHOD for provider in resolver.providers]


def test_chain_is_aiobotocores_own_with_ours_before_assume_role() -> None:
    own = _methods(AioSession())
    webid_provider.register()
    ours = _methods(AioSession())
    expected = list(own)
    expected.insert(expected.index("assume-role"), "webid-provider")
    assert ours == expected
    # The same placement as the sync chain: right before assume-role, after env; aiobotocore's
    # own web identity provider stays, after ours, as botocore's does in the sync chain.
    assert ours[:3] == ["env", "webid-provider", "assume-role"]
    assert ours.index("assume-role-with-web-identity") > ours.index("webid-provider")


def test_chain_order_matches_the_sync_chain() -> None:
    import botocore.session

    webid_provider.register()
    sync = [
        p.METHOD for p in botocore.session.Session().get_component("credential_provider").providers
    ]
    aio = _methods(AioSession())
    shared = [name for name in sync if name in aio]
    assert [name for name in aio if name in sync] == shared
    assert shared.index("webid-provider") == shared.index("assume-role") - 1


def test_a_token_source_passed_in_code_goes_first(irsa_env: Any) -> None:
    session = webid_provider.install(AioSession(), web_identity_token_file=str(irsa_env.token_file))
    assert _methods(session)[0] == "webid-provider"


def test_install_on_one_aiobotocore_session_leaves_others_alone(irsa_env: Any) -> None:
    installed = webid_provider.install(AioSession(), role_session_name="just-this-one")
    credentials = run(installed.get_credentials())
    assert credentials.method == "webid-provider"
    other = run(AioSession().get_credentials())
    assert other.method == "assume-role-with-web-identity"  # aiobotocore's own provider


def test_unregister_restores_aiobotocores_provider_for_new_sessions(irsa_env: Any) -> None:
    webid_provider.register()
    webid_provider.unregister()
    credentials = run(get_session().get_credentials())
    assert credentials.method == "assume-role-with-web-identity"


def test_a_profile_set_after_the_session_was_created_is_respected(
    irsa_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "profiles"
    config.write_text(
        "[profile web]\n"
        f"role_arn = {irsa_env.role_arn}\n"
        f"web_identity_token_file = {irsa_env.token_file}\n"
        "role_session_name = from-profile\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_ROLE_ARN")
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE")
    webid_provider.register()
    session = get_session()
    session.set_config_variable("profile", "web")
    credentials, arn = run(_identity(session))
    assert credentials.method == "webid-provider"
    assert arn.endswith("/webid-test/from-profile")


def test_importing_the_package_imports_neither_aiobotocore_nor_aiohttp() -> None:
    code = (
        "import sys, webid_provider\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiobotocore', 'aiohttp',"
        " 'aioboto3')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_aioboto3_session_without_aioboto3_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "aioboto3", None)  # import aioboto3 now raises
    with pytest.raises(ImportError, match=r"pip install 'webid-provider\[aioboto3\]'"):
        webid_provider.aioboto3_session()


@pytest.mark.aioboto3
def test_aioboto3_session_checks_options() -> None:
    with pytest.raises(webid_provider.ConfigurationError, match="duration_seconds"):
        webid_provider.aioboto3_session(duration_seconds=5)


@pytest.mark.aioboto3
def test_aioboto3_session_helper_is_ready_to_use(irsa_env: Any) -> None:
    session = webid_provider.aioboto3_session(role_session_name="aioboto3-helper")

    async def main() -> tuple[str, str]:
        async with session.client("sts") as client:
            identity = await client.get_caller_identity()
        credentials = await session.get_credentials()
        return identity["Arn"], credentials.method

    arn, method = run(main())
    assert method == "webid-provider"
    assert arn.endswith("/webid-test/aioboto3-helper")


@pytest.mark.aioboto3
def test_install_accepts_an_aioboto3_session_and_register_covers_new_ones(
    irsa_env: Any,
) -> None:
    import aioboto3

    installed = webid_provider.install(aioboto3.Session(), role_session_name="installed")
    webid_provider.register(role_session_name="registered")
    registered = aioboto3.Session()

    async def main(session: Any) -> str:
        async with session.client("sts") as client:
            identity = await client.get_caller_identity()
        return str(identity["Arn"])

    assert run(main(installed)).endswith("/webid-test/installed")
    assert run(main(registered)).endswith("/webid-test/registered")
    assert irsa_env.emulator.assume_count == 2  # two session names: two keys
