"""Row 5: a request loop per provider through an STS outage, in real time, side by side.

Each provider runs in its own worker process with its own session name, so the emulator's
call log tells their STS attempts apart; the emulator's signed-request log tells whether
either signed a request with credentials past their (emulated) expiry.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from bench._scenarios import MODES, REPO_ROOT, Lab, last_json, worker_command


@dataclass(frozen=True)
class OutagePlan:
    lifetime_seconds: int
    lead_seconds: float
    outage_seconds: float
    tail_seconds: float
    interval_seconds: float = 0.05


def outage(lab: Lab, plan: OutagePlan) -> dict[str, dict[str, Any]]:
    """A request loop per provider (run side by side) through an STS outage."""
    emulator = lab.emulator
    emulator.reset()
    emulator.latency_seconds = lab.latency_seconds
    emulator.lifetime_seconds = plan.lifetime_seconds
    duration = plan.lead_seconds + plan.outage_seconds + plan.tail_seconds
    names = {mode: f"outage-{mode}" for mode in MODES}
    procs = {}
    try:
        for mode in MODES:
            procs[mode] = subprocess.Popen(
                worker_command(
                    "outage", mode, "--duration", duration, "--interval", plan.interval_seconds
                ),
                env=lab.worker_env(
                    AWS_ROLE_SESSION_NAME=names[mode],
                    WEBID_PROVIDER_CACHE_DIR=tempfile.mkdtemp(prefix="outage-", dir=lab.scratch),
                ),
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        readies = [_read_ready(proc, timeout=60.0) for proc in procs.values()]
        # The outage starts `lead` seconds after the later of the two got credentials.
        time.sleep(max(0.0, max(readies) + plan.lead_seconds - time.time()))
        emulator.outage(plan.outage_seconds)
        began = datetime.now(timezone.utc)
        ended = began + timedelta(seconds=plan.outage_seconds)
        results = {}
        for mode, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=duration + 120)
            if proc.returncode != 0:
                raise RuntimeError(f"outage worker {mode} failed:\n{stderr[-3000:]}")
            results[mode] = last_json(stdout)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        emulator.lifetime_seconds = None
    return _outage_summary(lab, plan, names, results, began, ended)


def _read_ready(proc: subprocess.Popen[str], timeout: float) -> float:
    box: list[str] = []
    reader = threading.Thread(
        target=lambda: box.append(proc.stdout.readline() if proc.stdout else "")
    )
    reader.start()
    reader.join(timeout)
    if not box or not box[0].startswith("{"):
        proc.kill()
        raise RuntimeError(f"outage worker never got credentials: {box!r}")
    ready: float = json.loads(box[0])["ready"]
    return ready


def _outage_summary(
    lab: Lab,
    plan: OutagePlan,
    names: Mapping[str, str],
    results: Mapping[str, Any],
    began: datetime,
    ended: datetime,
) -> dict[str, dict[str, Any]]:
    emulator = lab.emulator
    keys_by_mode: dict[str, set[str]] = {mode: set() for mode in MODES}
    summary: dict[str, dict[str, Any]] = {}
    for mode in MODES:
        calls = lab.calls_for(names[mode])
        keys_by_mode[mode] = {c.access_key_id for c in calls if c.access_key_id}
        during = [c for c in calls if began <= c.at < ended]
        records = results[mode]["records"]
        failed = [r for r in records if r[2] is not None]
        summary[mode] = {
            "attempts_during": len(during),
            "attempts_per_minute": len(during) / (plan.outage_seconds / 60.0),
            "sts_calls_total": len(calls),
            "requests": len(records),
            "failed": len(failed),
            "errors": sorted({r[2] for r in failed}),
            "longest_request_seconds": max((r[1] for r in records), default=0.0),
        }
    for mode in MODES:
        summary[mode]["expired_uses"] = sum(
            1
            for s in emulator.signed_requests
            if s.expired and s.access_key_id in keys_by_mode[mode]
        )
    return summary
