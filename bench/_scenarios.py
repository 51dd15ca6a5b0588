"""Rows 1-4 and 6: drive the worker processes against the emulator, count what reached it.

Row 5 lives in :mod:`bench._outage`; the shared helpers (``Lab``, ``run_worker``) live here.

Each function takes a :class:`Lab` (the running emulator, the token file, the environment the
workers get) and returns plain numbers for :mod:`bench.run` to put in the table. STS calls
are always counted at the emulator, attributed to a run by its ``RoleSessionName`` (each run
sets its own ``AWS_ROLE_SESSION_NAME``, which both providers honour).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from webid_provider.testing import StsEmulator

MODES = ("ours", "botocore")
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Lab:
    """Everything the scenarios share: emulator, scratch directory, worker environment."""

    emulator: StsEmulator
    scratch: Path
    env: dict[str, str]
    latency_seconds: float

    def worker_env(self, **extra: str) -> dict[str, str]:
        env = dict(self.env)
        env.update(extra)
        return env

    def calls_for(self, session_name: str, since: Optional[datetime] = None) -> list[Any]:
        return [
            call
            for call in self.emulator.calls
            if call.role_session_name == session_name and (since is None or call.at >= since)
        ]


def worker_command(scenario: str, mode: str, *args: object) -> list[str]:
    return [sys.executable, "-m", "bench._workers", scenario, "--mode", mode, *map(str, args)]


def run_worker(
    lab: Lab, scenario: str, mode: str, *args: object, timeout: float = 240.0, **env: str
) -> dict[str, Any]:
    """Run one worker to completion and return its JSON result."""
    completed = subprocess.run(
        worker_command(scenario, mode, *args),
        env=lab.worker_env(**env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if os.environ.get("BENCH_DEBUG"):
        sys.stderr.write(completed.stderr)
    if completed.returncode != 0:
        raise RuntimeError(
            f"worker {scenario}/{mode} exited {completed.returncode}:\n{completed.stderr[-3000:]}"
        )
    return last_json(completed.stdout)


def last_json(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            result: dict[str, Any] = json.loads(line)
            return result
    raise RuntimeError(f"worker printed no result: {stdout[-500:]!r}")


def warm_up(lab: Lab) -> None:
    """One call of each kind first: moto builds its backends on first use, and that one-off
    cost would otherwise land on whichever provider happens to run first."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    client = boto3.Session().client(
        "sts",
        endpoint_url=lab.emulator.endpoint_url,
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED),
    )
    token = Path(lab.env["AWS_WEB_IDENTITY_TOKEN_FILE"]).read_text(encoding="utf-8").strip()
    answer = client.assume_role_with_web_identity(
        RoleArn=lab.env["AWS_ROLE_ARN"], RoleSessionName="warm-up", WebIdentityToken=token
    )
    keys = answer["Credentials"]
    boto3.Session(
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
    ).client(
        "sts", endpoint_url=lab.emulator.endpoint_url, region_name="us-east-1"
    ).get_caller_identity()
    lab.emulator.reset()


# -- row 1 ------------------------------------------------------------------------------------


def cold_race(lab: Lab, counts: Sequence[int], repeat: int) -> dict[str, dict[int, Any]]:
    """STS calls and time-to-all-credentials for N processes released at once."""
    out: dict[str, dict[int, Any]] = {}
    for mode in MODES:
        cache_root = tempfile.mkdtemp(prefix=f"race-{mode}-", dir=lab.scratch)
        result = run_worker(
            lab,
            "race",
            mode,
            "--counts",
            ",".join(map(str, counts)),
            "--repeat",
            repeat,
            "--tag",
            "race",
            "--cache-root",
            cache_root,
        )
        per_count: dict[int, Any] = {}
        for trial in result["trials"]:
            if trial["ok"] != trial["n"] or trial["parked"] != trial["n"]:
                raise RuntimeError(f"race trial failed: {trial}")
            calls = len(lab.calls_for(trial["session_name"]))
            entry = per_count.setdefault(trial["n"], {"calls": [], "seconds": []})
            entry["calls"].append(calls)
            entry["seconds"].append(trial["all_done_seconds"])
        out[mode] = {
            n: {
                "calls": statistics.median(v["calls"]),
                "seconds": statistics.median(v["seconds"]),
                "runs": len(v["calls"]),
            }
            for n, v in per_count.items()
        }
    return out


# -- row 2 ------------------------------------------------------------------------------------


def warm_sessions(lab: Lab, iterations: int) -> dict[str, dict[str, float]]:
    """Median seconds for a new session's first credentials in a process that had some."""
    out: dict[str, dict[str, float]] = {}
    for mode in MODES:
        cache = tempfile.mkdtemp(prefix=f"warm-{mode}-", dir=lab.scratch)
        result = run_worker(
            lab, "warm", mode, "--iterations", iterations, WEBID_PROVIDER_CACHE_DIR=cache
        )
        out[mode] = {
            name.replace("_seconds", ""): statistics.median(values)
            for name, values in result.items()
        }
    return out


