"""Row 2 for aiobotocore: a new aiobotocore session in a warm process → credentials.

Runs only where aiobotocore is installed (the ``aio`` environment of ``.ci/aio``; the main
environment keeps the newest botocore, which aiobotocore's pin excludes). Elsewhere the row is
left out and a progress line says why.

Two worker processes, as for the other rows: in ``ours`` mode the worker calls
``webid_provider.register()``; in ``aiobotocore`` mode it never imports ``webid_provider`` and
aiobotocore's own ``AioAssumeRoleWithWebIdentityProvider`` runs with its defaults (its cache
lives in the session, so every new session calls STS). Each worker gets credentials once (the
process is warm), then times ``await (await AioSession().get_credentials())
.get_frozen_credentials()`` for new sessions inside one event loop, the session's construction
timed apart and left out. Ours also reports the time with process memory cleared before each
iteration (the entry comes from disk).

``python -m bench._aio`` runs this row alone against its own emulator (about 15 s);
``python -m bench`` includes it when aiobotocore is importable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

OURS = "ours"
AIOBOTOCORE = "aiobotocore"


def aiobotocore_version() -> Optional[str]:
    try:
        return metadata.version("aiobotocore")
    except metadata.PackageNotFoundError:
        return None


# -- driver -----------------------------------------------------------------------------------


def add_rows(rows: list[Any], lab: Any, iterations: int) -> None:
    """Insert this row after the last row 2, or say why it is not measured."""
    from bench._table import Row, number

    version = aiobotocore_version()
    if version is None:
        _progress("row 2 (aiobotocore): skipped, aiobotocore is not installed (see .ci/aio)")
        return
    _progress("row 2 (aiobotocore): new aiobotocore session in a warm process")
    warm = measure(lab, iterations)
    ours, theirs = warm[OURS], warm[AIOBOTOCORE]
    row = Row(
        "2",
        "new aiobotocore session in a warm process → credentials",
        "ms",
        ours["memory"] * 1e3,
        theirs["memory"] * 1e3,
        f"aiobotocore {version}; 'botocore' column = aiobotocore's built-in provider, which "
        f"calls STS for every new session; ours from memory (a helper-thread hop for the "
        f"token read), from disk only: {number(ours['disk'] * 1e3)} ms; `AioSession()` itself, "
        f"not counted: {number(theirs['session'] * 1e3)} ms; n={iterations}",
    )
    last_two = max((i for i, existing in enumerate(rows) if existing.number == "2"), default=None)
    rows.insert(len(rows) if last_two is None else last_two + 1, row)


def measure(lab: Any, iterations: int) -> dict[str, dict[str, float]]:
    """Median seconds per mode: ``session``, ``memory`` and (ours) ``disk``."""
    from bench._scenarios import REPO_ROOT, last_json

    out: dict[str, dict[str, float]] = {}
    for mode in (OURS, AIOBOTOCORE):
        cache = tempfile.mkdtemp(prefix=f"aio-warm-{mode}-", dir=lab.scratch)
        import subprocess

        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench._aio",
                "worker",
                "--mode",
                mode,
                "--iterations",
                str(iterations),
            ],
            env=lab.worker_env(WEBID_PROVIDER_CACHE_DIR=cache),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"aio worker {mode} failed:\n{completed.stderr[-3000:]}")
        result = last_json(completed.stdout)
        out[mode] = {
            name.replace("_seconds", ""): statistics.median(values)
            for name, values in result.items()
        }
    return out


def _progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- worker -----------------------------------------------------------------------------------


async def _session_then_credentials() -> tuple[float, float]:
    from aiobotocore.session import AioSession

    started = time.perf_counter()
    session = AioSession()
    built = time.perf_counter()
    credentials = await session.get_credentials()
    if credentials is None:
        raise RuntimeError("no credentials: is AWS_ROLE_ARN/AWS_WEB_IDENTITY_TOKEN_FILE set?")
    await credentials.get_frozen_credentials()
    return built - started, time.perf_counter() - built


async def _warm(mode: str, iterations: int) -> dict[str, list[float]]:
    if mode == OURS:
        import webid_provider

        webid_provider.register()
    await _session_then_credentials()  # the process has had credentials once: it is warm
    runs = [await _session_then_credentials() for _ in range(iterations)]
    out = {
        "session_seconds": [run[0] for run in runs],
        "memory_seconds": [run[1] for run in runs],
    }
    if mode == OURS:
        from webid_provider._refresh_state import clear_memory_state

        disk = []
        for _ in range(iterations):
            clear_memory_state()  # forget in-process state: the next hit comes from disk
            disk.append((await _session_then_credentials())[1])
        out["disk_seconds"] = disk
    return out


# -- entry points -----------------------------------------------------------------------------


def standalone(latency_ms: float, iterations: int) -> int:
    """This row alone, against its own emulator; prints the one-row table."""
    from bench._scenarios import Lab, environment_for_workers, warm_up
    from bench._table import render
    from webid_provider.testing import KubeletTokenFile, OidcIssuer, StsEmulator

    scratch = Path(tempfile.mkdtemp(prefix="webid-bench-aio-"))
    try:
        issuer = OidcIssuer(issuer="https://oidc.webid.test")
        token = issuer.mint(sub="system:serviceaccount:default:app", aud="sts.amazonaws.com")
        kubelet = KubeletTokenFile(scratch / "serviceaccount", token)
        with StsEmulator(issuer, latency_seconds=latency_ms / 1e3) as emulator:
            lab = Lab(
                emulator=emulator,
                scratch=scratch,
                env=environment_for_workers(scratch, emulator.endpoint_url, kubelet.path),
                latency_seconds=latency_ms / 1e3,
            )
            warm_up(lab)
            rows: list[Any] = []
            add_rows(rows, lab, iterations)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"STS emulator latency {latency_ms:g} ms; ratio = ours ÷ aiobotocore's own provider\n")
    print(render(rows))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench._aio", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "scenario", nargs="?", default="standalone", choices=("standalone", "worker")
    )
    parser.add_argument("--mode", choices=(OURS, AIOBOTOCORE), default=OURS)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args(argv)
    if args.scenario == "worker":
        print(json.dumps(asyncio.run(_warm(args.mode, args.iterations))), flush=True)
        return 0
    return standalone(args.latency_ms, args.iterations)


if __name__ == "__main__":
    sys.exit(main())
