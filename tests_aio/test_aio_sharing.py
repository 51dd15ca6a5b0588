"""The async path shares the sync path's state in a process and its cache on a host."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import boto3
import pytest
from aiobotocore.session import get_session

import webid_provider
from tests_aio._support import run

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

SYNC_WORKER = """
import json, boto3, webid_provider
webid_provider.register()
frozen = boto3.Session().get_credentials().get_frozen_credentials()
print(json.dumps({"access_key": frozen.access_key}))
"""

ASYNC_WORKER = """
import asyncio, json, webid_provider
from aiobotocore.session import get_session
webid_provider.register()

async def main():
    credentials = await get_session().get_credentials()
    frozen = await credentials.get_frozen_credentials()
    return {"access_key": frozen.access_key, "method": credentials.method}

print(json.dumps(asyncio.run(main())))
"""


def _sync_access_key() -> str:
    credentials = boto3.Session().get_credentials()
    assert credentials is not None
    return str(credentials.get_frozen_credentials().access_key)


def _worker(code: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_sync_process_then_an_async_process_make_one_sts_call(irsa_env: Any) -> None:
    sync = _worker(SYNC_WORKER)
    async_ = _worker(ASYNC_WORKER)
    assert async_["method"] == "webid-provider"
    assert async_["access_key"] == sync["access_key"]
    assert irsa_env.emulator.assume_count == 1


def test_an_async_process_then_a_sync_process_make_one_sts_call(irsa_env: Any) -> None:
    async_ = _worker(ASYNC_WORKER)
    sync = _worker(SYNC_WORKER)
    assert sync["access_key"] == async_["access_key"]
    assert irsa_env.emulator.assume_count == 1


def test_a_sync_session_and_an_async_session_in_one_process_share_one_sts_call(
    irsa_env: Any,
) -> None:
    webid_provider.register(cache_dir=None)  # memory only: sharing must come from the process
    sync_key = _sync_access_key()

    async def main() -> str:
        credentials = await get_session().get_credentials()
        return str((await credentials.get_frozen_credentials()).access_key)

    assert run(main()) == sync_key
    assert irsa_env.emulator.assume_count == 1
    assert not irsa_env.cache_dir.exists()


def test_async_first_then_sync_in_one_process_share_one_sts_call(irsa_env: Any) -> None:
    webid_provider.register(cache_dir=None)

    async def main() -> str:
        credentials = await get_session().get_credentials()
        return str((await credentials.get_frozen_credentials()).access_key)

    async_key = run(main())
    sync_key = _sync_access_key()
    assert sync_key == async_key
    assert irsa_env.emulator.assume_count == 1
