"""Row 7: a fleet model on paper — STS calls for H hosts x P processes, ours vs botocore's.

A discrete-event simulation, not a measurement. Its rules are the two providers' refresh
rules (rows 1 and 6 measure them on one host):

* botocore: every process holds its own credentials. It refreshes on its first request less
  than 15 minutes (the advisory window) before expiry; when the lifetime is <= 15 minutes
  (its fetcher's 900 s cache window) every request is an STS call (boto/botocore#2189).
  No jitter.
* ours: one STS call per host per refresh (the file lock; row 1). The process that calls STS
  draws the refresh instant once with :meth:`webid_provider.RefreshPolicy.refresh_at` and
  stores it in the cache entry; every process of the host adopts it, so the host refreshes at
  that instant (``expiry - advisory * U(0.75, 1.25)`` with the default jitter). Without
  jitter (``jitter_fraction=0``) every host refreshes ``advisory`` before expiry.
* a refresh happens at the first request after it is due: requests arrive every
  ``1 / request_rate`` seconds per process, so that adds ``U(0, 1 / request_rate)`` seconds.
* every host starts at t = 0 (the worst case: a fleet-wide deploy or a region failover).

Peaks are calls in any one-second bin, compared with an *assumed* STS request quota.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from webid_provider import RefreshPolicy, WebIdentityResult

#: ASSUMPTION, not a documented or measured number: an STS request rate of 600 requests/s
#: per account and Region, shared by every caller in the account. AWS says only that STS
#: calls from all sources count against one account-wide rate limit and that each regional
#: endpoint is throttled separately (knowledge-center article "iam-sts-throttling-error");
#: replace this with your account's real limit.
ASSUMED_STS_QUOTA_PER_SECOND = 600

BOTOCORE_ADVISORY_SECONDS = 15 * 60
BOTOCORE_FETCHER_WINDOW_SECONDS = 15 * 60


@dataclass(frozen=True)
class FleetResult:
    hosts: int
    processes: int
    session_seconds: int
    calls_per_hour: float
    cold_start_peak: float
    refresh_peak: float


def _peaks(times: list[float], start: float) -> tuple[float, float]:
    bins = Counter(int(t) for t in times)
    cold = bins.get(0, 0)
    later = max((count for second, count in bins.items() if second >= start), default=0)
    return float(cold), float(later)


def simulate_ours(
    hosts: int,
    processes: int,
    session_seconds: int,
    *,
    jitter: bool = True,
    request_rate: float = 1.0,
    horizon_hours: float = 6.0,
    seed: int = 7,
) -> FleetResult:
    policy = RefreshPolicy() if jitter else RefreshPolicy(jitter_fraction=0.0)
    rng = random.Random(seed)
    end = session_seconds + horizon_hours * 3600
    epoch = datetime(2026, 1, 1, tzinfo=timezone.utc)
    times: list[float] = []
    for _ in range(hosts):
        obtained = 0.0  # every host's cold start: one call (row 1)
        times.append(obtained)
        while True:
            got = epoch + timedelta(seconds=obtained)
            result = WebIdentityResult(
                access_key_id="ASIAMODEL",
                secret_access_key="-",
                session_token="-",
                expiration=got + timedelta(seconds=session_seconds),
                obtained_at=got,
            )
            due = (policy.refresh_at(result, got, rng) - epoch).total_seconds()
            obtained = max(due, obtained) + rng.uniform(0.0, 1.0 / request_rate)
            if obtained >= end:
                break
            times.append(obtained)
    return _summarise(hosts, processes, session_seconds, times, end)


def simulate_botocore(
    hosts: int,
    processes: int,
    session_seconds: int,
    *,
    request_rate: float = 1.0,
    horizon_hours: float = 6.0,
    seed: int = 7,
) -> FleetResult:
    end = session_seconds + horizon_hours * 3600
    if session_seconds <= max(BOTOCORE_ADVISORY_SECONDS, BOTOCORE_FETCHER_WINDOW_SECONDS):
        # Every request is an STS call: the rate is the request rate, at every second.
        per_second = hosts * processes * request_rate
        return FleetResult(
            hosts, processes, session_seconds, per_second * 3600, per_second, per_second
        )
    rng = random.Random(seed)
    times: list[float] = []
    for _ in range(hosts * processes):
        obtained = 0.0
        times.append(obtained)
        while True:
            due = obtained + session_seconds - BOTOCORE_ADVISORY_SECONDS
            obtained = due + rng.uniform(0.0, 1.0 / request_rate)
            if obtained >= end:
                break
            times.append(obtained)
    return _summarise(hosts, processes, session_seconds, times, end)


def _summarise(
    hosts: int, processes: int, session_seconds: int, times: list[float], end: float
) -> FleetResult:
    start = float(session_seconds)  # steady state: after the first lifetime
    steady = [t for t in times if start <= t < end]
    cold, later = _peaks(times, start=1.0)
    return FleetResult(
        hosts=hosts,
        processes=processes,
        session_seconds=session_seconds,
        calls_per_hour=len(steady) / ((end - start) / 3600),
        cold_start_peak=cold,
        refresh_peak=later,
    )


def fleet_model(
    host_counts: tuple[int, ...] = (100, 1000),
    processes: int = 16,
    sessions: tuple[int, ...] = (900, 3600),
) -> dict[tuple[str, int, int], FleetResult]:
    """``{(variant, hosts, session_seconds): result}`` for ours, ours without jitter, botocore."""
    out = {}
    for hosts in host_counts:
        for session_seconds in sessions:
            out[("ours", hosts, session_seconds)] = simulate_ours(hosts, processes, session_seconds)
            out[("ours-nojitter", hosts, session_seconds)] = simulate_ours(
                hosts, processes, session_seconds, jitter=False
            )
            out[("botocore", hosts, session_seconds)] = simulate_botocore(
                hosts, processes, session_seconds
            )
    return out
