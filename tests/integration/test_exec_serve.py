"""``webid-provider exec`` and ``serve`` as users run them: real processes, real SDK clients.

The children are real boto3 programs and the real aws CLI (``python -m awscli``), which reach
the endpoint through botocore's ``ContainerProvider``; their requests are signed and checked by
the emulator. STS calls are counted at the emulator.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

BIN = Path(sys.executable).parent
WEBID = str(BIN / "webid-provider")

WHOAMI = textwrap.dedent(
    """
    import json, os, boto3
    session = boto3.Session()
    credentials = session.get_credentials()
    arn = session.client("sts").get_caller_identity()["Arn"]
    print(json.dumps({
        "method": credentials.method,
        "arn": arn,
        "env": sorted(k for k in os.environ if k.startswith("AWS_")),
        "profile": os.environ.get("AWS_PROFILE"),
    }))
    """
)


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("AWS_DATA_PATH", None)
    env.update(extra)
    return env


def _run(argv: list[str], env: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=env or _env(), capture_output=True, text=True, timeout=120, check=False
    )


def _one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.stdout == ""
    assert result.stderr.startswith("webid-provider: error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr


# -- exec -------------------------------------------------------------------------------------


def test_exec_serves_boto3_and_the_aws_cli_with_one_sts_call(irsa_env: Any) -> None:
    script = f"{sys.executable} -c '{WHOAMI}' && {sys.executable} -m awscli sts get-caller-identity"
    done = _run([WEBID, "exec", "--", "sh", "-c", script])
    assert done.returncode == 0, done.stderr[-2000:]
    first, _, cli_output = done.stdout.partition("\n")
    report = json.loads(first)
    assert report["method"] == "container-role"
    assert ":assumed-role/webid-test/webid-" in report["arn"]
    assert json.loads(cli_output)["Arn"] == report["arn"]
    for removed in ("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        assert removed not in report["env"]
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" in report["env"]
    assert "AWS_CONTAINER_AUTHORIZATION_TOKEN" in report["env"]
    assert irsa_env.emulator.assume_count == 1
    assert irsa_env.emulator.expired_credential_uses == 0


def test_exec_removes_what_would_bypass_the_endpoint(irsa_env: Any) -> None:
    config = Path(irsa_env.env["AWS_CONFIG_FILE"])
    config.write_text(
        f"[profile wi]\nrole_arn = {irsa_env.role_arn}\n"
        f"web_identity_token_file = {irsa_env.token_file}\n\n"
        "[profile plain]\nregion = us-east-1\n"
    )
    bypassing = {
        "AWS_ROLE_SESSION_NAME": "from-env",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/nonexistent",
    }
    done = _run(
        [WEBID, "exec", "--", sys.executable, "-c", WHOAMI], _env(AWS_PROFILE="wi", **bypassing)
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["method"] == "container-role"
    assert report["profile"] is None
    assert not set(bypassing) & set(report["env"])
    done = _run([WEBID, "exec", "--", sys.executable, "-c", WHOAMI], _env(AWS_PROFILE="plain"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["profile"] == "plain"  # not a web identity profile: kept
    names = [call.role_session_name for call in irsa_env.emulator.calls]
    assert names[0] == "from-env"  # exec itself still honours the variables it hides
    assert len(names) == 2


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("import sys; sys.exit(7)", 7),
        ("pass", 0),
        ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", 128 + signal.SIGTERM),
    ],
)
def test_exec_exits_with_the_commands_status(irsa_env: Any, code: str, status: int) -> None:
    done = _run([WEBID, "exec", "--", sys.executable, "-c", code])
    assert done.returncode == status, done.stderr


CHILD = textwrap.dedent(
    """
    import signal, sys, time
    received = []
    signal.signal(signal.SIGTERM, lambda n, f: received.append("TERM"))
    signal.signal(signal.SIGUSR1, lambda n, f: received.append("USR1"))
    signal.signal(signal.SIGINT, lambda n, f: received.append("INT"))
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while len(received) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    print(",".join(received), flush=True)
    sys.exit(len(received) + 20)
    """
)


def test_exec_forwards_signals(irsa_env: Any) -> None:
    process = subprocess.Popen(
        [WEBID, "exec", "--", sys.executable, "-c", CHILD],
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # no terminal: SIGINT is ours to forward
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        for number in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT):
            process.send_signal(number)
            time.sleep(0.2)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert out == "USR1,TERM,INT\n", err
    assert process.returncode == 23


def test_exec_bad_input_exits_before_any_sts_call(irsa_env: Any, tmp_path: Path) -> None:
    done = _run([WEBID, "exec"])
    assert done.returncode == 2
    _one_line_error(done, "exec needs a command")
    done = _run([WEBID, "exec", "--"])
    assert done.returncode == 2
    _one_line_error(done, "exec needs a command")
    done = _run([WEBID, "exec", "--", "no-such-command-anywhere", "x"])
    assert done.returncode == 127
    _one_line_error(done, "no-such-command-anywhere", "not found")
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    done = _run([WEBID, "exec", "--", str(script)])
    assert done.returncode == 126
    _one_line_error(done, "not executable")
    done = _run([WEBID, "exec", "--duration-seconds", "5", "--", "true"])
    assert done.returncode == 2
    _one_line_error(done, "duration_seconds")
    assert irsa_env.emulator.assume_count == 0


def test_exec_reports_an_sts_refusal_before_running_the_command(
    irsa_env: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    irsa_env.emulator.fail_next("AccessDenied", status=403)
    done = _run([WEBID, "exec", "--", "touch", str(marker)])
    assert done.returncode == 1
    _one_line_error(done, "AccessDenied")
    assert not marker.exists()


# -- serve ------------------------------------------------------------------------------------


class Server:
    def __init__(self, process: subprocess.Popen[str], url: str, token_file: Path) -> None:
        self.process = process
        self.url = url
        self.token_file = token_file

    def get(self, authorization: Optional[str] = None, method: str = "GET") -> tuple[int, str]:
        request = urllib.request.Request(self.url, method=method)
        if authorization is not None:
            request.add_header("Authorization", authorization)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()


@pytest.fixture
def server(irsa_env: Any, tmp_path: Path) -> Iterator[Server]:
    token_file = tmp_path / "shared" / "token"
    token_file.parent.mkdir()
    process = subprocess.Popen(
        [WEBID, "serve", "--debug", "--write-authorization-token-file", str(token_file)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        name, _, url = line.strip().partition("=")
        if name != "AWS_CONTAINER_CREDENTIALS_FULL_URI":
            process.kill()
            _, err = process.communicate(timeout=30)
            pytest.fail(f"serve did not start: {err[-2000:]}")
        yield Server(process, url, token_file)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=30)  # also closes the pipes
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def test_serve_writes_a_private_token_and_serves_the_aws_cli(irsa_env: Any, server: Server) -> None:
    token = server.token_file.read_text()
    assert stat.S_IMODE(server.token_file.stat().st_mode) == 0o600
    assert len(token) >= 32
    assert "\n" not in token
    assert server.url.startswith("http://127.0.0.1:")
    client_env = {
        k: v for k, v in _env().items() if k not in ("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")
    }
    client_env.update(
        AWS_CONTAINER_CREDENTIALS_FULL_URI=server.url,
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=str(server.token_file),
    )
    for argv in (
        [sys.executable, "-c", WHOAMI],
        [sys.executable, "-m", "awscli", "sts", "get-caller-identity"],
    ):
        done = _run(argv, client_env)
        assert done.returncode == 0, done.stderr[-2000:]
        assert ":assumed-role/webid-test/" in done.stdout
    assert json.loads(_run([sys.executable, "-c", WHOAMI], client_env).stdout)["method"] == (
        "container-role"
    )
    assert irsa_env.emulator.assume_count == 1


def test_serve_refuses_missing_and_wrong_authorization(irsa_env: Any, server: Server) -> None:
    token = server.token_file.read_text()
    status, body = server.get()
    assert status == 401
    status, body = server.get("not-the-token")
    assert status == 403
    status, _ = server.get(token, method="POST")
    assert status == 405
    assert irsa_env.emulator.assume_count == 0
    status, body = server.get(token)
    assert status == 200
    document = json.loads(body)
    assert set(document) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "AccountId"}
    assert document["AccountId"] == "123456789012"
    assert document["Expiration"].endswith("Z")

    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0
    assert server.process.stderr is not None
    log = server.process.stderr.read()
    assert "endpoint: GET /v1/credentials -> 200" in log  # --debug shows requests...
    for secret in (token, document["AccessKeyId"], document["SecretAccessKey"], document["Token"]):
        assert secret not in log  # ...never secrets


def test_serve_hands_out_credentials_outside_the_consumers_window(
    irsa_env: Any, server: Server
) -> None:
    irsa_env.emulator.lifetime_seconds = 14 * 60
    done = _run([WEBID, "credential-process"])  # another consumer left an entry...
    assert done.returncode == 0, done.stderr
    irsa_env.emulator.lifetime_seconds = None
    (path,) = irsa_env.cache_dir.glob("arwwi-*.json")  # ...of a one-hour session, 46 min old
    entry = json.loads(path.read_text())
    expiration = datetime.fromisoformat(json.loads(done.stdout)["Expiration"])
    entry["ObtainedAt"] = (expiration - timedelta(hours=1)).isoformat()
    entry["RefreshAt"] = (expiration - timedelta(minutes=11.25)).isoformat()  # not due yet
    path.write_text(json.dumps(entry))
    token = server.token_file.read_text()
    for _ in range(5):
        status, body = server.get(token)
        assert status == 200
        expiration = datetime.fromisoformat(json.loads(body)["Expiration"].replace("Z", "+00:00"))
        assert (expiration - datetime.now(timezone.utc)).total_seconds() > 50 * 60
    assert irsa_env.emulator.assume_count == 2


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


def test_serve_bad_input_exits_2_before_any_sts_call(irsa_env: Any, tmp_path: Path) -> None:
    token_file = tmp_path / "token-file"
    token_file.write_text("a-good-enough-authorization-token")
    read = ["--authorization-token-file", str(token_file)]
    done = _run([WEBID, "serve", "--host", "0.0.0.0", *read])
    assert done.returncode == 2
    _one_line_error(done, "--host", "loopback", "--allow-remote")
    with _listening_socket() as busy:
        port = str(busy.getsockname()[1])
        done = _run([WEBID, "serve", "--port", port, *read])
    assert done.returncode == 2
    _one_line_error(done, f"port {port}", "in use")
    done = _run([WEBID, "serve"])
    assert done.returncode == 2
    _one_line_error(done, "--authorization-token-file")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    short = tmp_path / "short"
    short.write_text("abc")
    for path, needle in (
        (tmp_path / "missing", "does not exist"),
        (tmp_path, "is a directory"),
        (fifo, "is a FIFO"),
        (short, "visible ASCII"),
    ):
        done = _run([WEBID, "serve", "--authorization-token-file", str(path)])
        assert done.returncode == 2, (path, done.stderr)
        _one_line_error(done, "--authorization-token-file", needle)
    assert irsa_env.emulator.assume_count == 0
