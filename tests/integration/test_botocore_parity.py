"""``register()`` breaks nothing botocore users rely on in the same process (issue 10).

Every scenario runs twice in one process: with botocore alone, then after
``webid_provider.register()`` (undone in ``finally``). The outcomes must be equal, or differ
exactly as the README's "Differences from botocore's provider" says.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Optional

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError, PartialCredentialsError

import webid_provider
from webid_provider import StsError
from webid_provider.testing import OidcIssuer, StsEmulator

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

ROLE = "arn:aws:iam::123456789012:role/webid-test"
SECOND_ROLE = "arn:aws:iam::123456789012:role/second-hop"


@contextmanager
def registered(**options: Any) -> Iterator[None]:
    webid_provider.register(**options)
    try:
        yield
    finally:
        webid_provider.unregister()


def both(scenario: Callable[[], Any], **options: Any) -> tuple[Any, Any]:
    """``scenario()`` with botocore alone, then after ``register(**options)``."""
    alone = scenario()
    with registered(**options):
        ours = scenario()
    return alone, ours


@pytest.fixture
def awscli_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """awscli's JSON cache directory (fixed at awscli's import) moved into ``tmp_path``."""
    from awscli.customizations import assumerole

    directory = tmp_path / "awscli-cache"
    monkeypatch.setattr(assumerole, "CACHE_DIR", str(directory))
    return directory


def aws(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the aws CLI's real driver in this process; returns (exit status, stdout)."""
    from awscli.clidriver import create_clidriver

    capsys.readouterr()
    status = create_clidriver().main(args)
    return status, capsys.readouterr().out


