"""Row 6 worker: steady-state STS calls under an injected (virtual) clock.

Hours of credential lifetimes cannot be waited for, and shrinking the lifetimes would be
unfair to botocore (its windows are fixed at 15/10 minutes, ours scale). So both providers run
for real, against the real emulator, with a virtual clock:

* a coordinator forks P worker processes (one host) and advances virtual time in ticks; at
  every tick each worker makes one "request" (``get_frozen_credentials()``) at that virtual
  instant and reports back, so all processes of the host agree on the time (lock-step);
* every AssumeRoleWithWebIdentity answer is rewritten on arrival (botocore's public
  ``after-call`` event) to expire ``session_seconds`` after the virtual now, so the STS call
  itself is real (and counted by the emulator) while its lifetime lives in virtual time;
* ours: ``WebIdentityProvider(session, options, clock=virtual_clock)`` (public constructor);
* botocore: its own provider from the session's resolver; its ``CachedCredentialFetcher``
  reads ``botocore.credentials._local_now`` at call time (patched here, in the benchmark only)
  and its ``RefreshableCredentials`` keeps the ``time_fetcher`` bound at construction, so that
  private attribute is replaced on the one object (benchmark only).

The coordinator prints the wall-clock instant at which tick 1 started: calls after it are the
steady state (tick 0 is the cold start).
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import time
from datetime import datetime, timedelta, timezone
from typing import Any

_STOP = -1.0
_FRAME = struct.Struct("!d")


class VirtualClock:
    """Aware UTC time set by the coordinator, read by both providers."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def _rewrite_expiration(clock: VirtualClock, session_seconds: int, log: list[float]) -> Any:
    def handler(parsed: Any = None, **_: Any) -> None:
        credentials = parsed.get("Credentials") if isinstance(parsed, dict) else None
        if isinstance(credentials, dict) and "Expiration" in credentials:
            credentials["Expiration"] = clock() + timedelta(seconds=session_seconds)
            log.append(clock().timestamp())  # virtual instant of this successful STS call

    return handler


def _credentials(mode: str, clock: VirtualClock, session_seconds: int, log: list[float]) -> Any:
    import botocore.credentials
    import botocore.session

    session = botocore.session.Session()
    session.register(
        "after-call.sts.AssumeRoleWithWebIdentity",
        _rewrite_expiration(clock, session_seconds, log),
    )
    if mode == "ours":
        from webid_provider import WebIdentityProvider

        provider = WebIdentityProvider(session, {"duration_seconds": session_seconds}, clock=clock)
        return provider.load()
    # Benchmark only: botocore's fetcher calls the module-level _local_now() at call time.
    botocore.credentials._local_now = clock  # type: ignore[attr-defined]
    resolver = session.get_component("credential_provider")
    credentials = resolver.get_provider("assume-role-with-web-identity").load()
    # Benchmark only: RefreshableCredentials bound _local_now as a default argument when
    # botocore was imported; replace it on this one object.
    credentials._time_fetcher = clock
    return credentials


def _worker(mode: str, session_seconds: int, start: datetime, cmd_r: int, done_w: int) -> None:
    clock = VirtualClock(start)
    log: list[float] = []
    credentials = _credentials(mode, clock, session_seconds, log)
    requests = errors = 0
    while True:
        frame = os.read(cmd_r, _FRAME.size)
        if len(frame) < _FRAME.size:
            break
        (epoch,) = _FRAME.unpack(frame)
        if epoch == _STOP:
            break
        clock.now = datetime.fromtimestamp(epoch, tz=timezone.utc)
        requests += 1
        try:
            credentials.get_frozen_credentials()
        except Exception:  # counted: a request without credentials
            errors += 1
        os.write(done_w, b"d")
    summary = {"requests": requests, "errors": errors, "calls": log}
    data = json.dumps(summary).encode() + b"\n"
    while data:  # may exceed PIPE_BUF; the coordinator reads one summary at a time
        data = data[os.write(done_w, data) :]


def steady(args: argparse.Namespace) -> dict[str, Any]:
    import boto3  # noqa: F401  (warm imports before forking, as a pre-forking server would)
    import botocore.credentials  # noqa: F401

    if args.mode == "ours":
        import webid_provider  # noqa: F401

    os.environ["AWS_ROLE_SESSION_NAME"] = args.tag
    os.environ["WEBID_PROVIDER_CACHE_DIR"] = os.path.join(args.cache_root, args.tag)
    start = datetime.now(timezone.utc)
    done_r, done_w = os.pipe()
    workers = []
    for _ in range(args.processes):
        cmd_r, cmd_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                os.close(cmd_w)
                os.close(done_r)
                _worker(args.mode, args.session_seconds, start, cmd_r, done_w)
                code = 0
            finally:
                os._exit(code)
        os.close(cmd_r)
        workers.append((pid, cmd_w))
    os.close(done_w)
    ticks = round(args.hours * 3600 / args.tick_seconds)
    steady_from = None
    for tick in range(ticks + 1):
        epoch = start.timestamp() + tick * args.tick_seconds
        if tick == 1:
            steady_from = time.time()
        for _, cmd_w in workers:
            os.write(cmd_w, _FRAME.pack(epoch))
        acked = 0
        while acked < len(workers):
            chunk = os.read(done_r, len(workers) - acked)
            if not chunk:
                raise RuntimeError("a steady-state worker died")
            acked += len(chunk)
    reports = []
    with os.fdopen(done_r, "rb") as summaries:
        for pid, cmd_w in workers:  # one at a time, so summaries never interleave
            os.write(cmd_w, _FRAME.pack(_STOP))
            os.close(cmd_w)
            reports.append(json.loads(summaries.readline()))
            os.waitpid(pid, 0)
    calls = sorted(t - start.timestamp() for r in reports for t in r["calls"])
    steady_calls = [t for t in calls if t > 0]
    # The cold start at t=0 is the phase origin of every process, so k calls by virtual time
    # t_k mean one call per t_k / k seconds (exact for periodic refreshes, unlike counting
    # calls in a window, which is off by up to one call).
    per_hour = len(steady_calls) * 3600 / steady_calls[-1] if steady_calls else 0.0
    return {
        "session_name": args.tag,
        "steady_from": steady_from,
        "ticks": ticks,
        "virtual_hours": ticks * args.tick_seconds / 3600,
        "requests": sum(r["requests"] for r in reports),
        "errors": sum(r["errors"] for r in reports),
        "workers_reported": len(reports),
        "cold_calls": len(calls) - len(steady_calls),
        "steady_calls": len(steady_calls),
        "per_hour": per_hour,
    }
