"""``webid-provider demo``: the package doing its job end to end, with no AWS account.

It starts the strict STS emulator on a loopback port, lays out a projected service-account
token the way the kubelet does, and then shows, in a few lines:

1. credentials through ``webid_provider.register()`` and an ordinary ``boto3.Session()``;
2. a second *process* served from the shared disk cache without an STS call;
3. a token rotation (``..data`` symlink swap) picked up by the next STS call;
4. a refresh ahead of expiry (the emulator hands out 8-second credentials), with no request
   signed by expired credentials.

Security: it prints access key ids shortened and never a secret key, session token or token.
Needs the ``testing`` extra (moto); nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

ROLE_ARN = "arn:aws:iam::123456789012:role/demo-app"
LIFETIME_SECONDS = 8
SECOND_PROCESS = textwrap.dedent(
    """
    import json, boto3, webid_provider
    webid_provider.register()
    arn = boto3.Session().client("sts").get_caller_identity()["Arn"]
    key = boto3.Session().get_credentials().get_frozen_credentials().access_key
    print(json.dumps({"arn": arn, "key": key}))
    """
)


def run_demo(out: TextIO = sys.stdout) -> int:
    """Run the demo, writing what happens to ``out``; returns a process exit code."""
    import boto3

    import webid_provider
    from webid_provider.testing import KubeletTokenFile, OidcIssuer, StsEmulator

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    issuer = OidcIssuer()
    with (
        tempfile.TemporaryDirectory(prefix="webid-demo-") as workdir,
        StsEmulator(issuer, lifetime_seconds=LIFETIME_SECONDS) as sts,
    ):
        root = Path(workdir)
        kubelet = KubeletTokenFile(
            root / "serviceaccount", issuer.mint(sub="system:serviceaccount:demo:app")
        )
        env = _demo_environment(root, kubelet.path, sts.endpoint_url)
        say(f"STS emulator on {sts.endpoint_url}; token file {kubelet.path}")
        with _environment(env):
            webid_provider.register()
            try:
                client = boto3.Session().client("sts")
                arn = client.get_caller_identity()["Arn"]
                creds = boto3.Session().get_credentials()
                if not isinstance(creds, webid_provider.WebIdentityCredentials):
                    say(f"   unexpected credentials: {type(creds).__name__}")
                    return 1
                first_key = creds.get_frozen_credentials().access_key
                result = creds.web_identity
                say(f"1. register(): {arn}")
                say(
                    f"   subject {result.subject_from_web_identity_token}, "
                    f"audience {result.audience}, key {_short(first_key)}, "
                    f"valid {result.lifetime_seconds:.0f} s; STS calls: {sts.assume_count}"
                )

                child = subprocess.run(
                    [sys.executable, "-c", SECOND_PROCESS],
                    env={**os.environ},
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=True,
                )
                other = json.loads(child.stdout.strip().splitlines()[-1])
                same = "the same" if other["key"] == first_key else "different"
                say(
                    f"2. a second process got {same} credentials ({_short(other['key'])}) from "
                    f"the cache in {env['WEBID_PROVIDER_CACHE_DIR']}; STS calls: {sts.assume_count}"
                )

                kubelet.rotate(issuer.mint(sub="system:serviceaccount:demo:app", jti="rotated"))
                say("3. the kubelet rotated the token (..data symlink swap)")

                key, requests = first_key, 0
                deadline = time.monotonic() + 3 * LIFETIME_SECONDS
                while key == first_key and time.monotonic() < deadline:
                    client.get_caller_identity()
                    requests += 1
                    key = creds.get_frozen_credentials().access_key
                    time.sleep(0.2)
                if key == first_key:
                    say("   the credentials were not refreshed in time")
                    return 1
                calls = sts.successful_calls
                rotated = calls[-1].token_sha256 != calls[0].token_sha256
                say(
                    f"4. refreshed ahead of expiry after {requests} requests: key {_short(key)}; "
                    f"the STS call used the {'rotated' if rotated else 'old'} token"
                )
                say(
                    f"done: {sts.assume_count} STS calls for 2 processes and {requests + 2} "
                    "requests; requests signed with expired credentials: "
                    f"{sts.expired_credential_uses}"
                )
                return 0 if rotated and sts.expired_credential_uses == 0 else 1
            finally:
                webid_provider.unregister()


def _demo_environment(root: Path, token_file: Path, endpoint_url: str) -> dict[str, str]:
    config = root / "aws-config"
    config.write_text("")
    return {
        "AWS_ROLE_ARN": ROLE_ARN,
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
        "AWS_ENDPOINT_URL_STS": endpoint_url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(root / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "WEBID_PROVIDER_CACHE_DIR": str(root / "cache"),
    }


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set the demo's variables, hide the user's AWS ones, restore everything afterwards."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("AWS_"):
            del os.environ[name]
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _short(access_key_id: Any) -> str:
    text = str(access_key_id)
    return f"{text[:4]}…{text[-4:]}"
