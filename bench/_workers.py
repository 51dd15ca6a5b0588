"""Benchmark worker processes: ``python -m bench._workers <scenario> --mode ours|botocore``.

Every measurement runs in a fresh interpreter so that one provider's state (imports, our
``register()``, in-memory credentials) never leaks into the other's numbers. In ``botocore``
mode nothing from ``webid_provider`` is imported: a plain ``boto3.Session`` with
``AWS_ROLE_ARN`` and ``AWS_WEB_IDENTITY_TOKEN_FILE`` set uses botocore's own
``AssumeRoleWithWebIdentityProvider``. In ``ours`` mode the worker calls
``webid_provider.register()`` first and otherwise does exactly the same thing.

Each worker prints one JSON object on its last line of stdout. Loops are bounded and every
worker arms ``SIGALRM`` so a hung worker dies instead of stalling the run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import time
import timeit
from collections.abc import Sequence
from typing import Any, Callable, Optional

OURS = "ours"
BOTOCORE = "botocore"


def setup(mode: str) -> None:
    """Register our provider for every session this process creates (``ours`` mode only)."""
    if mode == OURS:
        import webid_provider

        webid_provider.register()


def credentials_of(session: Any) -> Any:
    """The session's credentials object; a worker without credentials is a failed run."""
    credentials = session.get_credentials()
    if credentials is None:
        raise RuntimeError("no credentials: is AWS_ROLE_ARN/AWS_WEB_IDENTITY_TOKEN_FILE set?")
    return credentials


def new_session_credentials() -> Any:
    """What an application does: a new session, then credentials for a request."""
    import boto3

    return credentials_of(boto3.Session()).get_frozen_credentials()


