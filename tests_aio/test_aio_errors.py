"""Bad input fails the async path exactly as the sync path; cancellation leaves no damage."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path
from typing import Any, Callable, Optional

import boto3
import filelock
import pytest
from aiobotocore.session import get_session

import webid_provider
from tests_aio._support import run
from webid_provider._refresh_state import clear_memory_state

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _sync_failure() -> tuple[str, BaseException]:
    session = boto3.Session()
    try:
        credentials = session.get_credentials()
    except Exception as exc:
        return "get_credentials", exc
    assert credentials is not None
    try:
        credentials.get_frozen_credentials()
    except Exception as exc:
        return "get_frozen_credentials", exc
    raise AssertionError("the sync path did not fail")


async def _async_failure() -> tuple[str, BaseException]:
    session = get_session()
    try:
        credentials = await session.get_credentials()
    except Exception as exc:
        return "get_credentials", exc
    try:
        await credentials.get_frozen_credentials()
    except Exception as exc:
        return "get_frozen_credentials", exc
    raise AssertionError("the async path did not fail")


def _comparable(exc: BaseException) -> tuple[str, str, Optional[str]]:
    """Class, message without the per-call request id or elapsed seconds, and STS code."""
    message = re.sub(r"\(request id [^)]*\)", "(request id …)", str(exc))
    message = re.sub(r"\(\d+ s ago", "(N s ago", message)
    return type(exc).__name__, message, getattr(exc, "code", None)


def _role_arn_invalid(env: Any, mp: pytest.MonkeyPatch) -> None:
    mp.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:user/not-a-role")


def _duration_too_long_in_profile(env: Any, mp: pytest.MonkeyPatch) -> None:
    config = Path(env.token_file).parent.parent / "bad-profile"
    config.write_text(
        f"[default]\nrole_arn = {env.role_arn}\n"
        f"web_identity_token_file = {env.token_file}\nduration_seconds = 99999\n"
    )
    mp.setenv("AWS_CONFIG_FILE", str(config))
    mp.delenv("AWS_ROLE_ARN")
    mp.delenv("AWS_WEB_IDENTITY_TOKEN_FILE")


def _token_file_missing(env: Any, mp: pytest.MonkeyPatch) -> None:
    mp.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(Path(env.token_file).parent / "absent"))


def _token_file_empty(env: Any, mp: pytest.MonkeyPatch) -> None:
    env.rotate(token="   \n")


def _token_expired(env: Any, mp: pytest.MonkeyPatch) -> None:
    env.rotate(ttl=-600)  # past the 5-minute leeway: refused locally


def _token_wrong_audience(env: Any, mp: pytest.MonkeyPatch) -> None:
    env.rotate(aud="someone-else")


def _sts_access_denied(env: Any, mp: pytest.MonkeyPatch) -> None:
    env.emulator.fail_next(
        "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403, count=2
    )


def _sts_throttled_throughout(env: Any, mp: pytest.MonkeyPatch) -> None:
    env.emulator.fail_next("Throttling", "Rate exceeded", 400, count=8)


@pytest.mark.parametrize(
    ("setup", "expected_class", "expected_step"),
    [
        (_role_arn_invalid, "ConfigurationError", "get_credentials"),
        (_duration_too_long_in_profile, "ConfigurationError", "get_credentials"),
        (_token_file_missing, "TokenSourceError", "get_frozen_credentials"),
        (_token_file_empty, "TokenSourceError", "get_frozen_credentials"),
        (_token_expired, "TokenSourceError", "get_frozen_credentials"),
        (_token_wrong_audience, "StsServiceError", "get_frozen_credentials"),
        (_sts_access_denied, "StsServiceError", "get_frozen_credentials"),
        (_sts_throttled_throughout, "StsServiceError", "get_frozen_credentials"),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)).lstrip("_"),
)
def test_bad_input_raises_what_the_sync_path_raises(
    irsa_env: Any,
    monkeypatch: pytest.MonkeyPatch,
    setup: Callable[[Any, pytest.MonkeyPatch], None],
    expected_class: str,
    expected_step: str,
) -> None:
    setup(irsa_env, monkeypatch)
    webid_provider.register(cache_dir=None)
    sync_step, sync_error = _sync_failure()
    clear_memory_state()  # the async path must find the error itself, not replay the sync one
    async_step, async_error = run(_async_failure())
    assert (async_step, sync_step) == (expected_step, expected_step)
    assert _comparable(async_error) == _comparable(sync_error)
    assert type(async_error).__name__ == expected_class
    assert isinstance(async_error, webid_provider.WebIdProviderError)


def test_register_refuses_bad_options_before_any_session() -> None:
    with pytest.raises(webid_provider.ConfigurationError, match="duration_seconds"):
        webid_provider.register(duration_seconds=5)


def _held_lock(cache_dir: Path) -> Optional[Path]:
    for lock_path in cache_dir.glob("*.lock") if cache_dir.exists() else []:
        probe = filelock.FileLock(str(lock_path), timeout=0)
        try:
            probe.acquire()
        except filelock.Timeout:
            return lock_path
        probe.release()
    return None


def _wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _assert_cache_is_whole(cache_dir: Path, access_key: str) -> None:
    """Only complete entries and lock files: no temporary or partial file anywhere."""
    names = sorted(path.name for path in cache_dir.iterdir())
    assert all(name.endswith((".json", ".lock")) for name in names), names
    (entry,) = [cache_dir / name for name in names if name.startswith("arwwi-")]
    assert access_key in entry.read_text()  # the entry the cancelled refresh fetched
    assert oct(entry.stat().st_mode & 0o777) == "0o600"


def test_cancelling_a_coroutine_mid_refresh_releases_the_lock_and_leaves_a_whole_entry(
    irsa_env: Any,
) -> None:
    irsa_env.emulator.latency_seconds = 2
    webid_provider.register()

    async def main() -> None:
        credentials = await get_session().get_credentials()
        waiting = asyncio.create_task(credentials.get_frozen_credentials())
        for _ in range(200):  # until the refresh holds the file lock (inside the STS call)
            if await asyncio.to_thread(_held_lock, irsa_env.cache_dir) is not None:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the refresh never took the lock")
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    run(main())
    # The refresh went on in its thread, finished, and let go of the lock.
    assert _wait_for(lambda: irsa_env.emulator.assume_count == 1, 15)
    assert _wait_for(lambda: _held_lock(irsa_env.cache_dir) is None, 10)
    (call,) = irsa_env.emulator.successful_calls
    assert _wait_for(lambda: any(irsa_env.cache_dir.glob("arwwi-*.json")), 5)
    _assert_cache_is_whole(irsa_env.cache_dir, call.access_key_id)

    # Its result serves the next caller, in this process and in a new one: no second call.
    async def again() -> str:
        credentials = await get_session().get_credentials()
        return str((await credentials.get_frozen_credentials()).access_key)

    assert run(again()) == call.access_key_id
    clear_memory_state()
    assert run(again()) == call.access_key_id
    assert irsa_env.emulator.assume_count == 1


def test_an_event_loop_that_ends_mid_refresh_does_not_break_the_refresh(irsa_env: Any) -> None:
    """``asyncio.run`` cancels what is left when its coroutine returns; the refresh job does
    not belong to that loop (its STS call runs on the job thread's own loop)."""
    irsa_env.emulator.latency_seconds = 1.5
    webid_provider.register()

    async def give_up_early() -> None:
        credentials = await get_session().get_credentials()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(credentials.get_frozen_credentials(), timeout=0.3)

    run(give_up_early())  # the loop is closed now
    assert _wait_for(lambda: len(irsa_env.emulator.successful_calls) == 1, 15)
    assert _wait_for(lambda: _held_lock(irsa_env.cache_dir) is None, 10)
    assert _wait_for(lambda: any(irsa_env.cache_dir.glob("arwwi-*.json")), 5)
    (call,) = irsa_env.emulator.successful_calls
    _assert_cache_is_whole(irsa_env.cache_dir, call.access_key_id)
    assert irsa_env.emulator.calls[0].error_code is None


def test_a_refresh_job_run_on_the_event_loop_thread_is_refused_clearly(irsa_env: Any) -> None:
    """The STS call must never block a loop; a job runner that runs jobs inline on the loop
    gets an error saying so instead of a stalled loop."""
    from webid_provider._aio_glue import OffLoopStsClient

    client = OffLoopStsClient(get_session(), region_name="us-east-1", config_options={})

    async def call_on_loop() -> None:
        client.assume_role_with_web_identity(RoleArn="x", RoleSessionName="y", WebIdentityToken="z")

    with pytest.raises(webid_provider.StsError, match="event loop's thread") as caught:
        run(call_on_loop())
    assert caught.value.code == "CalledOnEventLoop"
    assert irsa_env.emulator.assume_count == 0


def test_no_secret_reaches_the_debug_logs(irsa_env: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = Path(irsa_env.token_file).read_text().strip()
    webid_provider.register()

    async def main() -> Any:
        session = get_session()
        credentials = await session.get_credentials()
        async with session.create_client("sts", region_name="us-east-1") as client:
            await client.get_caller_identity()  # a request signed with the session token
        return await credentials.get_frozen_credentials()

    frozen = run(main())
    text = "\n".join(record.getMessage() for record in caplog.records)
    # aiobotocore logs through botocore's loggers: its request and response dumps happened,
    # with the token and the new keys redacted.
    assert "WebIdentityToken" in text
    assert "GetCallerIdentity" in text
    assert "<SecretAccessKey><redacted>" in text
    for secret in (token, frozen.secret_key, frozen.token):
        assert secret not in text
