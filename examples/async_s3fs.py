"""s3fs and plain aiobotocore on web identity credentials, sharing the host cache.

s3fs (and so ``pandas.read_csv("s3://...")``, pyarrow and dask) runs on aiobotocore. After
``webid_provider.register()``, every aiobotocore session created in the process — the ones s3fs
creates inside its own event loop thread included — gets its credentials from this package:
one STS call per host per credential lifetime, shared with boto3 code and other processes, and
no file read, lock wait or STS call ever blocks an event loop.

Run it where ``AWS_ROLE_ARN`` and ``AWS_WEB_IDENTITY_TOKEN_FILE`` are set (an EKS pod, or the
test suite's emulator), with a bucket you may write to::

    pip install '.[aio]' s3fs        # from a checkout of this repository
    python examples/async_s3fs.py s3://my-bucket/webid-provider-example
"""

from __future__ import annotations

import asyncio
import json
import sys

import webid_provider

webid_provider.register()  # before any session exists: covers s3fs's sessions too

import s3fs  # noqa: E402 - after register(), to make the order plain
from aiobotocore.session import get_session  # noqa: E402


def roundtrip_with_s3fs(prefix: str) -> dict[str, object]:
    """Write, list and read back one object through s3fs, as pandas would."""
    fs = s3fs.S3FileSystem()
    bucket = prefix.split("/", 1)[0]
    if not fs.exists(bucket):
        fs.mkdir(bucket)
    path = f"{prefix}/hello.txt"
    with fs.open(path, "wb") as handle:
        handle.write(b"written with web identity credentials\n")
    with fs.open(path, "rb") as handle:
        content = handle.read().decode()
    return {"path": path, "listed": fs.ls(prefix), "content": content}


async def identity_with_aiobotocore() -> dict[str, object]:
    """What plain aiobotocore code sees: our credentials, every STS output field."""
    session = get_session()
    credentials = await session.get_credentials()
    result = await credentials.get_web_identity()
    async with session.create_client("sts") as sts:
        identity = await sts.get_caller_identity()
    return {
        "method": credentials.method,
        "arn": identity["Arn"],
        "subject": result.subject_from_web_identity_token,
        "expiration": result.expiration.isoformat(),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].startswith("s3://"):
        print(f"usage: {argv[0]} s3://bucket/prefix", file=sys.stderr)
        return 2
    print(json.dumps({"s3fs": roundtrip_with_s3fs(argv[1].removeprefix("s3://").rstrip("/"))}))
    print(json.dumps({"aiobotocore": asyncio.run(identity_with_aiobotocore())}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
