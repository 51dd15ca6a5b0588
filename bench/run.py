"""``python -m bench [--quick] [--latency-ms 50] [--repeat 5] [--rows 1,8]``: ours vs botocore.

Starts the strict STS emulator (moto on 127.0.0.1 behind the checking front) with a realistic
answer latency, a local OIDC issuer and a kubelet-style token file, then runs rows 1-6 as
worker processes for both providers and computes row 7 on paper. Rows 8-10 (a second table)
measure the ways in for other SDKs and tools against their own references. "botocore" is a plain
``boto3.Session`` with ``AWS_ROLE_ARN`` and ``AWS_WEB_IDENTITY_TOKEN_FILE`` set and this package
not imported; "ours" is the same with ``webid_provider.register()`` and a shared
``WEBID_PROVIDER_CACHE_DIR``. Progress goes to stderr, the table to stdout.

Nothing leaves loopback; every loop is bounded; scratch files live in a temporary directory
removed at the end.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Optional

from bench import _aio, _consumers, _fleet, _outage, _scenarios
from bench._table import Row, number, render


@dataclass(frozen=True)
class Plan:
    race_counts: tuple[int, ...]
    race_repeat: int
    warm_iterations: int
    fresh_repeat: int
    hot_number: int
    hot_runs: int
    import_repeat: int
    outage: _outage.OutagePlan
    steady_processes: tuple[int, ...]
    steady_sessions: dict[int, float]  # session seconds -> virtual hours
    steady_tick_seconds: float
    steady_every_request_hours: float
    consumer_repeat: int
    spawn_hours: float
    spawn_interval_seconds: float
    endpoint_requests: int


def make_plan(quick: bool, repeat: int) -> Plan:
    if quick:
        return Plan(
            race_counts=(1, 8, 32),
            race_repeat=1,
            warm_iterations=5,
            fresh_repeat=min(repeat, 2),
            hot_number=20_000,
            hot_runs=3,
            import_repeat=min(repeat, 3),
            outage=_outage.OutagePlan(
                lifetime_seconds=16, lead_seconds=3, outage_seconds=10, tail_seconds=3
            ),
            steady_processes=(1, 16),
            steady_sessions={900: 1.0, 3600: 3.0},
            steady_tick_seconds=60.0,
            steady_every_request_hours=0.1,
            consumer_repeat=2 * min(repeat, 5),
            spawn_hours=2.0,
            spawn_interval_seconds=1.0,
            endpoint_requests=100,
        )
    return Plan(
        race_counts=(1, 8, 32, 64),
        race_repeat=max(1, min(repeat, 3)),
        warm_iterations=10,
        fresh_repeat=repeat,
        hot_number=100_000,
        hot_runs=repeat,
        import_repeat=repeat,
        outage=_outage.OutagePlan(
            lifetime_seconds=30, lead_seconds=5, outage_seconds=20, tail_seconds=7
        ),
        steady_processes=(1, 16),
        steady_sessions={900: 2.0, 3600: 8.0},
        steady_tick_seconds=60.0,
        steady_every_request_hours=0.25,
        consumer_repeat=4 * repeat,
        spawn_hours=4.0,
        spawn_interval_seconds=1.0,
        endpoint_requests=300,
    )


def _progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def header(args: argparse.Namespace, started_at: datetime) -> str:
    now = started_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    versions = ", ".join(
        f"{name} {_version(name)}" for name in ("webid-provider", "boto3", "botocore", "moto")
    )
    return "\n".join(
        [
            f"# webid_provider benchmark — started {now}",
            "",
            f"- Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
            f"{os.cpu_count()} CPUs; {versions}",
            f"- mode: {'quick' if args.quick else 'full'}; STS emulator latency "
            f"{args.latency_ms:g} ms per AssumeRoleWithWebIdentity (loopback moto + strict front); "
            f"medians of repeated runs (n per row in the notes)",
            "- ours = `webid_provider.register()` + shared `WEBID_PROVIDER_CACHE_DIR`; botocore = "
            "plain `boto3.Session()` with `AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`, "
            "package not imported; ratio = ours ÷ botocore (below 1: ours better)",
            "",
        ]
    )


def _rows_1_to_4(lab: _scenarios.Lab, plan: Plan) -> list[Row]:
    rows: list[Row] = []
    _progress(f"row 1: {plan.race_counts} cold processes released at once")
    race = _scenarios.cold_race(lab, plan.race_counts, plan.race_repeat)
    for count in plan.race_counts:
        ours, boto = race["ours"][count], race["botocore"][count]
        rows.append(
            Row(
                "1",
                f"STS calls, {count} cold process{'es' if count > 1 else ''} at once",
                "calls",
                ours["calls"],
                boto["calls"],
                f"all have credentials after {number(ours['seconds'])} s vs "
                f"{number(boto['seconds'])} s; n={ours['runs']}",
            )
        )
    _progress("row 2: new session in a warm process; fresh process")
    warm = _scenarios.warm_sessions(lab, plan.warm_iterations)
    rows.append(
        Row(
            "2",
            "new session in a warm process → credentials",
            "ms",
            warm["ours"]["memory"] * 1e3,
            warm["botocore"]["memory"] * 1e3,
            f"ours from memory; from disk only: {number(warm['ours']['disk'] * 1e3)} ms; "
            f"botocore calls STS each time; `boto3.Session()` itself, not counted: "
            f"{number(warm['botocore']['session'] * 1e3)} ms; n={plan.warm_iterations}",
        )
    )
    fresh = _scenarios.fresh_processes(lab, plan.fresh_repeat)
    rows.append(
        Row(
            "2",
            "fresh process start → credentials, host cache warm",
            "ms",
            fresh["ours_warm_cache"] * 1e3,
            fresh["botocore"] * 1e3,
            f"interpreter start to credentials in hand; ours reads the entry another process "
            f"wrote, botocore calls STS; n={plan.fresh_repeat}",
        )
    )
    rows.append(
        Row(
            "2",
            "fresh process start → credentials, host cache cold",
            "ms",
            fresh["ours_cold_cache"] * 1e3,
            fresh["botocore"] * 1e3,
            f"both call STS; ours also imports itself (row 4), takes the file lock and writes "
            f"the entry; full garbage collections by then (median): "
            f"{fresh['ours_cold_cache_full_gcs']:g} vs {fresh['botocore_full_gcs']:g}; "
            f"n={plan.fresh_repeat}",
        )
    )
    rows.append(
        Row(
            "2",
            "fresh process start → first signed request answered, host cache cold",
            "ms",
            fresh["ours_cold_cache_first_request"] * 1e3,
            fresh["botocore_first_request"] * 1e3,
            f"the row above plus one GetCallerIdentity with the same session; full garbage "
            f"collections by then (median): {fresh['ours_cold_cache_first_request_full_gcs']:g}"
            f" vs {fresh['botocore_first_request_full_gcs']:g}; n={plan.fresh_repeat}",
        )
    )
    _progress("row 3: get_frozen_credentials() on the request path")
    hot = _scenarios.hot_path(lab, plan.hot_number, plan.hot_runs)
    rows.append(
        Row(
            "3",
            "`get_frozen_credentials()` per request",
            "ns/op",
            hot["ours"],
            hot["botocore"],
            f"timeit, {plan.hot_number:,} calls x {plan.hot_runs} runs, median; "
            f"valid 1 h credentials in hand",
        )
    )
    _progress("row 4: import time")
    imports = _scenarios.import_time(lab, plan.import_repeat)
    added = imports["ours"] - imports["botocore"]
    rows.append(
        Row(
            "4",
            "`import boto3` (+ `import webid_provider`)",
            "ms",
            imports["ours"] * 1e3,
            imports["botocore"] * 1e3,
            f"whole interpreter run, wall; adds {number(added * 1e3)} ms wall, "
            f"{number(imports['webid_provider_importtime'] * 1e3)} ms by `-X importtime` "
            f"(cumulative, after boto3); n={plan.import_repeat}",
        )
    )
    return rows


def _row_5(lab: _scenarios.Lab, plan: Plan) -> list[Row]:
    spec = plan.outage
    _progress(
        f"row 5: request loop every {spec.interval_seconds * 1e3:g} ms, "
        f"{spec.lifetime_seconds} s credentials, {spec.outage_seconds:g} s outage (real time)"
    )
    result = _outage.outage(lab, spec)
    ours, boto = result["ours"], result["botocore"]
    setting = (
        f"{spec.lifetime_seconds} s credentials; STS answers 503 for {spec.outage_seconds:g} s "
        f"starting {spec.lead_seconds:g} s after both had credentials; botocore with its "
        f"default retries (1.44: standard mode, 3 attempts per call); n=1"
    )
    return [
        Row(
            "5",
            "STS attempts per minute during the outage",
            "attempts/min",
            ours["attempts_per_minute"],
            boto["attempts_per_minute"],
            f"{setting}; STS calls over the whole run: {ours['sts_calls_total']} vs "
            f"{boto['sts_calls_total']}",
        ),
        Row(
            "5",
            "failed requests (signed GetCallerIdentity every 50 ms)",
            "requests",
            ours["failed"],
            boto["failed"],
            f"of {ours['requests']} vs {boto['requests']} requests; longest request "
            f"{number(ours['longest_request_seconds'])} s vs "
            f"{number(boto['longest_request_seconds'])} s; signed with expired keys: "
            f"{ours['expired_uses']} vs {boto['expired_uses']}; botocore errors: "
            f"{', '.join(boto['errors']) or 'none'}",
        ),
    ]


def _row_6(lab: _scenarios.Lab, plan: Plan) -> list[Row]:
    _progress("row 6: steady state under a virtual clock")
    steady = _scenarios.steady_state(
        lab,
        plan.steady_processes,
        plan.steady_sessions,
        plan.steady_tick_seconds,
        plan.steady_every_request_hours,
    )
    rows = []
    for session_seconds in plan.steady_sessions:
        for count in plan.steady_processes:
            ours = steady[("ours", count, session_seconds)]
            boto = steady[("botocore", count, session_seconds)]
            note = (
                f"injected clock, {number(60 / plan.steady_tick_seconds)} request/min per "
                f"process; {ours['steady_calls']} vs {boto['steady_calls']} real STS calls "
                f"after the cold start in {number(ours['hours'])} vs {number(boto['hours'])} "
                f"virtual h; n=1"
            )
            if session_seconds <= 900:
                note += "; botocore calls STS on every request (its number is the request rate)"
            if ours["errors"] or boto["errors"]:
                note += f"; failed requests {ours['errors']} vs {boto['errors']}"
            rows.append(
                Row(
                    "6",
                    f"steady STS calls/hour, {count} process{'es' if count > 1 else ''}, "
                    f"{session_seconds} s sessions",
                    "calls/h",
                    ours["per_hour"],
                    boto["per_hour"],
                    note,
                )
            )
    return rows


def _row_7() -> list[Row]:
    _progress("row 7: fleet model")
    model = _fleet.fleet_model()
    quota = _fleet.ASSUMED_STS_QUOTA_PER_SECOND
    rows = []
    for hosts, session_seconds in ((100, 3600), (1000, 3600), (1000, 900)):
        ours = model[("ours", hosts, session_seconds)]
        boto = model[("botocore", hosts, session_seconds)]
        rows.append(
            Row(
                "7",
                f"model: {hosts} hosts x 16 processes, {session_seconds} s sessions",
                "calls/h",
                ours.calls_per_hour,
                boto.calls_per_hour,
                f"= {number(ours.calls_per_hour / 3600)} vs {number(boto.calls_per_hour / 3600)} "
                f"calls/s on average"
                + (
                    "; botocore calls STS on every request, here 1 request/s per process"
                    if session_seconds <= 900
                    else ""
                ),
            )
        )
    cold_ours = model[("ours", 1000, 3600)].cold_start_peak
    cold_boto = model[("botocore", 1000, 3600)].cold_start_peak
    rows.append(
        Row(
            "7",
            "model: 1000 x 16 all start at once — peak calls in one second",
            "calls/s",
            cold_ours,
            cold_boto,
            f"{number(cold_ours / quota)}x vs {number(cold_boto / quota)}x the ASSUMED quota of "
            f"{quota}/s per account and Region; cold fetches are not jittered (by either)",
        )
    )
    for session_seconds in (3600, 900):
        ours = model[("ours", 1000, session_seconds)]
        flat = model[("ours-nojitter", 1000, session_seconds)]
        boto = model[("botocore", 1000, session_seconds)]
        rows.append(
            Row(
                "7",
                f"model: 1000 x 16 after a common start, {session_seconds} s sessions — "
                f"peak refresh calls in one second",
                "calls/s",
                ours.refresh_peak,
                boto.refresh_peak,
                f"ours with jitter; without jitter {number(flat.refresh_peak)}/s "
                f"({number(flat.calls_per_hour)} calls/h); "
                f"{number(ours.refresh_peak / quota * 100)}% vs "
                f"{number(boto.refresh_peak / quota * 100)}% of the assumed {quota}/s",
            )
        )
    return rows


def _rows_8_to_10(lab: _scenarios.Lab, plan: Plan) -> list[Row]:
    _progress("row 8: credential-process with a warm cache")
    warm = _consumers.warm_credential_process(lab, plan.consumer_repeat)
    imported = "imported" if warm["botocore_imported"] else "not imported"
    rows = [
        Row(
            "8",
            "`credential-process`, warm cache ÷ `python -c pass`",
            "ms",
            warm["ours"] * 1e3,
            warm["pass"] * 1e3,
            f"console script, Popen to exit, interleaved medians, n={plan.consumer_repeat}; "
            f"botocore {imported} (PYTHONPROFILEIMPORTTIME); budget ≤ 4",
        ),
        Row(
            "8",
            '`credential-process`, warm cache ÷ `python -c "import boto3"`',
            "ms",
            warm["ours"] * 1e3,
            warm["boto3"] * 1e3,
            f"the floor of any botocore-based credential_process; budget ≤ 0.3; "
            f"STS calls: {warm['sts_calls']}",
        ),
    ]
    _progress(
        f"row 9: botocore credential_process consumer, {plan.spawn_hours:g} virtual h, "
        f"a request every {plan.spawn_interval_seconds:g} s"
    )
    spawns = _consumers.spawns_per_hour(lab, plan.spawn_hours, plan.spawn_interval_seconds)
    ours, before = spawns["ours"], spawns["no-margin"]
    setting = (
        f"botocore's ProcessProvider on a virtual clock, 1 h sessions, {ours['requests']} "
        f"requests in {number(plan.spawn_hours)} h; n=1"
    )
    rows.append(
        Row(
            "9",
            "spawns per 100 requests ÷ `--min-remaining 0` (the previous release)",
            "spawns",
            ours["spawns"] * 100 / ours["requests"],
            before["spawns"] * 100 / before["requests"],
            f"{setting}; {ours['spawns']} vs {before['spawns']} spawns, of which "
            f"{ours['full']} vs {before['full']} took the full path",
        )
    )
    rows.append(
        Row(
            "9",
            "STS calls per hour, same consumer",
            "calls/h",
            ours["sts_calls"] / plan.spawn_hours,
            before["sts_calls"] / plan.spawn_hours,
            f"{ours['sts_calls']} vs {before['sts_calls']} calls at the emulator, cold start "
            "included: the margin refreshes at the consumer's window instead of ours",
        )
    )
    _progress("row 10: exec endpoint latency")
    endpoint = _consumers.endpoint_latency(lab, plan.endpoint_requests)
    rows.append(
        Row(
            "10",
            "`exec` endpoint: one fetch by botocore's container provider ÷ a warm "
            "`credential-process` spawn",
            "ms",
            endpoint["median"] * 1e3,
            warm["ours"] * 1e3,
            f"`ContainerMetadataFetcher.retrieve_full_uri` under `webid-provider exec`, median "
            f"of {endpoint['requests']}, p95 {number(endpoint['p95'] * 1e3)} ms; "
            f"STS calls: {endpoint['sts_calls']}",
        )
    )
    return rows


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs, about a minute")
    parser.add_argument(
        "--latency-ms", type=float, default=50.0, help="emulated STS answer latency (default 50)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="repetitions per row (default 5)")
    parser.add_argument(
        "--rows",
        type=lambda text: {int(part) for part in text.split(",")},
        default=set(range(1, 11)),
        help="comma-separated rows to run (default: all; rows 1-4 and 8-10 run together)",
    )
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.repeat < 1 or args.latency_ms < 0:
        raise SystemExit("--repeat must be >= 1 and --latency-ms >= 0")
    logging.getLogger("webid_provider").setLevel(logging.ERROR)
    plan = make_plan(args.quick, args.repeat)
    started = time.monotonic()
    started_at = datetime.now(timezone.utc)
    from webid_provider.testing import KubeletTokenFile, OidcIssuer, StsEmulator

    scratch = Path(tempfile.mkdtemp(prefix="webid-bench-"))
    try:
        issuer = OidcIssuer(issuer="https://oidc.webid.test")
        # Valid past row 6's eight virtual hours: the provider checks exp on its injected clock.
        token = issuer.mint(
            sub="system:serviceaccount:default:app", aud="sts.amazonaws.com", ttl=24 * 3600
        )
        kubelet = KubeletTokenFile(scratch / "serviceaccount", token)
        with StsEmulator(issuer, latency_seconds=args.latency_ms / 1e3) as emulator:
            lab = _scenarios.Lab(
                emulator=emulator,
                scratch=scratch,
                env=_scenarios.environment_for_workers(
                    scratch, emulator.endpoint_url, kubelet.path
                ),
                latency_seconds=args.latency_ms / 1e3,
            )
            _scenarios.warm_up(lab)
            rows: list[Row] = []
            if args.rows & {1, 2, 3, 4}:
                rows += _rows_1_to_4(lab, plan)
                # Row 2 for aiobotocore, only where aiobotocore is installed (bench/_aio.py).
                _aio.add_rows(rows, lab, plan.warm_iterations)
            if 5 in args.rows:
                rows += _row_5(lab, plan)
            if 6 in args.rows:
                rows += _row_6(lab, plan)
            consumers = _rows_8_to_10(lab, plan) if args.rows & {8, 9, 10} else []
        if 7 in args.rows:
            rows += _row_7()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.monotonic() - started
    print(header(args, started_at))
    if rows:
        print(render(rows))
        print()
    if consumers:
        print("Other SDKs and tools: `credential_process` and the container endpoint")
        print()
        print(render(consumers, reference="reference"))
        print()
    print(
        f"Rows 1-6 and 8-10 measured against the emulator in this run ({elapsed:.0f} s in all); "
        f"row 7 is a model (bench/_fleet.py). Method per row: bench/README.md."
    )
    return 0
