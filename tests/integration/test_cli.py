"""The installed ``webid-provider`` console script against the strict STS emulator.

Each test runs real processes: our command, and where parity or interplay is the point, the
aws CLI (``aws`` next to ``sys.executable``) with the same request. Credentials and timestamps
differ between two calls, so outputs are compared with those values masked; exact formatter
parity on one recorded response is tested in ``tests/unit/test_cli.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BIN = Path(sys.executable).parent
WEBID = str(BIN / "webid-provider")
AWS = str(BIN / "aws")
POLICY_ARN = "arn:aws:iam::123456789012:policy/reader"
WIRE_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _env(irsa_env: Any, *, drop: tuple[str, ...] = ()) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in drop}
    env.pop("AWS_DATA_PATH", None)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def _assume_args(irsa_env: Any, session_name: str = "parity") -> list[str]:
    return [
        "--role-arn",
        irsa_env.role_arn,
        "--role-session-name",
        session_name,
        "--endpoint-url",
        irsa_env.emulator.endpoint_url,
        "--region",
        "us-east-1",
        "--policy-arns",
        f"arn={POLICY_ARN}",
        "--duration-seconds",
        "900",
    ]


def _ours(irsa_env: Any, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [WEBID, "assume-role-with-web-identity", "--web-identity-token-file"]
    return _run([*argv, str(irsa_env.token_file), *extra], _env(irsa_env))


def _theirs(irsa_env: Any, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [AWS, "sts", "assume-role-with-web-identity", "--no-sign-request"]
    token = f"file://{irsa_env.token_file}"
    return _run([*argv, "--web-identity-token", token, *extra], _env(irsa_env))


def _one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.stdout == ""
    assert result.stderr.startswith("webid-provider: error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr


def _mask_json(document: dict[str, Any]) -> str:
    credentials = document["Credentials"]
    assert WIRE_TIMESTAMP.match(credentials["Expiration"]), credentials["Expiration"]
    for key in credentials:
        credentials[key] = f"<{key}>"
    return json.dumps(document, indent=4)


def _mask_text(text: str) -> list[list[str]]:
    rows = [line.split("\t") for line in text.splitlines()]
    for row in rows:
        if row[0] == "CREDENTIALS":
            # AccessKeyId, Expiration, SecretAccessKey, SessionToken (sorted keys, as awscli)
            assert len(row) == 5
            assert row[1].startswith("ASIA")
            assert WIRE_TIMESTAMP.match(row[2]), row[2]
            row[1:] = ["<masked>"] * 4
    return rows


def test_json_and_text_output_match_the_aws_cli(irsa_env: Any) -> None:
    args = _assume_args(irsa_env)
    for output in ("json", "text"):
        ours = _ours(irsa_env, *args, "--output", output)
        theirs = _theirs(irsa_env, *args, "--output", output)
        assert (ours.returncode, ours.stderr) == (0, "")
        assert theirs.returncode == 0, theirs.stderr
        if output == "json":
            assert ours.stdout == json.dumps(json.loads(ours.stdout), indent=4) + "\n"
            assert _mask_json(json.loads(ours.stdout)) == _mask_json(json.loads(theirs.stdout))
        else:
            assert _mask_text(ours.stdout) == _mask_text(theirs.stdout)
    calls = irsa_env.emulator.calls
    assert len(calls) == 4
    assert all(call.error_code is None for call in calls)
    assert {(c.role_session_name, c.duration_seconds, c.policy_arns) for c in calls} == {
        ("parity", 900, (POLICY_ARN,))
    }


def test_query_and_table(irsa_env: Any) -> None:
    args = _assume_args(irsa_env)
    result = _ours(irsa_env, *args, "--query", "Credentials.AccessKeyId", "--output", "text")
    assert result.returncode == 0
    assert re.fullmatch(r"ASIA\w+\n", result.stdout)
    result = _ours(irsa_env, *args, "--query", "AssumedRoleUser", "--output", "table")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert "AssumeRoleWithWebIdentity" in lines[1]
    assert "assumed-role/webid-test/parity" in lines[3]


def test_skeleton_and_cli_input_json(irsa_env: Any, tmp_path: Path) -> None:
    ours = _run([WEBID, "assume-role-with-web-identity", "--generate-cli-skeleton"], _env(irsa_env))
    theirs = _run(
        [AWS, "sts", "assume-role-with-web-identity", "--generate-cli-skeleton"], _env(irsa_env)
    )
    assert ours.returncode == 0
    skeleton = json.loads(ours.stdout)
    # Newer botocore models may add members this command does not take; compare the rest.
    aws_skeleton = {k: v for k, v in json.loads(theirs.stdout).items() if k in skeleton}
    assert list(skeleton.items()) == list(aws_skeleton.items())

    skeleton.update(
        RoleArn=irsa_env.role_arn,
        RoleSessionName="from-json",
        WebIdentityToken=irsa_env.token_file.read_text(),
        PolicyArns=[{"arn": POLICY_ARN}],
        DurationSeconds=1800,
    )
    del skeleton["ProviderId"], skeleton["Policy"]
    document = tmp_path / "input.json"
    document.write_text(json.dumps(skeleton))
    result = _run(
        [
            WEBID,
            "assume-role-with-web-identity",
            "--cli-input-json",
            f"file://{document}",
            "--duration-seconds",
            "900",
            "--endpoint-url",
            irsa_env.emulator.endpoint_url,
        ],
        _env(irsa_env),
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout)["AssumedRoleUser"]["Arn"].endswith("/from-json")
    (call,) = irsa_env.emulator.calls
    assert (call.role_session_name, call.duration_seconds) == ("from-json", 900)
    assert call.policy_arns == (POLICY_ARN,)


def test_aws_cli_uses_credential_process_with_one_sts_call(irsa_env: Any) -> None:
    config = Path(irsa_env.env["AWS_CONFIG_FILE"])
    config.write_text(
        f"[profile wi]\nrole_arn = {irsa_env.role_arn}\n"
        f"web_identity_token_file = {irsa_env.token_file}\n\n"
        f"[profile user]\nregion = us-east-1\n"
        f"credential_process = {WEBID} credential-process --profile wi\n"
    )
    env = _env(irsa_env, drop=("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"))
    arns = set()
    for _ in range(3):
        result = _run([AWS, "sts", "get-caller-identity", "--profile", "user"], env)
        assert result.returncode == 0, result.stderr
        arns.add(json.loads(result.stdout)["Arn"])
    assert irsa_env.emulator.assume_count == 1
    (arn,) = arns
    assert ":assumed-role/webid-test/webid-" in arn


def _bad_token_file(tmp_path: Path, kind: str) -> Path:
    if kind == "missing":
        return tmp_path / "no-such-token"
    if kind == "directory":
        return tmp_path
    path = tmp_path / "binary-token"
    path.write_bytes(b"\xff\xfe\x00token")
    return path


@pytest.mark.parametrize(
    ("kind", "needle"),
    [("missing", "does not exist"), ("directory", "is a directory"), ("binary", "not UTF-8")],
)
def test_unusable_token_files_exit_2_without_sts(
    irsa_env: Any, tmp_path: Path, kind: str, needle: str
) -> None:
    path = _bad_token_file(tmp_path, kind)
    argv = [WEBID, "assume-role-with-web-identity", "--web-identity-token-file", str(path)]
    result = _run([*argv, *_assume_args(irsa_env)], _env(irsa_env))
    assert result.returncode == 2
    _one_line_error(result, str(path), needle)
    result = _run(
        [WEBID, "credential-process", "--web-identity-token-file", str(path)], _env(irsa_env)
    )
    assert result.returncode == 2
    _one_line_error(result, needle)
    assert irsa_env.emulator.assume_count == 0


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--duration-seconds", "899"], "duration_seconds"),
        (["--role-session-name", "no spaces allowed"], "role_session_name"),
        (["--cli-input-json", '{"RoleArn": '], "--cli-input-json: invalid JSON"),
        (["--policy", '{"Version": "2012-10-17",'], "policy is not valid JSON"),
        (["--profile", "nope"], "'nope'"),
    ],
)
def test_bad_input_exits_2_without_sts(irsa_env: Any, extra: list[str], needle: str) -> None:
    result = _ours(irsa_env, *_assume_args(irsa_env), *extra)
    assert result.returncode == 2
    _one_line_error(result, needle)
    assert irsa_env.emulator.assume_count == 0


def test_expired_token_is_refused_locally(irsa_env: Any) -> None:
    token = irsa_env.rotate(token=irsa_env.issuer.mint_expired())
    result = _ours(irsa_env, *_assume_args(irsa_env))
    assert result.returncode == 2
    _one_line_error(result, "expired")
    assert token not in result.stderr
    assert irsa_env.emulator.assume_count == 0


@pytest.mark.parametrize("command", ["assume-role-with-web-identity", "credential-process"])
def test_sts_error_exits_1(irsa_env: Any, command: str) -> None:
    irsa_env.emulator.fail_next("AccessDenied", "Not authorized to perform sts:AssumeRole")
    if command == "credential-process":
        result = _run([WEBID, command], _env(irsa_env))
    else:
        result = _ours(irsa_env, *_assume_args(irsa_env))
    assert result.returncode == 1
    _one_line_error(result, "AccessDenied")
    assert irsa_env.token_file.read_text() not in result.stderr
    assert irsa_env.emulator.assume_count == 1


def _json(argv: list[str], env: dict[str, str], status: int = 0) -> Any:
    result = _run([WEBID, *argv], env)
    assert result.returncode == status, result.stderr
    return json.loads(result.stdout)


def test_inspect_env_and_cache_commands(irsa_env: Any) -> None:
    env = _env(irsa_env)
    token = irsa_env.token_file.read_text()
    process = _json(["credential-process"], env)
    assert process["Version"] == 1
    assert process["AccountId"] == "123456789012"
    variables = _json(["env", "--format", "json"], env)
    assert variables["AWS_ACCESS_KEY_ID"] == process["AccessKeyId"]

    text = _run([WEBID, "inspect"], env)
    assert text.returncode == 0, text.stderr
    assert "served from cache" in text.stdout
    assert "env AWS_ROLE_ARN" in text.stdout
    assert token not in text.stdout
    assert process["SecretAccessKey"] not in text.stdout
    report = _json(["inspect", "--format", "json"], env)
    assert report["token"]["claims"]["sub"] == "system:serviceaccount:default:app"
    assert report["cache"]["state"] == "fresh"

    listing = _json(["cache", "list", "--format", "json"], env)
    (row,) = listing["entries"]
    assert (row["key"], row["state"]) == (report["cache"]["key"], "fresh")

    cleared = _run([WEBID, "cache", "clear"], env)
    assert cleared.stdout.startswith("removed cache entry")
    report = _json(["inspect", "--format", "json"], env)
    assert report["next"] == "STS call needed: no cache entry"

    irsa_env.rotate(token=irsa_env.issuer.mint_expired())
    expired = _run([WEBID, "inspect"], env)
    assert expired.returncode == 2
    assert "STS will reject it" in expired.stdout
    assert irsa_env.emulator.assume_count == 1


def test_python_dash_m(irsa_env: Any) -> None:
    result = _run([sys.executable, "-m", "webid_provider", "--version"], _env(irsa_env))
    assert result.returncode == 0
    assert result.stdout.startswith("webid-provider ")
