"""Issue 11 with real processes: static stability, no stalls, stuck locks, fork mid-refresh.

Each scenario runs in its own Python process against the emulator, because what is under test
is what a *new* process sees (only the disk cache), or what a forked child inherits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import filelock
import pytest

from webid_provider._cache import CredentialCache

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

# Get credentials through register() and print the access key and the key of the one cache
# entry holding it.
FIRST_PROCESS = textwrap.dedent(
    """
    import json, os, boto3, webid_provider
    from pathlib import Path
    webid_provider.register()
    access_key = boto3.Session().get_credentials().get_frozen_credentials().access_key
    entries = Path(os.environ["WEBID_PROVIDER_CACHE_DIR"]).glob("arwwi-*.json")
    (key,) = [path.stem for path in entries
              if json.loads(path.read_text())["Response"]["Credentials"]["AccessKeyId"]
              == access_key]
    print(json.dumps({"access_key": access_key, "key": key}))
    """
)

# Four threads sign a GetCallerIdentity every 50 ms for SECONDS; print what each saw.
REQUEST_THREADS = textwrap.dedent(
    """
    import json, sys, threading, time, boto3, webid_provider
    seconds = float(sys.argv[1])
    webid_provider.register()
    session = boto3.Session()
    client = session.client("sts", region_name="us-east-1")
    client.get_caller_identity()
    out = {"slowest": 0.0, "failures": [], "keys": [], "requests": 0}
    lock = threading.Lock()

    def work():
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                client.get_caller_identity()
            except Exception as exc:
                with lock:
                    out["failures"].append(f"{type(exc).__name__}: {exc}")
            took = time.monotonic() - started
            with lock:
                out["requests"] += 1
                out["slowest"] = max(out["slowest"], took)
            time.sleep(0.05)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out["keys"] = [session.get_credentials().get_frozen_credentials().access_key]
    print(json.dumps(out))
    """
)


def _python(code: str, env: dict[str, str], *args: str, timeout: float = 60) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _make_entry_due(irsa_env: Any) -> dict[str, Any]:
    """Obtain credentials in one process, then move the entry's refresh time into the past."""
    first = _python(FIRST_PROCESS, irsa_env.env)
    path = irsa_env.cache_dir / f"{first['key']}.json"
    document = json.loads(path.read_text())
    document["RefreshAt"] = (datetime.now(timezone.utc) - timedelta(seconds=5)).isoformat()
    path.write_text(json.dumps(document))  # same file: mode 0600, owner us
    return first


def test_a_new_process_keeps_serving_a_due_disk_entry_through_an_outage(irsa_env: Any) -> None:
    first = _make_entry_due(irsa_env)
    irsa_env.emulator.outage(60, code="ServiceUnavailable", status=503)
    seen = _python(REQUEST_THREADS, irsa_env.env, "2")
    assert seen["failures"] == []
    assert seen["keys"] == [first["access_key"]]
    failed = [c for c in irsa_env.emulator.calls if c.error_code is not None]
    assert 1 <= len(failed) <= 3, "single attempts with back-off, not one per request"
    assert irsa_env.emulator.expired_credential_uses == 0


def test_a_slow_sts_delays_no_request_while_usable_credentials_are_held(irsa_env: Any) -> None:
    first = _make_entry_due(irsa_env)  # 55+ minutes of validity in hand, refresh due
    irsa_env.emulator.latency_seconds = 4
    seen = _python(REQUEST_THREADS, irsa_env.env, "6")
    assert seen["failures"] == []
    assert seen["requests"] >= 20
    assert seen["slowest"] < 2.0, f"a request waited {seen['slowest']:.1f} s behind STS"
    assert irsa_env.emulator.assume_count == 2  # the first process, then one background refresh
    assert seen["keys"] != [first["access_key"]], "the background refresh landed"


def test_cold_processes_adopt_the_entry_a_stuck_lock_holder_wrote(
    irsa_env: Any, tmp_path: Path
) -> None:
    first = _python(FIRST_PROCESS, irsa_env.env)
    entry = irsa_env.cache_dir / f"{first['key']}.json"
    saved = entry.read_bytes()
    entry.unlink()
    # The lock file the cache takes for this key (keys share 256 lock files).
    holder = filelock.FileLock(str(CredentialCache(irsa_env.cache_dir).lock_path(first["key"])))
    holder.acquire()  # a process that took the lock, wrote the entry, and then hung
    try:
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", FIRST_PROCESS],
                env={**os.environ, **irsa_env.env},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(6)
        ]
        time.sleep(1.0)
        temp = entry.with_suffix(".tmp")
        temp.write_bytes(saved)
        os.chmod(temp, 0o600)
        temp.replace(entry)
        started = time.monotonic()
        outputs = [p.communicate(timeout=60) for p in processes]
        waited = time.monotonic() - started
    finally:
        holder.release()
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err
        assert json.loads(out)["access_key"] == first["access_key"]
    assert irsa_env.emulator.assume_count == 1, "nobody called STS behind the stuck lock"
    assert waited < 15, "the waiters noticed the entry instead of waiting out the lock"


