"""``examples/kubernetes/sidecar.yaml``: its wiring, and its two containers run as processes.

The sidecar's command runs as written (port 0 instead of 9911, paths under ``tmp_path``), with
the sidecar's environment pointed at the emulator; then a boto3 program runs with exactly the
app container's environment (the URL's port substituted) and gets container credentials.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SIDECAR = Path(__file__).resolve().parents[2] / "examples" / "kubernetes" / "sidecar.yaml"
BIN = Path(sys.executable).parent


def _pod() -> dict[str, Any]:
    documents = list(yaml.safe_load_all(SIDECAR.read_text("utf-8")))
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", [])}


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_app_reads_what_the_sidecar_serves() -> None:
    pod = _pod()
    (sidecar,) = pod["initContainers"]
    (app,) = pod["containers"]
    assert sidecar["restartPolicy"] == "Always"
    command = sidecar["command"]
    assert command[:2] == ["webid-provider", "serve"]
    port = _option(command, "--port")
    app_env, sidecar_env = _env(app), _env(sidecar)
    url = urlsplit(app_env["AWS_CONTAINER_CREDENTIALS_FULL_URI"])
    assert (url.scheme, url.hostname, str(url.port), url.path) == (
        "http",
        "127.0.0.1",
        port,
        "/v1/credentials",
    )
    assert sidecar["startupProbe"]["tcpSocket"]["port"] == int(port)
    token_path = _option(command, "--write-authorization-token-file")
    assert app_env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] == token_path
    app_mounts = {m["name"]: m for m in app["volumeMounts"]}
    sidecar_mounts = {m["name"]: m for m in sidecar["volumeMounts"]}
    shared = app_mounts["webid-authorization"]
    assert shared["readOnly"] is True
    assert shared["mountPath"] == sidecar_mounts["webid-authorization"]["mountPath"]
    assert token_path.startswith(shared["mountPath"] + "/")
    # The web identity settings live in the sidecar only, so the app's SDK cannot bypass it.
    assert {"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"} <= set(sidecar_env)
    assert not {"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"} & set(app_env)
    assert "aws-token" not in app_mounts
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["webid-authorization"]
    assert sidecar_env["WEBID_PROVIDER_CACHE_DIR"] == sidecar_mounts["webid-cache"]["mountPath"]


def test_the_sidecar_command_serves_the_app_environment(irsa_env: Any, tmp_path: Path) -> None:
    pod = _pod()
    (sidecar,) = pod["initContainers"]
    (app,) = pod["containers"]
    command = list(sidecar["command"])
    command[0] = str(BIN / "webid-provider")
    command[command.index("--port") + 1] = "0"
    token_path = tmp_path / "webid" / "authorization-token"
    token_path.parent.mkdir()
    command[command.index("--write-authorization-token-file") + 1] = str(token_path)
    sidecar_env = {**os.environ, **_env(sidecar), **irsa_env.env}  # the emulator, not AWS
    process = subprocess.Popen(
        command, env=sidecar_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        served = urlsplit(process.stdout.readline().strip().partition("=")[2])
        app_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        app_env.update(_env(app))
        declared = urlsplit(app_env["AWS_CONTAINER_CREDENTIALS_FULL_URI"])
        app_env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = declared._replace(
            netloc=f"{declared.hostname}:{served.port}"
        ).geturl()
        app_env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = str(token_path)
        app_env.update(
            AWS_ENDPOINT_URL_STS=irsa_env.env["AWS_ENDPOINT_URL_STS"],
            AWS_CONFIG_FILE=irsa_env.env["AWS_CONFIG_FILE"],
            AWS_EC2_METADATA_DISABLED="true",
        )
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "import boto3; s = boto3.Session(); "
                "print(s.get_credentials().method, s.client('sts').get_caller_identity()['Arn'])",
            ],
            env=app_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        method, arn = done.stdout.split()
        assert method == "container-role"
        assert ":assumed-role/webid-test/" in arn
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0
    assert irsa_env.emulator.assume_count == 1
