"""Adversarial pass over the refresher rewrite, with real processes and the strict emulator.

Most tests here were confirmed defects (strict xfails when found, fixed since); the one still
marked is a known gap, documented in README ("Known limits"). The rest are attacks that held
and stay as guards. Every scenario is what a real deployment does (new processes, new sessions, forks,
token sources that go down, hosts whose clock drifts), not a mock of our own code.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import botocore.session
import filelock
import pytest

import webid_provider
from webid_provider._provider import WebIdentityProvider

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

BIN = Path(sys.executable).parent
WEBID = str(BIN / "webid-provider")


def _credential_process(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [WEBID, "credential-process", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def _only_entry(cache_dir: Path) -> Path:
    entries = sorted(cache_dir.glob("arwwi-*.json"))
    assert len(entries) == 1, entries
    return entries[0]


def _counting_token_command(tmp_path: Path, token_file: Path) -> tuple[Path, Path, Path]:
    """A token command that counts its runs and fails while ``down`` exists."""
    script, runs, down = tmp_path / "token.sh", tmp_path / "runs", tmp_path / "idp-down"
    script.write_text(
        "#!/bin/sh\n"
        f"echo run >> {runs}\n"
        f"[ -e {down} ] && {{ echo 'identity provider unreachable' >&2; exit 1; }}\n"
        f"cat {token_file}\n"
    )
    script.chmod(0o700)
    return script, runs, down


def _runs(runs: Path) -> int:
    return len(runs.read_text().splitlines()) if runs.exists() else 0


# -- credential-process and due entries ---------------------------------------------------------


def test_credential_process_refreshes_an_entry_whose_refresh_time_has_come(irsa_env: Any) -> None:
    first = _credential_process()
    entry = _only_entry(irsa_env.cache_dir)
    document = json.loads(entry.read_text())
    document["RefreshAt"] = (datetime.now(timezone.utc) - timedelta(seconds=5)).isoformat()
    entry.write_text(json.dumps(document))  # same file: still ours, 0600

    seen = [_credential_process()["AccessKeyId"] for _ in range(3)]

    # One of these runs refreshes (one STS call for the host) and later runs adopt the new
    # entry. Today every run prints the old keys and starts a refresh that never lands.
    assert irsa_env.emulator.assume_count == 2
    assert seen[-1] != first["AccessKeyId"]
    assert json.loads(entry.read_text())["RefreshAt"] != document["RefreshAt"]


# -- token sources: new sessions in a warm process, static stability ---------------------------


def test_a_new_session_in_a_warm_process_does_not_run_the_token_command(
    irsa_env: Any, tmp_path: Path
) -> None:
    script, runs, _ = _counting_token_command(tmp_path, irsa_env.token_file)
    first = webid_provider.session(web_identity_token_command=[str(script)])
    key = first.get_credentials().get_frozen_credentials().access_key
    assert _runs(runs) == 1

    for _ in range(3):  # e.g. a web app that makes a boto3 Session per request
        again = webid_provider.session(web_identity_token_command=[str(script)])
        assert again.get_credentials().get_frozen_credentials().access_key == key

    assert irsa_env.emulator.assume_count == 1
    assert _runs(runs) == 1, "every new session ran (and waited for) the token command"


def test_a_failing_token_command_does_not_fail_new_sessions_holding_usable_credentials(
    irsa_env: Any, tmp_path: Path
) -> None:
    script, _, down = _counting_token_command(tmp_path, irsa_env.token_file)
    first = webid_provider.session(web_identity_token_command=[str(script)])
    key = first.get_credentials().get_frozen_credentials().access_key
    down.write_text("")  # the identity provider goes away; an hour of validity is in hand

    in_process = webid_provider.session(web_identity_token_command=[str(script)])
    assert in_process.get_credentials().get_frozen_credentials().access_key == key
    new_process = _credential_process("--web-identity-token-command", str(script))
    assert new_process["AccessKeyId"] == key
    assert irsa_env.emulator.assume_count == 1


# -- fork ---------------------------------------------------------------------------------------

FORK_WHILE_CREATING_CLIENT = textwrap.dedent(
    """
    import faulthandler, os, sys, threading
    import webid_provider

    session = webid_provider.session(cache_dir=None)
    botocore_session = session._session
    parent = os.getpid()
    entered, release = threading.Event(), threading.Event()
    real_create_client = botocore_session.create_client

    def slow_create_client(*args, **kwargs):
        # Creating a botocore client takes ~100 ms for real; widen that window in the parent.
        if os.getpid() == parent and threading.current_thread() is not threading.main_thread():
            entered.set()
            release.wait(10)
        return real_create_client(*args, **kwargs)

    botocore_session.create_client = slow_create_client
    credentials = session.get_credentials()
    threading.Thread(target=credentials.get_frozen_credentials, daemon=True).start()
    assert entered.wait(10)
    pid = os.fork()
    if pid == 0:
        done = threading.Event()
        def child():
            try:
                credentials.get_frozen_credentials()
                print("child got credentials", flush=True)
            except Exception as exc:
                print("child error", type(exc).__name__, exc, flush=True)
            done.set()
        threading.Thread(target=child, daemon=True).start()
        finished = done.wait(6)
        if not finished:
            faulthandler.dump_traceback(all_threads=True)
        os._exit(0 if finished else 3)
    release.set()
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
    """
)


def test_a_child_forked_while_the_sts_client_is_being_created_gets_credentials(
    irsa_env: Any,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", FORK_WHILE_CREATING_CLIENT],
        capture_output=True,
        text=True,
        timeout=40,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "child got credentials" in done.stdout


PARENT_DIES_MID_REFRESH = textwrap.dedent(
    """
    import os, threading, time
    import boto3, webid_provider
    webid_provider.register()
    credentials = boto3.Session().get_credentials()
    threading.Thread(target=credentials.get_frozen_credentials, daemon=True).start()
    time.sleep(1.0)  # the thread now holds the cache lock, waiting for a slow STS
    if os.fork() == 0:  # a daemon child that outlives its parent
        time.sleep(6)
        os._exit(0)
    os._exit(0)  # the parent dies mid-refresh (crash, OOM kill, daemonizing)
    """
)


def test_a_lock_is_free_once_its_holder_dies_even_if_it_forked(irsa_env: Any) -> None:
    """Held with filelock 4.x (closes inherited lock descriptors in the child). With the
    filelock 3.20.3 that pyproject still allows, the orphan child keeps the lock and other
    processes wait for the lock timeout (verified by hand; see the adversary report)."""
    irsa_env.emulator.latency_seconds = 3.0
    subprocess.run([sys.executable, "-c", PARENT_DIES_MID_REFRESH], timeout=30, check=True)
    locks = sorted(irsa_env.cache_dir.glob("lock-*.lock"))
    assert len(locks) == 1
    lock = filelock.FileLock(str(locks[0]))
    lock.acquire(timeout=0)  # raises filelock.Timeout while the orphan child holds it
    lock.release()


# -- clocks -------------------------------------------------------------------------------------


def _provider_with_clock(offset: timedelta) -> WebIdentityProvider:
    return WebIdentityProvider(
        botocore.session.Session(), {}, clock=lambda: datetime.now(timezone.utc) + offset
    )


def test_a_host_clock_minutes_ahead_still_exchanges_a_short_lived_token(irsa_env: Any) -> None:
    irsa_env.rotate(ttl=300)  # CI-style 5-minute token, valid for STS for 5 more minutes
    credentials = _provider_with_clock(timedelta(minutes=6)).load()
    assert credentials is not None
    assert str(credentials.get_frozen_credentials().access_key).startswith("ASIA")
    assert irsa_env.emulator.assume_count == 1


@pytest.mark.xfail(
    strict=True,
    reason="known gap (README, Known limits): with the host clock behind STS's by more than "
    "the stop margin (5 % of the lifetime, 1-60 s), requests are signed with credentials STS "
    "considers expired; botocore does the same. Here: 6 s credentials, a 3 s lag",
)
def test_a_host_clock_behind_sts_never_signs_with_expired_credentials(irsa_env: Any) -> None:
    irsa_env.emulator.lifetime_seconds = 6
    session = botocore.session.Session()
    provider = WebIdentityProvider(
        session, {}, clock=lambda: datetime.now(timezone.utc) - timedelta(seconds=3)
    )
    # Ours first in the chain, as register() would place it, but with the skewed clock.
    session.get_component("credential_provider").insert_before("env", provider)
    client: Any = session.create_client(
        "sts", region_name="us-east-1", endpoint_url=irsa_env.emulator.endpoint_url
    )
    deadline = time.monotonic() + 7.5
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # the emulator counts what matters
            client.get_caller_identity()
        time.sleep(0.05)
    assert irsa_env.emulator.expired_credential_uses == 0


# -- multi-tenant use: one key per token --------------------------------------------------------


def test_expired_entries_of_per_token_keys_do_not_pile_up(irsa_env: Any) -> None:
    # Four seconds: long enough never to arrive dead on a loaded machine (under 1 s left).
    irsa_env.emulator.lifetime_seconds = 4
    for caller in range(12):  # twelve callers, each with their own token
        token = irsa_env.issuer.mint(sub=f"user-{caller}")
        webid_provider.session(web_identity_token=token).get_credentials().get_frozen_credentials()
    time.sleep(4.5)  # every one of those entries has expired
    token = irsa_env.issuer.mint(sub="user-next")
    webid_provider.session(web_identity_token=token).get_credentials().get_frozen_credentials()

    entries = sorted(irsa_env.cache_dir.glob("arwwi-*.json"))
    assert len(entries) <= 2, f"{len(entries)} entries, all but one expired"


# -- doomed calls -------------------------------------------------------------------------------


def test_expired_token_exception_for_an_unchanged_token_is_not_repeated_per_request(
    irsa_env: Any,
) -> None:
    irsa_env.emulator.fail_next("ExpiredTokenException", count=1000)
    credentials = WebIdentityProvider(botocore.session.Session(), {}).load()
    assert credentials is not None
    failures: list[str] = []

    def requests() -> None:
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                credentials.get_frozen_credentials()
            except Exception as exc:
                failures.append(getattr(exc, "code", type(exc).__name__))
            time.sleep(0.05)

    threads = [threading.Thread(target=requests) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures
    assert set(failures) == {"ExpiredTokenException"}
    assert irsa_env.emulator.assume_count <= 5, "one STS call per request"