FORK_MID_REFRESH = textwrap.dedent(
    """
    import json, os, signal, sys, threading, time, boto3, webid_provider
    webid_provider.register()
    creds = boto3.Session().get_credentials()
    refreshing = threading.Thread(target=creds.get_frozen_credentials)
    refreshing.start()
    time.sleep(0.7)  # the thread is inside botocore's refresh, waiting for a slow STS
    pid = os.fork()
    if pid == 0:
        signal.alarm(15)  # a deadlock ends the child with SIGALRM
        key = creds.get_frozen_credentials().access_key
        os.write(1, (json.dumps({"child": key}) + "\\n").encode())
        os._exit(0)
    refreshing.join()
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"parent": creds.get_frozen_credentials().access_key,
                      "child_status": status}))
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_child_forked_while_a_thread_refreshes_gets_credentials(irsa_env: Any) -> None:
    irsa_env.emulator.latency_seconds = 2
    done = subprocess.run(
        [sys.executable, "-c", FORK_MID_REFRESH],
        env={**os.environ, **irsa_env.env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.strip().splitlines()]
    child = next(line for line in lines if "child" in line)
    parent = next(line for line in lines if "parent" in line)
    assert parent["child_status"] == 0, "the child deadlocked (killed by its alarm)"
    assert child["child"] == parent["parent"], "the child adopted the parent's cache entry"
    assert irsa_env.emulator.assume_count == 1


def test_a_forged_string_token_with_a_victims_claims_reaches_sts(irsa_env: Any) -> None:
    import webid_provider

    victim = "system:serviceaccount:prod:payments"
    real = irsa_env.issuer.mint(sub=victim)
    webid_provider.session(web_identity_token=real).get_credentials().get_frozen_credentials()
    for cache_dir in (irsa_env.cache_dir, None):
        # Same iss/sub/aud, signed with a key the issuer never published.
        forged = irsa_env.issuer.mint_badly_signed(sub=victim, jti=str(cache_dir))
        session = webid_provider.session(web_identity_token=forged, cache_dir=cache_dir)
        with pytest.raises(webid_provider.StsError) as info:
            session.get_credentials().get_frozen_credentials()
        assert info.value.code == "InvalidIdentityToken"
    assert [c.error_code for c in irsa_env.emulator.calls] == [
        None,
        "InvalidIdentityToken",
        "InvalidIdentityToken",
    ]


def test_a_thread_mid_refresh_does_not_hold_up_other_sessions(irsa_env: Any) -> None:
    """In-process variant of the stall: many sessions, one slow background refresh."""
    import boto3

    import webid_provider
    from webid_provider._refresh_state import clear_memory_state

    _make_entry_due(irsa_env)
    clear_memory_state()
    irsa_env.emulator.latency_seconds = 2
    webid_provider.register()
    try:
        every_creds = [boto3.Session().get_credentials() for _ in range(4)]
        slowest = 0.0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            for creds in every_creds:
                assert creds is not None
                started = time.monotonic()
                creds.get_frozen_credentials()
                slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.02)
        # The refresh answers 2 s after it starts, later on a loaded host: let it land.
        settle = time.monotonic() + 15
        while irsa_env.emulator.assume_count < 2 and time.monotonic() < settle:
            time.sleep(0.05)
        time.sleep(0.3)  # a second refresh, had one started, would arrive by now
    finally:
        webid_provider.unregister()
    assert irsa_env.emulator.assume_count == 2, "one refresh for all sessions"
    assert slowest < 1.0, f"a caller waited {slowest:.2f} s"  # the refresh takes 2 s


def test_lock_waits_are_bounded_by_the_configured_timeout(tmp_path: Path) -> None:

    cache = CredentialCache(tmp_path / "cache", lock_timeout_seconds=0.6)
    holder_ready = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with filelock.FileLock(str(cache.lock_path("k"))):
            holder_ready.set()
            release.wait(10)

    assert cache.enabled  # creates the directory
    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holder_ready.wait(5)
        started = time.monotonic()
        with cache.lock("k") as locked:
            waited = time.monotonic() - started
        assert locked is False
        assert 0.5 <= waited < 2.0
    finally:
        release.set()
        thread.join()
