"""``credential-process`` as consumers run it: real processes, the strict STS emulator.

* A warm cache is answered without importing botocore, boto3, pyjwt or cryptography (checked
  with ``PYTHONPROFILEIMPORTTIME``, which lists every module the console script imported), and
  the answer is the full path's; any changed input goes back to the full path.
* The consumer margin: a boto3 program whose profile runs ``credential_process`` respawns us
  on every request while the credentials we hand out sit inside botocore's 15-minute window.
  Spawns are counted by a wrapper script the profile runs; STS calls at the emulator.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

BIN = Path(sys.executable).parent
WEBID = str(BIN / "webid-provider")
HEAVY = {"botocore", "boto3", "jwt", "cryptography"}
FOURTEEN_MINUTES = 14 * 60


def _env(irsa_env: Any, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("AWS_DATA_PATH", None)
    env.update(extra)
    return env


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def _imported(stderr: str) -> set[str]:
    """Top-level packages named in ``-X importtime`` output."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.add(name.split(".")[0])
    return names


def _credential_process(
    env: dict[str, str], *arguments: str, trace: bool = False
) -> tuple[dict[str, Any], set[str]]:
    if trace:
        env = {**env, "PYTHONPROFILEIMPORTTIME": "1"}
    done = _run([WEBID, "credential-process", *arguments], env)
    assert done.returncode == 0, done.stderr[-2000:]
    document: dict[str, Any] = json.loads(done.stdout)
    return document, _imported(done.stderr)


def test_warm_cache_answers_without_botocore_and_matches_the_full_path(irsa_env: Any) -> None:
    env = _env(irsa_env)
    cold, cold_modules = _credential_process(env, trace=True)
    assert "botocore" in cold_modules  # the check can see it
    warm, warm_modules = _credential_process(env, trace=True)
    assert warm == cold
    assert warm_modules, "PYTHONPROFILEIMPORTTIME listed nothing"
    assert HEAVY & warm_modules == set()
    assert "webid_provider" in warm_modules
    assert irsa_env.emulator.assume_count == 1

    irsa_env.rotate()  # the kubelet rotates the token: same identity, same entry
    rotated, rotated_modules = _credential_process(env, trace=True)
    assert rotated == cold
    assert HEAVY & rotated_modules == set()
    assert irsa_env.emulator.assume_count == 1


def test_changed_inputs_go_back_to_the_full_path(irsa_env: Any) -> None:
    env = _env(irsa_env)
    first, _ = _credential_process(env)
    _credential_process(env)

    config = Path(irsa_env.env["AWS_CONFIG_FILE"])
    config.write_text("[profile unrelated]\nregion = eu-west-1\n")
    same_key, modules = _credential_process(env, trace=True)
    assert "botocore" in modules  # a new fingerprint: resolved again...
    assert same_key == first  # ...to the same key, so no STS call
    assert irsa_env.emulator.assume_count == 1
    _, modules = _credential_process(env, trace=True)
    assert HEAVY & modules == set()  # and recorded again

    irsa_env.rotate(sub="system:serviceaccount:default:other")
    other, modules = _credential_process(env, trace=True)
    assert "botocore" in modules
    assert other["AccessKeyId"] != first["AccessKeyId"]
    assert irsa_env.emulator.assume_count == 2
    assert (
        irsa_env.emulator.calls[-1].role_session_name
        != irsa_env.emulator.calls[0].role_session_name
    )


def _seconds_left(document: dict[str, Any]) -> float:
    expiration = datetime.fromisoformat(document["Expiration"])
    return (expiration - datetime.now(timezone.utc)).total_seconds()


def _entry_with_fourteen_minutes(
    irsa_env: Any, env: dict[str, str], *args: str, aged: bool = True
) -> dict[str, Any]:
    """The host cache holds credentials with 14 minutes left; STS then issues 1-hour ones.

    The emulator issues 14-minute credentials (and refuses them once expired). With ``aged``,
    the entry is then rewritten into what the cache holds 46 minutes after a one-hour session
    was obtained: ``ObtainedAt`` an hour before expiry and ``RefreshAt`` at the latest instant
    the refresh policy draws for one-hour sessions (11.25 minutes before expiry), so only the
    consumer margin can make the next hand-out refresh. Without it the entry's own lifetime is
    14 minutes, which no real STS session has (the minimum is 15).
    """
    irsa_env.emulator.lifetime_seconds = FOURTEEN_MINUTES
    document, _ = _credential_process(env, *args)
    assert _seconds_left(document) < 15 * 60  # just obtained: handed out as they are
    irsa_env.emulator.lifetime_seconds = None  # the role's default, one hour
    if aged:
        (path,) = Path(irsa_env.env["WEBID_PROVIDER_CACHE_DIR"]).glob("arwwi-*.json")
        entry = json.loads(path.read_text())
        expiration = datetime.fromisoformat(document["Expiration"])
        entry["ObtainedAt"] = (expiration - timedelta(hours=1)).isoformat()
        entry["RefreshAt"] = (expiration - timedelta(minutes=11.25)).isoformat()
        path.write_text(json.dumps(entry))  # same file: mode and owner unchanged
    return document