def _error_name(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__


# -- row 1: N cold processes racing for credentials -------------------------------------------


def _race_child(ready_w: int, go_r: int, out_w: int) -> None:
    os.write(ready_w, b"r")
    os.read(go_r, 1)  # returns b"" when the parent closes the write end: the barrier
    started = time.monotonic()
    record: dict[str, Any] = {"ok": True, "error": None}
    try:
        new_session_credentials()
    except Exception as exc:  # a failure is a result here, not a crash
        record = {"ok": False, "error": _error_name(exc)}
    record.update(started=started, done=time.monotonic())
    os.write(out_w, (json.dumps(record) + "\n").encode("ascii"))


def race_once(count: int) -> dict[str, Any]:
    """Fork ``count`` children, park them on a pipe barrier, release them at once."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()
    pids = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                os.close(ready_r)
                os.close(go_w)
                os.close(out_r)
                _race_child(ready_w, go_r, out_w)
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(ready_w)
    os.close(go_r)
    os.close(out_w)
    parked = 0
    while parked < count:
        chunk = os.read(ready_r, count - parked)
        if not chunk:
            break
        parked += len(chunk)
    os.close(ready_r)
    released = time.monotonic()
    os.close(go_w)  # every child wakes up now
    with os.fdopen(out_r, "rb") as results:
        lines = results.read().decode("ascii").splitlines()
    for pid in pids:
        os.waitpid(pid, 0)
    records = [json.loads(line) for line in lines if line.strip()]
    done = [r["done"] for r in records]
    return {
        "n": count,
        "parked": parked,
        "ok": sum(1 for r in records if r["ok"]),
        "errors": sorted({r["error"] for r in records if not r["ok"]}),
        "all_done_seconds": (max(done) - released) if done else None,
    }


def race(args: argparse.Namespace) -> dict[str, Any]:
    setup(args.mode)
    # Warm the imports a pre-forking server (gunicorn --preload, celery prefork) has warmed.
    import boto3
    import botocore.credentials  # noqa: F401

    boto3.Session()
    trials = []
    for rep in range(args.repeat):
        for count in args.counts:
            name = f"{args.tag}-{args.mode}-n{count}-r{rep}"
            # A new session name is a new cache key and a label for the emulator's call log;
            # a new cache directory makes "cold" unambiguous.
            os.environ["AWS_ROLE_SESSION_NAME"] = name
            os.environ["WEBID_PROVIDER_CACHE_DIR"] = os.path.join(args.cache_root, name)
            trial = race_once(count)
            trial.update(rep=rep, session_name=name)
            trials.append(trial)
    return {"trials": trials}


# -- row 2: a new session in a warm process; a fresh process -------------------------------


def _session_then_credentials() -> tuple[float, float]:
    """Seconds for ``boto3.Session()``, then for its first credentials (timed apart)."""
    import boto3

    started = time.perf_counter()
    session = boto3.Session()
    built = time.perf_counter()
    credentials_of(session).get_frozen_credentials()
    return built - started, time.perf_counter() - built


def warm(args: argparse.Namespace) -> dict[str, Any]:
    setup(args.mode)
    new_session_credentials()  # the process has had credentials once: it is warm
    runs = [_session_then_credentials() for _ in range(args.iterations)]
    out: dict[str, Any] = {
        "session_seconds": [run[0] for run in runs],
        "memory_seconds": [run[1] for run in runs],
    }
    if args.mode == OURS:
        from webid_provider._refresh_state import clear_memory_state

        disk = []
        for _ in range(args.iterations):
            clear_memory_state()  # forget in-process state: the next hit comes from disk
            disk.append(_session_then_credentials()[1])
        out["disk_seconds"] = disk
    return out


def fresh(args: argparse.Namespace) -> dict[str, Any]:
    """The whole process is the measurement; the parent timed our start.

    Then one signed request with the same session, timed too: parsing botocore's endpoint data
    for the STS client leaves a full garbage collection due, and whether it runs before
    credentials are in hand or during the first request depends on how many objects the
    process allocated before (issue 14's profile: about 55 ms here, inside our window and just
    after botocore's). Up to the first request both pay it. ``full_gcs_*`` count them.
    """
    import gc

    import boto3

    setup(args.mode)
    session = boto3.Session()
    credentials_of(session).get_frozen_credentials()
    done = time.monotonic()
    full_gcs_done = gc.get_stats()[2]["collections"]
    session.client("sts").get_caller_identity()
    return {
        "done": done,
        "first_request": time.monotonic(),
        "full_gcs_done": full_gcs_done,
        "full_gcs_first_request": gc.get_stats()[2]["collections"],
    }


# -- row 3: get_frozen_credentials() on the per-request path ---------------------------------


def hot(args: argparse.Namespace) -> dict[str, Any]:
    setup(args.mode)
    import boto3

    credentials = credentials_of(boto3.Session())
    credentials.get_frozen_credentials()
    timer = timeit.Timer(credentials.get_frozen_credentials)
    runs = timer.repeat(repeat=args.runs, number=args.number)
    per_call_ns = [run / args.number * 1e9 for run in runs]
    return {"ns_per_call": statistics.median(per_call_ns), "runs_ns": per_call_ns}


# -- row 5: a request loop through an STS outage ---------------------------------------------


def outage(args: argparse.Namespace) -> dict[str, Any]:
    setup(args.mode)
    import boto3

    client = boto3.Session().client("sts")
    client.get_caller_identity()  # credentials in hand before the clock starts
    print(json.dumps({"ready": time.time()}), flush=True)
    records: list[tuple[float, float, Optional[str]]] = []
    deadline = time.monotonic() + args.duration
    next_start = time.monotonic()
    while time.monotonic() < deadline and len(records) < 100_000:
        pause = next_start - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        started_wall = time.time()
        started = time.perf_counter()
        error: Optional[str] = None
        try:
            client.get_caller_identity()  # signed with get_frozen_credentials() inside
        except Exception as exc:
            error = _error_name(exc)
        records.append((started_wall, time.perf_counter() - started, error))
        next_start = max(next_start + args.interval, time.monotonic())
    return {"records": records}


# -- entry point ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench._workers")
    parser.add_argument("scenario")
    parser.add_argument("--mode", choices=(OURS, BOTOCORE), required=True)
    parser.add_argument("--counts", type=lambda s: [int(x) for x in s.split(",")], default=[1])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--tag", default="bench")
    parser.add_argument("--cache-root", default="")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--number", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--session-seconds", type=int, default=3600)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--tick-seconds", type=float, default=60.0)
    parser.add_argument("--alarm", type=int, default=240)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if os.environ.get("BENCH_DEBUG"):  # webid_provider's own log lines, on stderr
        import logging

        logging.basicConfig(level=logging.INFO, format="%(process)d %(name)s %(message)s")
        logging.getLogger("botocore").setLevel(logging.WARNING)
    signal.alarm(args.alarm)  # bounded: a stuck worker is killed, the run reports it
    if args.scenario == "steady":
        from bench._steady import steady

        result = steady(args)
    else:
        scenarios: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
            "race": race,
            "warm": warm,
            "fresh": fresh,
            "hot": hot,
            "outage": outage,
        }
        result = scenarios[args.scenario](args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
