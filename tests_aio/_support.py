"""Helpers shared by the async tests."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on a new event loop, as an application's ``asyncio.run`` would."""
    return asyncio.run(coroutine)


def warm_emulator(env: Any) -> None:
    """Make moto build its STS backend now, then forget the calls.

    The emulator runs moto in this test process's threads, and moto builds a backend on its
    first request: one-off work that holds the GIL and would land inside a measurement of
    this process's event loop. ``env`` is the ``irsa_env`` fixture's value.
    """
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    emulator = env.emulator
    sts = boto3.Session().client(
        "sts",
        endpoint_url=emulator.endpoint_url,
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED),
    )
    answer = sts.assume_role_with_web_identity(
        RoleArn=env.role_arn,
        RoleSessionName="warm-up",
        WebIdentityToken=env.token_file.read_text(encoding="utf-8").strip(),
    )
    keys = answer["Credentials"]
    boto3.Session(
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
    ).client(
        "sts", endpoint_url=emulator.endpoint_url, region_name="us-east-1"
    ).get_caller_identity()
    emulator.reset()
