"""Rows 8-10: the ways in for other SDKs and tools (``credential_process``, ``exec``/``serve``).

* Row 8, ``credential-process`` with a warm cache: wall time of the console script, from
  ``Popen`` to exit, against ``python -c pass`` and ``python -c "import boto3"`` run the same
  way, interleaved, median. One traced run (``PYTHONPROFILEIMPORTTIME``) checks that the warm
  path imported no botocore.
* Row 9, spawns per 100 requests of a botocore consumer: a worker process runs botocore's own
  ``ProcessProvider`` on a virtual clock (one request every ``interval`` virtual seconds for
  ``hours`` virtual hours, one-hour sessions) whose ``popen`` runs our ``credential-process``
  in-process on the same clock: the fast path first, else the full path with empty process
  memory, as a new process would. STS calls are real (emulator); their ``Expiration`` is
  rewritten to the virtual now plus one hour. Ours (default margin) against
  ``--min-remaining 0``, which hands out what the refresh policy alone would (the previous
  release).
* Row 10, the ``exec`` endpoint: a client under ``webid-provider exec`` times botocore's
  ``ContainerMetadataFetcher.retrieve_full_uri`` (what botocore's container provider calls on
  every refresh) against the endpoint; compared with the warm ``credential-process`` spawn of
  row 8, the other way a non-Python consumer refreshes.

Worker entry points: ``python -m bench._consumers spawns|endpoint-client ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

from bench._scenarios import REPO_ROOT, Lab, last_json

WEBID = str(Path(sys.executable).parent / "webid-provider")
_CLIENT = [sys.executable, "-m", "bench._consumers", "endpoint-client"]


def _wall(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:3]} exited {done.returncode}: {done.stderr[-500:]!r}")
    return elapsed


# -- row 8 ------------------------------------------------------------------------------------


def warm_credential_process(lab: Lab, repeat: int) -> dict[str, Any]:
    """Median wall seconds: warm ``credential-process``, ``python -c pass``, ``import boto3``."""
    env = lab.worker_env(
        WEBID_PROVIDER_CACHE_DIR=tempfile.mkdtemp(prefix="cp-warm-", dir=lab.scratch),
        AWS_ROLE_SESSION_NAME="bench-credential-process",
    )
    for _ in range(2):  # the first fills the cache, the second the fast path's index
        _wall([WEBID, "credential-process"], env, lab.scratch)
    traced = subprocess.run(
        [WEBID, "credential-process"],
        env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in traced.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    programs = {
        "ours": [WEBID, "credential-process"],
        "pass": [sys.executable, "-c", "pass"],
        "boto3": [sys.executable, "-c", "import boto3"],
    }
    walls: dict[str, list[float]] = {name: [] for name in programs}
    for _ in range(repeat):
        for name, argv in programs.items():
            walls[name].append(_wall(argv, env, lab.scratch))
    out: dict[str, Any] = {name: statistics.median(values) for name, values in walls.items()}
    out["botocore_imported"] = "botocore" in imported
    out["sts_calls"] = len(lab.calls_for("bench-credential-process"))
    return out


# -- row 9 ------------------------------------------------------------------------------------


def spawns_per_hour(lab: Lab, hours: float, interval_seconds: float) -> dict[str, Any]:
    """Spawns and STS calls of a botocore ``credential_process`` consumer, ours vs no margin."""
    out: dict[str, Any] = {}
    for variant, min_remaining in (("ours", "900"), ("no-margin", "0")):
        tag = f"bench-spawns-{variant}"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench._consumers",
                "spawns",
                "--min-remaining",
                min_remaining,
                "--hours",
                str(hours),
                "--interval",
                str(interval_seconds),
            ],
            env=lab.worker_env(
                AWS_ROLE_SESSION_NAME=tag,
                WEBID_PROVIDER_CACHE_DIR=tempfile.mkdtemp(prefix="spawns-", dir=lab.scratch),
            ),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"spawns worker failed:\n{done.stderr[-3000:]}")
        result = last_json(done.stdout)
        counted = len(lab.calls_for(tag))
        if counted != result["sts_calls"]:
            raise RuntimeError(
                f"{tag}: emulator counted {counted}, worker saw {result['sts_calls']}"
            )
        out[variant] = result
    return out


class VirtualClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def spawns_worker(args: argparse.Namespace) -> dict[str, Any]:
    """In a fresh process: botocore's ProcessProvider whose popen runs us on a virtual clock."""
    import botocore.session
    from botocore.credentials import ProcessProvider

    from webid_provider._cli import _credentials, _fast, _main
    from webid_provider._refresh_state import clear_memory_state

    clock = VirtualClock(datetime.now(timezone.utc))
    counts = {"spawns": 0, "full": 0, "sts_calls": 0}

    def rewrite(parsed: Any = None, **_: Any) -> None:
        credentials = parsed.get("Credentials") if isinstance(parsed, dict) else None
        if isinstance(credentials, dict) and "Expiration" in credentials:
            credentials["Expiration"] = clock() + timedelta(hours=1)
            counts["sts_calls"] += 1

    def spawn(arguments: list[str]) -> str:
        counts["spawns"] += 1
        text = _fast.credential_process_output(arguments, os.environ, now=clock())
        if text is not None:
            return text
        counts["full"] += 1
        clear_memory_state()  # a new process starts with empty memory
        parsed = _main.build_parser().parse_args(arguments)
        parsed.raw_arguments = tuple(arguments)
        session = botocore.session.Session()
        session.register("after-call.sts.AssumeRoleWithWebIdentity", rewrite)
        return _credentials.credential_process_output(parsed, session=session, clock=clock)

    class InProcessPopen:
        """What ``ProcessProvider`` needs of ``subprocess.Popen``."""

        def __init__(self, argv: list[str], **_: Any) -> None:
            self.returncode = 0
            self._stdout = spawn(argv[1:]).encode("utf-8")

        def communicate(self) -> tuple[bytes, bytes]:
            return self._stdout, b""

    command = f"webid-provider credential-process --min-remaining {args.min_remaining}"
    provider = ProcessProvider(
        "consumer",
        load_config=lambda: {"profiles": {"consumer": {"credential_process": command}}},
        popen=InProcessPopen,
    )
    credentials = provider.load()
    # Benchmark only: RefreshableCredentials bound botocore's clock when it was imported;
    # the consumer must judge expiry on the virtual clock, as our process does.
    credentials._time_fetcher = clock
    start = clock.now
    requests = round(args.hours * 3600 / args.interval)
    for index in range(requests):
        clock.now = start + timedelta(seconds=index * args.interval)
        credentials.get_frozen_credentials()
    return {**counts, "requests": requests, "hours": args.hours}