def fresh_processes(lab: Lab, repeat: int) -> dict[str, float]:
    """Median seconds from process start to credentials in hand (``<label>``) and to the first
    signed request's answer (``<label>_first_request``); the full garbage collections each
    process had run at those two points (``<label>_full_gcs``, ``..._first_request_full_gcs``).
    """
    warm_cache = tempfile.mkdtemp(prefix="fresh-warm-", dir=lab.scratch)
    run_worker(lab, "fresh", "ours", WEBID_PROVIDER_CACHE_DIR=warm_cache)  # fills the cache
    labels = ("ours_warm_cache", "ours_cold_cache", "botocore")
    samples: dict[str, list[float]] = {}
    for label in labels:
        for suffix in ("", "_first_request", "_full_gcs", "_first_request_full_gcs"):
            samples[label + suffix] = []
    for _ in range(repeat):  # interleaved, so drift hits all three alike
        for label in labels:
            mode = "botocore" if label == "botocore" else "ours"
            cache = (
                warm_cache
                if label == "ours_warm_cache"
                else tempfile.mkdtemp(prefix="fresh-cold-", dir=lab.scratch)
            )
            started = time.monotonic()
            result = run_worker(lab, "fresh", mode, WEBID_PROVIDER_CACHE_DIR=cache)
            samples[label].append(result["done"] - started)
            samples[label + "_first_request"].append(result["first_request"] - started)
            samples[label + "_full_gcs"].append(result["full_gcs_done"])
            samples[label + "_first_request_full_gcs"].append(result["full_gcs_first_request"])
    return {label: statistics.median(values) for label, values in samples.items()}


# -- row 3 ------------------------------------------------------------------------------------


def hot_path(lab: Lab, number: int, runs: int) -> dict[str, float]:
    """Median ns per ``get_frozen_credentials()`` once credentials are in hand."""
    return {
        mode: run_worker(lab, "hot", mode, "--number", number, "--runs", runs)["ns_per_call"]
        for mode in MODES
    }


# -- row 4 ------------------------------------------------------------------------------------


def import_time(lab: Lab, repeat: int) -> dict[str, float]:
    """Median wall seconds of ``import boto3`` with and without ``import webid_provider``."""
    programs = {
        "botocore": "import boto3",
        "ours": "import boto3, webid_provider",
    }
    walls: dict[str, list[float]] = {name: [] for name in programs}
    cumulative_us: list[int] = []
    for _ in range(repeat):
        for name, program in programs.items():
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", program], env=lab.env, cwd=lab.scratch, check=True
            )
            walls[name].append(time.perf_counter() - started)
        traced = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", programs["ours"]],
            env=lab.env,
            cwd=lab.scratch,
            capture_output=True,
            text=True,
            check=True,
        )
        cumulative_us.append(_importtime_cumulative(traced.stderr, "webid_provider"))
    out = {name: statistics.median(values) for name, values in walls.items()}
    out["webid_provider_importtime"] = statistics.median(cumulative_us) / 1e6
    return out


def _importtime_cumulative(stderr: str, package: str) -> int:
    # "import time:  self [us] | cumulative | imported package"; the top-level line for the
    # package has no indentation in the last column, and counts only modules boto3 did not
    # already import.
    for line in stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() == package and parts[2] == f" {package}":
            return int(parts[1].strip())
    raise RuntimeError(f"no importtime line for {package}")


# -- row 6 ------------------------------------------------------------------------------------


def steady_state(
    lab: Lab,
    processes: Sequence[int],
    sessions: Mapping[int, float],
    tick_seconds: float,
    every_request_hours: float,
) -> dict[tuple[str, int, int], dict[str, Any]]:
    """STS calls per virtual hour after the cold start, per (mode, processes, session).

    :param sessions: session seconds -> virtual hours to run
    :param every_request_hours: virtual hours for botocore with sessions <= 900 s, where
        every request is an STS call and a long run only costs wall time
    """
    emulator = lab.emulator
    emulator.reset()
    emulator.latency_seconds = 0.0  # counts do not depend on latency; wall time does
    out = {}
    try:
        for session_seconds, hours in sessions.items():
            for count in processes:
                for mode in MODES:
                    run_hours = hours
                    if mode == "botocore" and session_seconds <= 900:
                        run_hours = min(hours, every_request_hours)
                    tag = f"steady-{mode}-p{count}-s{session_seconds}"
                    result = run_worker(
                        lab,
                        "steady",
                        mode,
                        "--processes",
                        count,
                        "--session-seconds",
                        session_seconds,
                        "--hours",
                        run_hours,
                        "--tick-seconds",
                        tick_seconds,
                        "--tag",
                        tag,
                        "--cache-root",
                        tempfile.mkdtemp(prefix="steady-", dir=lab.scratch),
                    )
                    since = datetime.fromtimestamp(result["steady_from"], tz=timezone.utc)
                    counted = len(lab.calls_for(tag, since=since))
                    if counted != result["steady_calls"]:
                        raise RuntimeError(
                            f"{tag}: emulator counted {counted} calls, workers saw "
                            f"{result['steady_calls']}"
                        )
                    result["hours"] = run_hours
                    out[(mode, count, session_seconds)] = result
    finally:
        emulator.latency_seconds = lab.latency_seconds
    return out


def environment_for_workers(scratch: Path, endpoint_url: str, token_file: Path) -> dict[str, str]:
    """An IRSA pod's environment, pointed at the emulator; nothing else can supply credentials."""
    config = scratch / "aws-config"
    config.write_text("", encoding="utf-8")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_") and name != "WEBID_PROVIDER_CACHE_DIR"
    }
    python_path = [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(
        AWS_ROLE_ARN="arn:aws:iam::123456789012:role/bench",
        AWS_WEB_IDENTITY_TOKEN_FILE=str(token_file),
        AWS_ENDPOINT_URL_STS=endpoint_url,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=str(config),
        AWS_EC2_METADATA_DISABLED="true",
        WEBID_PROVIDER_CACHE_DIR=str(scratch / "cache-default"),
        HOME=str(scratch / "home"),
        PYTHONPATH=os.pathsep.join(python_path),
    )
    return env
