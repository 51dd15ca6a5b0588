"""The host-wide cache with real processes and threads against the emulator on loopback."""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Optional

import boto3
import filelock
import pytest

import webid_provider
from webid_provider._refresh_state import clear_memory_state

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _credentials(session: Any) -> Any:
    """The session's credentials, which these tests expect to exist."""
    creds = session.get_credentials()
    assert creds is not None
    return creds


# A worker: wait for the start file (so every process races), get credentials through
# register(), print the access key id and the key of the one cache entry holding it as JSON.
WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    start = sys.argv[1]
    deadline = time.monotonic() + 60
    while not os.path.exists(start) and time.monotonic() < deadline:
        time.sleep(0.005)
    import boto3, webid_provider
    webid_provider.register()
    creds = boto3.Session().get_credentials()
    frozen = creds.get_frozen_credentials()
    # The cache entry that holds these credentials names the key they were stored under.
    entries = Path(os.environ["WEBID_PROVIDER_CACHE_DIR"]).glob("arwwi-*.json")
    (key,) = [path.stem for path in entries
              if json.loads(path.read_text())["Response"]["Credentials"]["AccessKeyId"]
              == frozen.access_key]
    print(json.dumps({"access_key": frozen.access_key, "key": key}))
    """
)


def _spawn(env: dict[str, str], start_file: Path, count: int) -> list[subprocess.Popen[str]]:
    full_env = {**os.environ, **env}
    return [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(start_file)],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]


def _collect(processes: list[subprocess.Popen[str]]) -> list[dict[str, str]]:
    results = []
    for process in processes:
        out, err = process.communicate(timeout=90)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _run_workers(
    irsa_env: Any, tmp_path: Path, count: int, env: Optional[dict[str, str]] = None
) -> list[dict[str, str]]:
    start = tmp_path / f"start-{time.monotonic_ns()}"
    processes = _spawn({**irsa_env.env, **(env or {})}, start, count)
    time.sleep(0.5)  # let the interpreters load; the race starts with the file
    start.touch()
    return _collect(processes)


def test_cold_processes_make_one_sts_call_then_none(irsa_env: Any, tmp_path: Path) -> None:
    irsa_env.emulator.latency_seconds = 0.2  # a realistic round trip widens the race
    results = _run_workers(irsa_env, tmp_path, 24)

    assert irsa_env.emulator.assume_count == 1
    assert len({r["access_key"] for r in results}) == 1
    assert len({r["key"] for r in results}) == 1

    later = _run_workers(irsa_env, tmp_path, 1)
    assert irsa_env.emulator.assume_count == 1
    assert later[0]["access_key"] == results[0]["access_key"]


def test_other_identity_and_narrower_policy_get_their_own_entries(
    irsa_env: Any, tmp_path: Path
) -> None:
    first = _run_workers(irsa_env, tmp_path, 1)[0]

    other_token = tmp_path / "other-token"
    other_token.write_text(irsa_env.issuer.mint(sub="system:serviceaccount:other:app"))
    other = _run_workers(irsa_env, tmp_path, 1, {"AWS_WEB_IDENTITY_TOKEN_FILE": str(other_token)})[
        0
    ]
    assert irsa_env.emulator.assume_count == 2
    assert other["key"] != first["key"]
    assert other["access_key"] != first["access_key"]

    webid_provider.session(
        policy_arns=["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    ).get_credentials().get_frozen_credentials()
    assert irsa_env.emulator.assume_count == 3
    assert len(list(irsa_env.cache_dir.glob("arwwi-*.json"))) == 3


def test_corrupt_entries_cost_one_call_then_are_reused(irsa_env: Any, tmp_path: Path) -> None:
    _run_workers(irsa_env, tmp_path, 1)
    (entry,) = irsa_env.cache_dir.glob("arwwi-*.json")
    for damage in (b"", b'{"Version": 1, "Key": "trunc', b"\x00\xff garbage"):
        entry.write_bytes(damage)
        calls_before = irsa_env.emulator.assume_count
        _run_workers(irsa_env, tmp_path, 1)
        assert irsa_env.emulator.assume_count == calls_before + 1
        _run_workers(irsa_env, tmp_path, 1)
        assert irsa_env.emulator.assume_count == calls_before + 1
        assert json.loads(entry.read_bytes())["Version"] == 1


def test_cache_dir_under_a_regular_file_degrades_to_memory_with_one_warning(
    irsa_env: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    caplog.set_level(logging.WARNING, logger="webid_provider")
    for _ in range(3):
        clear_memory_state()
        creds = webid_provider.session(cache_dir=blocker / "cache").get_credentials()
        assert creds.get_frozen_credentials().access_key
    warnings = [r for r in caplog.records if "cannot be used" in r.getMessage()]
    assert len(warnings) == 1
    assert str(blocker / "cache") in warnings[0].getMessage()


def test_sigkilled_lock_holder_does_not_block_the_next_process(
    irsa_env: Any, tmp_path: Path
) -> None:
    irsa_env.emulator.latency_seconds = 30  # the holder will hang inside the STS call
    start = tmp_path / "start-holder"
    start.touch()
    (holder,) = _spawn(irsa_env.env, start, 1)
    try:
        lock_path = _wait_for_held_lock(irsa_env.cache_dir, timeout_seconds=30)
        os.kill(holder.pid, signal.SIGKILL)
        holder.communicate(timeout=10)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.communicate()
    irsa_env.emulator.latency_seconds = 0
    began = time.monotonic()
    result = _run_workers(irsa_env, tmp_path, 1)[0]
    elapsed = time.monotonic() - began
    assert result["access_key"]
    assert elapsed < 10, f"next process took {elapsed:.1f} s"
    assert lock_path.exists()


def _wait_for_held_lock(cache_dir: Path, timeout_seconds: float) -> Path:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        for lock_path in cache_dir.glob("*.lock") if cache_dir.exists() else []:
            probe = filelock.FileLock(str(lock_path), timeout=0)
            try:
                probe.acquire()
            except filelock.Timeout:
                return lock_path
            probe.release()
        time.sleep(0.05)
    raise AssertionError("the holder never took the lock")


class ExThread(threading.Thread):
    """A thread that re-raises its target's exception on join()."""

    def __init__(self, target: Any) -> None:
        super().__init__(daemon=True)
        self._work = target
        self.error: Optional[BaseException] = None
        self.value: Any = None

    def run(self) -> None:
        try:
            self.value = self._work()
        except BaseException as exc:
            self.error = exc

    def join(self, timeout: Optional[float] = None) -> None:
        super().join(timeout)
        if self.is_alive():
            raise AssertionError(f"the thread still runs after {timeout} s")
        if self.error is not None:
            raise self.error


def test_64_threads_on_a_cold_cache_make_one_call(irsa_env: Any) -> None:
    irsa_env.emulator.latency_seconds = 0.2
    webid_provider.register()
    barrier = threading.Barrier(64)

    def work() -> str:
        session = boto3.Session()
        barrier.wait(timeout=30)
        return str(_credentials(session).get_frozen_credentials().access_key)

    threads = [ExThread(work) for _ in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)  # registration is undone by the autouse fixture, whatever fails
    assert irsa_env.emulator.assume_count == 1
    assert len({t.value for t in threads}) == 1


def test_files_are_private_and_hold_no_token(irsa_env: Any, tmp_path: Path) -> None:
    _run_workers(irsa_env, tmp_path, 1)
    token = irsa_env.token_file.read_text().strip()
    assert stat.S_IMODE(irsa_env.cache_dir.stat().st_mode) == 0o700
    files = list(irsa_env.cache_dir.iterdir())
    assert {f.suffix for f in files} == {".json", ".lock"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        data = path.read_bytes()
        assert token.encode() not in data
        for part in token.split("."):
            assert part.encode() not in data