# -- row 10 -----------------------------------------------------------------------------------


def endpoint_latency(lab: Lab, requests: int) -> dict[str, Any]:
    """Median seconds per container-credentials fetch through ``exec``'s endpoint."""
    tag = "bench-exec"
    env = lab.worker_env(
        AWS_ROLE_SESSION_NAME=tag,
        WEBID_PROVIDER_CACHE_DIR=tempfile.mkdtemp(prefix="exec-", dir=lab.scratch),
    )
    done = subprocess.run(
        [WEBID, "exec", "--", *_CLIENT, "--requests", str(requests)],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"exec endpoint client failed:\n{done.stderr[-3000:]}")
    result = last_json(done.stdout)
    result["sts_calls"] = len(lab.calls_for(tag))
    return result


def endpoint_client(args: argparse.Namespace) -> dict[str, Any]:
    from botocore.utils import ContainerMetadataFetcher

    url = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    headers = {"Authorization": os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]}
    fetcher = ContainerMetadataFetcher()
    fetcher.retrieve_full_uri(url, headers=headers)  # connection pool and imports warm
    samples = []
    for _ in range(args.requests):
        started = time.perf_counter()
        document = fetcher.retrieve_full_uri(url, headers=headers)
        samples.append(time.perf_counter() - started)
    if not document.get("AccessKeyId"):
        raise RuntimeError("the endpoint returned no credentials")
    samples.sort()
    return {
        "median": statistics.median(samples),
        "p95": samples[min(len(samples) - 1, int(len(samples) * 0.95))],
        "requests": args.requests,
    }


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._consumers")
    parser.add_argument("scenario", choices=("spawns", "endpoint-client"))
    parser.add_argument("--min-remaining", default="900")
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    if args.scenario == "spawns":
        import logging

        logging.getLogger("webid_provider").setLevel(logging.ERROR)
        result = spawns_worker(args)
    else:
        result = endpoint_client(args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
