"""What a new user meets first (issue 16's papercuts): the example run without its
environment, ``inspect`` without a region, ``--cache-dir``'s help, and a misspelled profile key
through the command line. No sockets: nothing here calls STS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from webid_provider._cli import main
from webid_provider._settings import DEFAULT_CACHE_DIR, resolve_cache_dir

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "boto3_session.py"
ROLE = "arn:aws:iam::123456789012:role/app"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhcHAifQ.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("present", "missing"),
    [
        ({}, "AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE"),
        ({"AWS_ROLE_ARN": ROLE}, "AWS_WEB_IDENTITY_TOKEN_FILE"),
    ],
)
def test_boto3_session_example_without_its_environment_says_what_to_set(
    present: dict[str, str], missing: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        env={**env, **present},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert result.stdout == ""
    assert f": set {missing}: run it in a pod with IRSA" in result.stderr
    assert "webid-provider emulator --token-file" in result.stderr
    assert "Traceback" not in result.stderr


def test_inspect_without_a_region_does_not_print_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    monkeypatch.setenv("AWS_ROLE_ARN", ROLE)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
    monkeypatch.setenv("WEBID_PROVIDER_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)

    main(["inspect"])
    out = capsys.readouterr().out

    (line,) = [row for row in out.splitlines() if row.startswith("sts endpoint")]
    assert line.split(None, 2)[2] == "http://127.0.0.1:9 (no region set)"
    assert "None" not in out


def test_inspect_names_the_region_when_there_is_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    monkeypatch.setenv("WEBID_PROVIDER_CACHE_DIR", str(tmp_path / "cache"))

    main(
        [
            "inspect",
            "--role-arn",
            ROLE,
            "--web-identity-token-file",
            str(token_file),
            "--region",
            "eu-west-1",
        ]
    )

    assert "https://sts.eu-west-1.amazonaws.com (region eu-west-1)" in capsys.readouterr().out


def test_cache_dir_help_names_the_real_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("WEBID_PROVIDER_CACHE_DIR", raising=False)

    monkeypatch.setenv("COLUMNS", "400")  # no wrapping inside the path

    assert main(["inspect", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())

    assert "(default: $WEBID_PROVIDER_CACHE_DIR, else ~/.aws/webid-provider/cache)" in help_text
    default = resolve_cache_dir(DEFAULT_CACHE_DIR, {})
    assert default == Path(os.path.expanduser("~/.aws/webid-provider/cache"))


def test_misspelled_profile_key_through_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config"
    config.write_text(
        f"[profile dev]\nrole_arn = {ROLE}\nweb_identity_token_fle = /var/run/token\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))

    status = main(["inspect", "--profile", "dev"])

    assert status == 2
    assert capsys.readouterr().err == (
        "webid-provider: error: profile dev has an unknown key 'web_identity_token_fle'; "
        "did you mean 'web_identity_token_file'?\n"
    )


def test_bad_policy_in_a_profile_names_the_key_and_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    config = tmp_path / "config"
    config.write_text(
        f"[profile dev]\nrole_arn = {ROLE}\nweb_identity_token_file = {token_file}\n"
        "web_identity_policy = {not json\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))

    status = main(["inspect", "--profile", "dev"])

    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "webid-provider: error: profile dev key web_identity_policy: policy is not valid JSON"
    )