CONSUMER = textwrap.dedent(
    """
    import json, sys, boto3
    session = boto3.Session(profile_name="user")
    client = session.client("sts")
    for _ in range(20):
        client.get_caller_identity()
    frozen = session.get_credentials()
    print(json.dumps({"method": frozen.method}))
    """
)


def _consumer_profile(irsa_env: Any, tmp_path: Path, *extra: str) -> dict[str, str]:
    wrapper = tmp_path / "counting-webid-provider"
    wrapper.write_text(
        "#!/bin/sh\n"
        'echo spawn >> "$SPAWN_LOG"\n'
        f'exec {WEBID} credential-process --profile wi {" ".join(extra)} "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    Path(irsa_env.env["AWS_CONFIG_FILE"]).write_text(
        f"[profile wi]\nrole_arn = {irsa_env.role_arn}\n"
        f"web_identity_token_file = {irsa_env.token_file}\n\n"
        f"[profile user]\nregion = us-east-1\ncredential_process = {wrapper}\n"
    )
    return _env(irsa_env, SPAWN_LOG=str(tmp_path / "spawns"))


def _spawns_for_twenty_requests(env: dict[str, str], tmp_path: Path) -> int:
    log = tmp_path / "spawns"
    log.write_text("")
    clean = {
        k: v for k, v in env.items() if k not in ("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")
    }
    done = _run([sys.executable, "-c", CONSUMER], clean)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["method"] == "custom-process"
    return len(log.read_text().splitlines())


def test_an_entry_inside_the_consumers_window_is_refreshed_once(
    irsa_env: Any, tmp_path: Path
) -> None:
    env = _consumer_profile(irsa_env, tmp_path)
    _entry_with_fourteen_minutes(irsa_env, env, "--profile", "wi")
    assert irsa_env.emulator.assume_count == 1

    spawns = _spawns_for_twenty_requests(env, tmp_path)
    assert 1 <= spawns <= 3
    assert irsa_env.emulator.assume_count <= 2
    assert irsa_env.emulator.expired_credential_uses == 0
    document, modules = _credential_process(env, "--profile", "wi", trace=True)
    assert _seconds_left(document) > 50 * 60  # the refreshed one-hour credentials...
    assert HEAVY & modules == set()  # ...now served by the fast path


def test_a_fourteen_minute_session_is_refreshed_when_the_role_issues_hours(
    irsa_env: Any, tmp_path: Path
) -> None:
    """Issue 13's recipe as written: the emulator's first credentials live 14 minutes."""
    env = _consumer_profile(irsa_env, tmp_path)
    _entry_with_fourteen_minutes(irsa_env, env, "--profile", "wi", aged=False)
    spawns = _spawns_for_twenty_requests(env, tmp_path)
    assert spawns <= 3
    assert irsa_env.emulator.assume_count <= 2


def test_without_the_margin_the_consumer_respawns_on_every_request(
    irsa_env: Any, tmp_path: Path
) -> None:
    """The control: the same program with ``--min-remaining 0`` (the behaviour before)."""
    env = _consumer_profile(irsa_env, tmp_path, "--min-remaining", "0")
    _entry_with_fourteen_minutes(irsa_env, env, "--profile", "wi", "--min-remaining", "0")
    assert _spawns_for_twenty_requests(env, tmp_path) >= 20
    assert irsa_env.emulator.assume_count == 1


def test_short_sessions_are_handed_out_as_they_are(irsa_env: Any) -> None:
    """900 s sessions cannot outlive a 15-minute margin: no refresh per hand-out."""
    env = _env(irsa_env)
    first, _ = _credential_process(env, "--duration-seconds", "900")
    assert _seconds_left(first) < 15 * 60
    again, _ = _credential_process(env, "--duration-seconds", "900")
    assert again == first
    assert irsa_env.emulator.assume_count == 1


def test_a_failed_margin_refresh_hands_out_the_credentials_in_hand(irsa_env: Any) -> None:
    env = _env(irsa_env)
    held = _entry_with_fourteen_minutes(irsa_env, env)
    irsa_env.emulator.fail_next("ServiceUnavailable", status=503, count=10)
    document, _ = _credential_process(env)  # inside the margin: the full path tries STS
    assert document == held
    calls = irsa_env.emulator.calls
    assert [call.error_code for call in calls[1:]] == ["ServiceUnavailable"]  # one attempt