def _python(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _child_env(tmp_path: Path, config: Path, cache_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEBID_PROVIDER_"))}
    env.update(
        HOME=str(tmp_path / "home"),
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        WEBID_PROVIDER_CACHE_DIR=str(cache_dir),
    )
    return env


#: A child process: register(), then the caller identity of profile ``WEBID_TEST_PROFILE``.
CALLER = """
    import json, os, boto3, webid_provider
    webid_provider.register()
    session = boto3.Session(profile_name=os.environ["WEBID_TEST_PROFILE"])
    credentials = session.get_credentials()
    arn = session.client("sts").get_caller_identity()["Arn"]
    frozen = credentials.get_frozen_credentials()
    print(json.dumps({"arn": arn, "method": credentials.method, "key": frozen.access_key}))
"""


def _caller(env: dict[str, str], profile: str) -> dict[str, str]:
    result: dict[str, str] = json.loads(_python(CALLER, {**env, "WEBID_TEST_PROFILE": profile}))
    return result


# -- 1. the aws CLI driver in the same process ---------------------------------------------------


def test_awscli_with_environment_keys(
    sts_emulator: StsEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    awscli_cache: Path,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts_emulator.endpoint_url)

    def scenario() -> tuple[int, int, str]:
        listed, _ = aws(["configure", "list"], capsys)
        status, out = aws(["sts", "get-caller-identity"], capsys)
        return listed, status, json.loads(out)["Account"]

    alone, ours = both(scenario)
    assert alone == ours == (0, 0, "123456789012")
    assert sts_emulator.assume_count == 0


def test_awscli_with_web_identity(
    irsa_env: Any, capsys: pytest.CaptureFixture[str], awscli_cache: Path
) -> None:
    def scenario() -> tuple[int, str, int]:
        before = irsa_env.emulator.assume_count
        status, out = aws(["sts", "get-caller-identity"], capsys)
        return status, json.loads(out)["Arn"].split("/")[1], irsa_env.emulator.assume_count - before

    alone, ours = both(scenario)
    assert alone == ours == (0, "webid-test", 1)
    # botocore's provider wrote awscli's cache; ours wrote the host cache and nothing there.
    assert len(list(awscli_cache.glob("*.json"))) == 1
    assert list(irsa_env.cache_dir.glob("*.json"))
    with registered():
        again, _ = aws(["sts", "get-caller-identity"], capsys)
    assert again == 0
    assert irsa_env.emulator.assume_count == 2


# -- 2. STS rejections are ClientErrors ----------------------------------------------------------


@pytest.mark.parametrize("code", ["AccessDenied", "InvalidIdentityToken"])
def test_except_client_error_catches_an_sts_rejection(irsa_env: Any, code: str) -> None:
    def scenario() -> Any:
        irsa_env.emulator.fail_next(code, status=403 if code == "AccessDenied" else 400)
        try:
            boto3.Session().client("sts").get_caller_identity()
        except ClientError as error:  # what code written for botocore does
            return error
        raise AssertionError("no ClientError")

    alone, ours = both(scenario, cache_dir=None)
    for caught in (alone, ours):
        assert caught.response["Error"]["Code"] == code
        assert caught.response["ResponseMetadata"]["RequestId"]
        assert caught.operation_name == "AssumeRoleWithWebIdentity"
    assert alone.response["Error"]["Message"] == ours.response["Error"]["Message"]
    assert (
        alone.response["ResponseMetadata"]["HTTPStatusCode"]
        == (ours.response["ResponseMetadata"]["HTTPStatusCode"])
    )
    request_id = ours.response["ResponseMetadata"]["RequestId"]
    assert isinstance(ours, StsError)
    assert ours.code == code
    assert ours.retryable is False
    assert ours.request_id == request_id
    assert irsa_env.token_file.read_text() not in str(ours)


def test_a_connection_failure_is_not_a_client_error_in_either(
    irsa_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

    def scenario() -> BaseException:
        with pytest.raises(Exception) as info:
            boto3.Session().client("sts").get_caller_identity()
        assert not isinstance(info.value, ClientError)
        return info.value

    alone, ours = both(scenario, cache_dir=None)
    assert type(alone).__name__ == "EndpointConnectionError"
    assert isinstance(ours, StsError)
    assert ours.code == "EndpointConnectionError"
    assert type(ours.__cause__).__name__ == "EndpointConnectionError"


# -- 3. each endpoint mints its own keys --------------------------------------------------------


@pytest.fixture
def second_emulator(oidc_issuer: OidcIssuer) -> Iterator[StsEmulator]:
    with StsEmulator(oidc_issuer) as emulator:
        yield emulator


def _two_endpoint_config(
    tmp_path: Path, token_file: Path, first: StsEmulator, second: StsEmulator
) -> Path:
    config = tmp_path / "two-endpoints"
    config.write_text(
        f"[profile a]\nregion = us-east-1\nrole_arn = {ROLE}\n"
        f"web_identity_token_file = {token_file}\nendpoint_url = {first.endpoint_url}\n"
        f"[profile b]\nregion = us-east-1\nrole_arn = {ROLE}\n"
        f"web_identity_token_file = {token_file}\nservices = other-sts\n"
        f"[services other-sts]\nsts =\n  endpoint_url = {second.endpoint_url}\n"
    )
    return config


def test_profiles_with_different_endpoints_each_call_their_own(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    oidc_issuer: OidcIssuer,
    sts_emulator: StsEmulator,
    second_emulator: StsEmulator,
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(oidc_issuer.mint())
    config = _two_endpoint_config(tmp_path, token_file, sts_emulator, second_emulator)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("WEBID_PROVIDER_CACHE_DIR", str(tmp_path / "cache"))

    def scenario() -> tuple[int, int]:
        before = (sts_emulator.assume_count, second_emulator.assume_count)
        for profile in ("a", "b", "a", "b"):
            boto3.Session(profile_name=profile).client("sts").get_caller_identity()
        return (
            sts_emulator.assume_count - before[0],
            second_emulator.assume_count - before[1],
        )

    alone, ours = both(scenario)
    assert alone == (2, 2)  # botocore: one call per session, each to its own endpoint
    assert ours == (1, 1)  # ours: one per endpoint, then the host cache
    keys = {call.access_key_id for call in sts_emulator.calls[2:] + second_emulator.calls[2:]}
    assert len(keys) == 2


def test_across_processes_each_endpoint_is_called_once(
    tmp_path: Path,
    oidc_issuer: OidcIssuer,
    sts_emulator: StsEmulator,
    second_emulator: StsEmulator,
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(oidc_issuer.mint())
    config = _two_endpoint_config(tmp_path, token_file, sts_emulator, second_emulator)
    env = _child_env(tmp_path, config, tmp_path / "shared-cache")

    seen = [_caller(env, profile) for profile in ("a", "b", "a", "b")]

    assert sts_emulator.assume_count == 1
    assert second_emulator.assume_count == 1
    assert seen[0]["key"] == seen[2]["key"] == sts_emulator.calls[0].access_key_id
    assert seen[1]["key"] == seen[3]["key"] == second_emulator.calls[0].access_key_id


# -- 5. a role that IAM accepts reaches STS ------------------------------------------------------


def test_role_arn_with_printable_ascii_in_its_path_reaches_sts(
    irsa_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    role = "arn:aws:iam::123456789012:role/team~1/a!b#c/app"
    monkeypatch.setenv("AWS_ROLE_ARN", role)

    def scenario() -> tuple[str, Optional[str]]:
        arn = boto3.Session().client("sts").get_caller_identity()["Arn"]
        return arn.split("/")[1], irsa_env.emulator.calls[-1].role_arn

    alone, ours = both(scenario, cache_dir=None)
    assert alone == ours == ("app", role)


# -- 7. role chaining over a web identity source profile ----------------------------------------


def _chain_config(tmp_path: Path, token_file: Path, endpoint_url: str) -> Path:
    command = shlex.join([sys.executable, "-c", f"print(open({str(token_file)!r}).read().strip())"])
    config = tmp_path / "chain-config"
    config.write_text(
        f"[default]\nregion = us-east-1\nendpoint_url = {endpoint_url}\n"
        f"[profile by-command]\nrole_arn = {ROLE}\nweb_identity_token_command = {command}\n"
        f"[profile by-file]\nrole_arn = {ROLE}\nweb_identity_token_file = {token_file}\n"
        f"[profile chained-command]\nregion = us-east-1\nendpoint_url = {endpoint_url}\n"
        f"role_arn = {SECOND_ROLE}\nsource_profile = by-command\n"
        f"[profile chained-file]\nregion = us-east-1\nendpoint_url = {endpoint_url}\n"
        f"role_arn = {SECOND_ROLE}\nsource_profile = by-file\n"
    )
    return config


def _second_hop_arn(profile: str) -> Any:
    session = boto3.Session(profile_name=profile)
    credentials = session.get_credentials()
    assert credentials is not None
    return credentials.method, session.client("sts").get_caller_identity()["Arn"]


def test_chained_profile_over_a_token_file_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sts_emulator: StsEmulator, oidc_issuer: Any
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(oidc_issuer.mint())
    config = _chain_config(tmp_path, token_file, sts_emulator.endpoint_url)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("WEBID_PROVIDER_CACHE_DIR", str(tmp_path / "cache"))

    def scenario() -> tuple[str, str, int]:
        before = sts_emulator.assume_count
        method, arn = _second_hop_arn("chained-file")
        return method, arn.split("/")[1], sts_emulator.assume_count - before

    alone, ours = both(scenario)
    assert alone == ours == ("assume-role", "second-hop", 1)
    assert list((tmp_path / "cache").glob("*.json"))  # the first hop went through our cache


def test_chained_profile_over_a_token_command_source_and_its_host_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sts_emulator: StsEmulator, oidc_issuer: Any
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(oidc_issuer.mint())
    config = _chain_config(tmp_path, token_file, sts_emulator.endpoint_url)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("WEBID_PROVIDER_CACHE_DIR", str(cache_dir))

    # botocore alone does not know web_identity_token_command: the documented difference.
    with pytest.raises(PartialCredentialsError):
        _second_hop_arn("chained-command")
    with registered():
        method, arn = _second_hop_arn("chained-command")
    assert method == "assume-role"
    assert arn.split("/")[1] == "second-hop"
    assert sts_emulator.assume_count == 1
    first_hop_key = sts_emulator.calls[0].access_key_id
    signed_by_first_hop = [
        r for r in sts_emulator.signed_requests if r.access_key_id == first_hop_key
    ]
    assert len(signed_by_first_hop) == 1  # the AssumeRole call

    out = _caller(_child_env(tmp_path, config, cache_dir), "chained-command")

    assert out["method"] == "assume-role"
    assert out["arn"].split("/")[1] == "second-hop"
    assert sts_emulator.assume_count == 1  # first hop from the host cache: no new call
    signed_by_first_hop = [
        r for r in sts_emulator.signed_requests if r.access_key_id == first_hop_key
    ]
    assert len(signed_by_first_hop) == 2  # the second hop is botocore's: AssumeRole again


# -- 8. user-agent feature ids -------------------------------------------------------------------


def test_web_identity_user_agent_feature_ids_are_botocores_only(irsa_env: Any) -> None:
    """botocore emits them through a private API; we do not (README, Differences)."""

    def scenario() -> set[str]:
        session = botocore.session.Session()
        agents: list[str] = []

        def record(**kwargs: Any) -> None:
            agent = kwargs["request"].headers.get("User-Agent", b"")
            agents.append(agent.decode() if isinstance(agent, bytes) else agent)

        session.register("before-send.sts.GetCallerIdentity", record)
        client: Any = session.create_client("sts")
        client.get_caller_identity()
        metadata = [part for part in agents[0].split() if part.startswith("m/")]
        return set(metadata[0][2:].split(",")) if metadata else set()

    alone, ours = both(scenario, cache_dir=None)
    # k: CREDENTIALS_STS_ASSUME_ROLE_WEB_ID, h: CREDENTIALS_ENV_VARS_STS_WEB_ID_TOKEN
    assert {"k", "h"} <= alone
    assert not {"k", "h", "q"} & ours
    assert alone - {"k", "h"} == ours
