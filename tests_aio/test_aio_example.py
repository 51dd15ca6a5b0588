"""``examples/async_s3fs.py`` runs against the emulator (moto's S3 behind it), as users run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "async_s3fs.py"


def _run(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        env={**os.environ, **env},
        cwd=EXAMPLE.parent,
        capture_output=True,
        text=True,
        timeout=75,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_async_s3fs_example_reads_and_writes_s3_on_web_identity_credentials(
    irsa_env: Any,
) -> None:
    # S3 requests go to moto through the emulator, which refuses keys it has seen expire.
    env = {"AWS_ENDPOINT_URL_S3": irsa_env.emulator.endpoint_url}
    first, second = _run(env, "s3://example-bucket/webid")
    assert first["s3fs"]["content"] == "written with web identity credentials\n"
    assert first["s3fs"]["listed"] == ["example-bucket/webid/hello.txt"]
    assert second["aiobotocore"]["method"] == "webid-provider"
    assert second["aiobotocore"]["arn"].startswith(
        "arn:aws:sts::123456789012:assumed-role/webid-test/"
    )
    assert second["aiobotocore"]["subject"] == "system:serviceaccount:default:app"
    # s3fs's session and the plain aiobotocore session: one STS call between them, and every
    # S3 request was signed with the key it returned.
    (call,) = irsa_env.emulator.successful_calls
    signed = {request.access_key_id for request in irsa_env.emulator.signed_requests}
    assert signed == {call.access_key_id}
    assert irsa_env.emulator.expired_credential_uses == 0

    # A second process on the host: the cache answers, STS is not called again.
    _run(env, "s3://example-bucket/webid")
    assert irsa_env.emulator.assume_count == 1


def test_async_s3fs_example_explains_its_usage(irsa_env: Any) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "usage:" in done.stderr
