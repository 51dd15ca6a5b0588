"""``webid-provider emulator`` as another language's test would use it: a real process, its
first output line, a token file, and an AWS SDK that knows nothing about webid_provider.

The "other SDK" is plain boto3 in a child process (no pytest plugin, no ``register()``):
botocore's own web identity provider reads ``AWS_ROLE_ARN`` and
``AWS_WEB_IDENTITY_TOKEN_FILE`` and calls AssumeRoleWithWebIdentity at
``AWS_ENDPOINT_URL_STS``, exactly as the Go, Java and JavaScript SDKs do.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Dict, List, Tuple

import jwt
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

ROLE = "arn:aws:iam::123456789012:role/app"
SUB = "system:serviceaccount:prod:app"
PLAIN_BOTO3 = """
import json, boto3
from botocore.exceptions import ClientError
try:
    print(json.dumps(boto3.client("sts").get_caller_identity()))
except ClientError as exc:
    print(json.dumps({"error": exc.response["Error"]["Code"]}))
"""


class Emulator:
    """A running ``webid-provider emulator`` process and what it printed."""

    def __init__(self, args: List[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "webid_provider", "emulator", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.first_line = self.process.stdout.readline()
        self.lines = [self.first_line.strip()]
        while len(self.lines) < 1 + sum(a in args for a in ("--token-file", "--role-arn")):
            self.lines.append(self.process.stdout.readline().strip())
        self.env = dict(line.split("=", 1) for line in self.lines if "=" in line)

    @property
    def url(self) -> str:
        return self.env["AWS_ENDPOINT_URL_STS"]

    def admin(self, path: str, form: Dict[str, str] | None = None) -> Any:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        with urllib.request.urlopen(self.url + path, data=data, timeout=30) as answer:
            return json.loads(answer.read())

    def stop(self, sig: int = signal.SIGTERM) -> Tuple[int, str, str]:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        out, err = self.process.communicate(timeout=30)
        return self.process.returncode, out, err


@pytest.fixture
def start() -> Iterator[Any]:
    started: List[Emulator] = []

    def _start(*args: str) -> Emulator:
        emulator = Emulator(list(args))
        started.append(emulator)
        return emulator

    yield _start
    for emulator in started:
        if emulator.process.poll() is None:
            emulator.process.kill()
            emulator.process.communicate(timeout=30)


def _plain_boto3(tmp_path: Path, env: Dict[str, str]) -> Dict[str, Any]:
    config = tmp_path / "empty-config"
    config.write_text("")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    clean.update(
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=str(config),
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        **env,
    )
    result = subprocess.run(
        [sys.executable, "-c", PLAIN_BOTO3],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer: Dict[str, Any] = json.loads(result.stdout)
    return answer


def test_plain_boto3_assumes_the_role_with_the_token_file_and_sigterm_exits_0(
    start: Any, tmp_path: Path
) -> None:
    token_file = tmp_path / "sa" / "token"
    emulator = start("--token-file", str(token_file), "--role-arn", ROLE, "--sub", SUB)

    assert emulator.first_line.startswith("AWS_ENDPOINT_URL_STS=http://127.0.0.1:")
    assert emulator.env["AWS_WEB_IDENTITY_TOKEN_FILE"] == str(token_file)
    assert emulator.env["AWS_ROLE_ARN"] == ROLE
    identity = _plain_boto3(tmp_path, emulator.env)

    assert identity["Arn"].startswith("arn:aws:sts::123456789012:assumed-role/app/")
    (call,) = emulator.admin("/_emulator/calls")["calls"]
    assert call["error_code"] is None
    assert call["token_subject"] == SUB
    assert call["token_sha256"] == hashlib.sha256(token_file.read_bytes()).hexdigest()
    assert token_file.is_symlink()
    assert (token_file.parent / "..data").is_symlink()
    assert (token_file.stat().st_mode & 0o777) == 0o600

    status, out, err = emulator.stop(signal.SIGTERM)
    assert (status, out, err) == (0, "", "")


def test_strict_trust_policy_and_sigint(start: Any, tmp_path: Path) -> None:
    """Only --role-arn exists, and it trusts exactly --sub: like AWS, anything else is refused."""
    token_file = tmp_path / "token"
    emulator = start("--token-file", str(token_file), "--role-arn", ROLE, "--sub", SUB)
    other_role = "arn:aws:iam::123456789012:role/not-created"
    dev_token = emulator.admin("/_emulator/token", {"sub": "system:serviceaccount:dev:app"})
    dev_file = tmp_path / "dev-token"
    dev_file.write_text(dev_token["token"])

    refused_role = _plain_boto3(tmp_path, {**emulator.env, "AWS_ROLE_ARN": other_role})
    refused_sub = _plain_boto3(
        tmp_path, {**emulator.env, "AWS_WEB_IDENTITY_TOKEN_FILE": str(dev_file)}
    )

    assert refused_role == {"error": "AccessDenied"}
    assert refused_sub == {"error": "AccessDenied"}
    codes = [c["error_code"] for c in emulator.admin("/_emulator/calls")["calls"]]
    assert codes == ["AccessDenied", "AccessDenied"]
    assert emulator.stop(signal.SIGINT)[0] == 0


def test_discovery_document_points_at_the_served_jwks(start: Any, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    emulator = start("--token-file", str(token_file))

    discovery = emulator.admin("/.well-known/openid-configuration")
    with urllib.request.urlopen(discovery["jwks_uri"], timeout=30) as answer:
        jwks = json.loads(answer.read())
    token = token_file.read_text()
    header = jwt.get_unverified_header(token)
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(
        token,
        jwt.PyJWK(key, algorithm=header["alg"]),
        algorithms=[header["alg"]],
        audience="sts.amazonaws.com",
        issuer=discovery["issuer"],
    )

    assert discovery["jwks_uri"] == emulator.url + "/.well-known/jwks.json"
    assert claims["sub"] == "system:serviceaccount:default:app"
    assert emulator.stop()[0] == 0


def test_token_is_reminted_before_it_expires(start: Any, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    emulator = start("--token-file", str(token_file), "--token-ttl", "3", "--aud", "my-client")
    first = token_file.read_text()

    deadline = time.monotonic() + 20
    while token_file.read_text() == first and time.monotonic() < deadline:
        time.sleep(0.1)
    second = token_file.read_text()

    assert second != first
    claims = jwt.decode(second, options={"verify_signature": False})
    assert claims["aud"] == "my-client"
    assert claims["exp"] - claims["iat"] == 3
    assert claims["exp"] > time.time()  # rotated before the old one's lifetime ran out
    assert emulator.stop()[0] == 0


def test_lifetime_and_latency_options(start: Any, tmp_path: Path) -> None:
    emulator = start("--token-file", str(tmp_path / "t"), "--role-arn", ROLE, "--lifetime", "60")

    settings = emulator.admin("/_emulator/settings", {})
    assert settings == {"lifetime_seconds": 60, "latency_seconds": 0.0}
    assert emulator.stop()[0] == 0


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "webid_provider", "emulator", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"webid-provider: error: cannot listen on 127.0.0.1:{port}: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--token-ttl", "1"], "--token-ttl must be at least 2 seconds"),
        (["--role-arn", "arn:aws:iam::123:user/x"], "--role-arn 'arn:aws:iam::123:user/x' is not"),
        (["--lifetime", "-1"], "--lifetime must be >= 0"),
        (["--port", "70000"], "--port 70000 is not a port number"),
    ],
)
def test_bad_arguments_are_usage_errors(args: List[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "webid_provider", "emulator", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(f"webid-provider: error: {message}")


def test_existing_token_file_is_refused(tmp_path: Path) -> None:
    existing = tmp_path / "token"
    existing.write_text("keep me")

    result = subprocess.run(
        [sys.executable, "-m", "webid_provider", "emulator", "--token-file", str(existing)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert f"--token-file {existing} exists" in result.stderr
    assert existing.read_text() == "keep me"
