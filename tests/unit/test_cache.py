"""The on-disk cache: keys, layout, permissions, tolerant reads, degradation, the lock."""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import re
import stat
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from webid_provider.cache import CacheEntry, CredentialCache, KeyMaterial
from webid_provider.result import AssumedRoleUser, WebIdentityResult

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLE-session-token"
ACCESS_KEY = "ASIAEXAMPLEACCESSKEY"
ENTRY_NAME = re.compile(r"^arwwi-[0-9a-f]{40}\.(json|lock)$")

MATERIAL = KeyMaterial(
    role_arn="arn:aws:iam::123456789012:role/web-role",
    role_session_name="session-1",
    duration_seconds=3600,
    policy='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*"}]}',
    policy_arns=("arn:aws:iam::aws:policy/A", "arn:aws:iam::aws:policy/B"),
    provider_id=None,
    endpoint="us-east-1||regional",
    token_identity="0" * 64,
)
KEY = MATERIAL.key()


def make_result(
    *, lifetime: float = 3600, obtained_at: datetime = NOW, access_key: str = ACCESS_KEY
) -> WebIdentityResult:
    return WebIdentityResult(
        access_key_id=access_key,
        secret_access_key=SECRET_KEY,
        session_token=SESSION_TOKEN,
        expiration=obtained_at + timedelta(seconds=lifetime),
        obtained_at=obtained_at,
        assumed_role_user=AssumedRoleUser(
            arn="arn:aws:sts::123456789012:assumed-role/web-role/session-1",
            assumed_role_id="AROAEXAMPLE:session-1",
        ),
        subject_from_web_identity_token="system:serviceaccount:ns:app",
        audience="sts.amazonaws.com",
        provider="arn:aws:iam::123456789012:oidc-provider/oidc.example.com",
        source_identity="alice",
        packed_policy_size=7,
    )


def make_entry(key: str = KEY, **kwargs: Any) -> CacheEntry:
    return CacheEntry(
        key=key,
        result=make_result(**kwargs),
        role_arn=MATERIAL.role_arn,
        role_session_name=MATERIAL.role_session_name,
    )


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.levelno >= logging.WARNING and record.name.startswith("webid_provider")
    ]


class ExThread(threading.Thread):
    """A thread whose ``join`` re-raises what its target raised (filelock's ``ExThread``)."""

    def __init__(self, target: Callable[[], None]) -> None:
        super().__init__(target=target, daemon=True)
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            super().run()
        except BaseException as exc:
            self.error = exc

    def join(self, timeout: Optional[float] = None) -> None:
        super().join(timeout)
        if self.error is not None:
            raise self.error


@pytest.fixture
def cache(tmp_path: Path) -> CredentialCache:
    return CredentialCache(tmp_path / "cache")


# -- round trip and layout ----------------------------------------------------------------------


def test_write_then_read_keeps_every_field(cache: CredentialCache) -> None:
    entry = make_entry()
    assert cache.write(entry) is True
    assert cache.read(KEY, now=NOW) == entry


def test_missing_entry_is_a_miss(cache: CredentialCache) -> None:
    assert cache.read(KEY, now=NOW) is None


def test_directory_is_created_0700_and_entries_are_0600(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "b" / "cache"
    cache = CredentialCache(directory)
    assert cache.write(make_entry())
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(cache.entry_path(KEY)).st_mode) == 0o600
    with cache.lock(KEY) as locked:
        assert locked
    assert stat.S_IMODE(os.stat(directory / f"{KEY}.lock").st_mode) & 0o077 == 0


def test_existing_open_directory_is_made_private(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    directory.mkdir()
    directory.chmod(0o755)
    assert CredentialCache(directory).write(make_entry())
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700


def test_no_secret_in_file_names(cache: CredentialCache, tmp_path: Path) -> None:
    cache.write(make_entry())
    with cache.lock(KEY):
        names = os.listdir(tmp_path / "cache")
    assert names
    for name in names:
        assert ENTRY_NAME.match(name), name
        for secret in (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, MATERIAL.token_identity):
            assert secret not in name


def test_no_temporary_files_are_left_behind(cache: CredentialCache, tmp_path: Path) -> None:
    for index in range(3):
        cache.write(make_entry(access_key=f"ASIA{index}"))
    assert os.listdir(tmp_path / "cache") == [f"{KEY}.json"]


def test_entry_file_is_json_with_version_and_key(cache: CredentialCache) -> None:
    cache.write(make_entry())
    document = json.loads(cache.entry_path(KEY).read_text())
    assert document["Version"] == 1
    assert document["Key"] == KEY
    assert document["RoleArn"] == MATERIAL.role_arn
    assert document["Response"]["Credentials"]["AccessKeyId"] == ACCESS_KEY


def test_a_later_write_replaces_the_entry(cache: CredentialCache) -> None:
    cache.write(make_entry(access_key="ASIAFIRST"))
    cache.write(make_entry(access_key="ASIASECOND"))
    entry = cache.read(KEY, now=NOW)
    assert entry is not None
    assert entry.result.access_key_id == "ASIASECOND"


def test_entries_and_remove(cache: CredentialCache, tmp_path: Path) -> None:
    cache.write(make_entry())
    other = "arwwi-" + "f" * 40
    (tmp_path / "cache" / f"{other}.json").write_text("{garbage")
    listed = dict(cache.entries())
    assert listed[cache.entry_path(KEY)] == make_entry()
    assert listed[cache.entry_path(other)] is None
    with cache.lock(KEY):
        pass
    assert cache.remove(KEY) is True
    assert not cache.entry_path(KEY).exists()
    assert not (tmp_path / "cache" / f"{KEY}.lock").exists()
    assert cache.remove(KEY) is False


# -- keys ---------------------------------------------------------------------------------------


def test_key_is_file_name_safe_and_deterministic() -> None:
    assert re.fullmatch(r"arwwi-[0-9a-f]{40}", KEY)
    assert dataclasses.replace(MATERIAL).key() == KEY


def test_key_ignores_policy_whitespace_key_order_and_policy_arn_order() -> None:
    equivalent = dataclasses.replace(
        MATERIAL,
        policy='{"Statement":[{"Action":"s3:*","Effect":"Allow"}],\n  "Version":"2012-10-17"}',
        policy_arns=tuple(reversed(MATERIAL.policy_arns)),
    )
    assert equivalent.key() == KEY


@pytest.mark.parametrize(
    "change",
    [
        {"role_arn": "arn:aws:iam::123456789012:role/other"},
        {"role_session_name": "session-2"},
        {"duration_seconds": 900},
        {"duration_seconds": None},
        {"policy": '{"Version": "2012-10-17", "Statement": []}'},
        {"policy": None},
        {"policy_arns": ("arn:aws:iam::aws:policy/A",)},
        {"policy_arns": ()},
        {"provider_id": "www.amazon.com"},
        {"endpoint": "us-west-2||regional"},
        {"endpoint": "us-east-1|http://127.0.0.1:5000|regional"},
        {"token_identity": "1" * 64},
    ],
    ids=lambda change: "-".join(f"{k}={v}" for k, v in change.items())[:60],
)
def test_key_changes_with_every_input(change: dict[str, Any]) -> None:
    assert dataclasses.replace(MATERIAL, **change).key() != KEY


def test_key_does_not_contain_its_inputs() -> None:
    for value in (MATERIAL.role_arn, MATERIAL.token_identity, "web-role", "session-1"):
        assert value not in KEY


# -- tolerant reads -----------------------------------------------------------------------------


def valid_payload() -> dict[str, Any]:
    return {
        "Version": 1,
        "Key": KEY,
        "RoleArn": MATERIAL.role_arn,
        "RoleSessionName": MATERIAL.role_session_name,
        "ObtainedAt": NOW.isoformat(),
        "Response": make_result().to_response(),
    }


def corrupt(mutate: Callable[[dict[str, Any]], Any]) -> bytes:
    payload = valid_payload()
    replacement = mutate(payload)
    return json.dumps(payload if replacement is None else replacement).encode()


def _set(path: list[str], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(payload: dict[str, Any]) -> None:
        target = payload
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return mutate


CORRUPT_ENTRIES: dict[str, bytes] = {
    "truncated-json": json.dumps(valid_payload()).encode()[:120],
    "garbage-bytes": b"\xff\xfe\x00garbage\x80\x81",
    "empty-file": b"",
    "not-an-object": b"[1, 2, 3]",
    "wrong-version": corrupt(_set(["Version"], 2)),
    "missing-version": corrupt(lambda payload: payload.pop("Version")),
    "wrong-key": corrupt(_set(["Key"], "arwwi-" + "0" * 40)),
    "naive-expiration": corrupt(
        _set(["Response", "Credentials", "Expiration"], "2026-01-01T13:00:00")
    ),
    "naive-obtained-at": corrupt(_set(["ObtainedAt"], "2026-01-01T12:00:00")),
    "missing-response": corrupt(lambda payload: payload.pop("Response")),
    "missing-secret": corrupt(
        lambda payload: payload["Response"]["Credentials"].pop("SecretAccessKey")
    ),
    "wrong-types": corrupt(_set(["Response", "Credentials"], ["not", "a", "dict"])),
    "too-large": b" " * (300 * 1024) + json.dumps(valid_payload()).encode(),
}


@pytest.mark.parametrize("content", CORRUPT_ENTRIES.values(), ids=CORRUPT_ENTRIES.keys())
def test_corrupt_entry_is_a_miss_and_is_overwritten(cache: CredentialCache, content: bytes) -> None:
    assert cache.enabled
    path = cache.entry_path(KEY)
    path.write_bytes(content)
    path.chmod(0o600)
    assert cache.read(KEY, now=NOW) is None
    assert cache.write(make_entry()) is True
    assert cache.read(KEY, now=NOW) == make_entry()


def test_valid_payload_helper_is_itself_readable(cache: CredentialCache) -> None:
    assert cache.enabled
    cache.entry_path(KEY).write_text(json.dumps(valid_payload()))
    assert cache.read(KEY, now=NOW) == make_entry()


def test_expired_entry_is_a_miss(cache: CredentialCache) -> None:
    cache.write(make_entry(lifetime=3600))
    assert cache.read(KEY, now=NOW + timedelta(seconds=3599)) is not None
    assert cache.read(KEY, now=NOW + timedelta(seconds=3600)) is None
    assert cache.read(KEY, now=NOW + timedelta(days=1)) is None


def test_symlinked_entry_is_refused_and_replaced_without_touching_its_target(
    cache: CredentialCache, tmp_path: Path
) -> None:
    assert cache.enabled
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps(valid_payload()))
    cache.entry_path(KEY).symlink_to(target)
    assert cache.read(KEY, now=NOW) is None
    assert cache.write(make_entry(access_key="ASIANEW")) is True
    assert not cache.entry_path(KEY).is_symlink()
    assert json.loads(target.read_text()) == valid_payload()
    entry = cache.read(KEY, now=NOW)
    assert entry is not None
    assert entry.result.access_key_id == "ASIANEW"


def test_directory_in_place_of_the_entry_is_a_miss(cache: CredentialCache) -> None:
    assert cache.enabled
    cache.entry_path(KEY).mkdir()
    assert cache.read(KEY, now=NOW) is None
    # A rename cannot replace a directory: the write fails softly instead of raising.
    assert isinstance(cache.write(make_entry()), bool)
    assert cache.read(KEY, now=NOW) is None


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_reading_a_directory_entry_does_not_leak_descriptors(cache: CredentialCache) -> None:
    assert cache.enabled
    cache.entry_path(KEY).mkdir()
    cache.read(KEY, now=NOW)
    before = open_descriptors()
    for _ in range(20):
        assert cache.read(KEY, now=NOW) is None
    assert open_descriptors() == before


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")
def test_entry_owned_by_another_user_is_a_miss(cache: CredentialCache) -> None:
    cache.write(make_entry())
    os.chown(cache.entry_path(KEY), 65534, 65534)
    assert cache.read(KEY, now=NOW) is None


# -- unusable directories -----------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["under-a-file", "is-a-file"])
def test_unusable_directory_degrades_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, layout: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="webid_provider")
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    directory = blocker / "cache" if layout == "under-a-file" else blocker
    cache = CredentialCache(directory)
    assert cache.enabled is False
    for _ in range(3):
        assert cache.write(make_entry()) is False
        assert cache.read(KEY, now=NOW) is None
        with cache.lock(KEY) as locked:
            assert locked is False
    assert CredentialCache(directory).write(make_entry()) is False
    records = warnings_of(caplog)
    assert len(records) == 1
    assert str(directory) in records[0].getMessage()
    assert "memory" in records[0].getMessage()
    assert blocker.read_text() == "not a directory"


def test_read_only_file_system_degrades_with_one_warning(
    cache: CredentialCache, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="webid_provider")
    assert cache.enabled

    def read_only(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    assert cache.write(make_entry()) is False
    assert cache.write(make_entry()) is False
    assert cache.enabled is False
    records = warnings_of(caplog)
    assert len(records) == 1
    assert "Read-only file system" in records[0].getMessage()
    for secret in (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN):
        assert secret not in caplog.text


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores directory modes"
)
def test_unwritable_directory_degrades(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    directory.chmod(0o500)
    try:
        cache = CredentialCache(directory)
        assert cache.enabled is False
        assert cache.write(make_entry()) is False
        assert len(warnings_of(caplog)) == 1
    finally:
        directory.chmod(0o700)


def test_memory_only_cache_does_nothing_quietly(caplog: pytest.LogCaptureFixture) -> None:
    cache = CredentialCache(None)
    assert cache.enabled is False
    assert cache.write(make_entry()) is False
    assert cache.read(KEY, now=NOW) is None
    assert cache.entries() == []
    assert cache.remove(KEY) is False
    with cache.lock(KEY) as locked:
        assert locked is False
    assert warnings_of(caplog) == []


# -- the lock -----------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_lock_is_exclusive_and_bounded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="webid_provider")
    holder = CredentialCache(tmp_path / "cache", lock_timeout_seconds=0.2)
    waiter = CredentialCache(tmp_path / "cache", lock_timeout_seconds=0.2)
    outcome: dict[str, Any] = {}

    def wait_for_lock() -> None:
        started = time.monotonic()
        with waiter.lock(KEY) as locked:
            outcome["locked"] = locked
            outcome["waited"] = time.monotonic() - started

    with holder.lock(KEY) as held:
        assert held is True
        thread = ExThread(wait_for_lock)
        thread.start()
        thread.join(timeout=10)
        assert not thread.is_alive()
    assert outcome["locked"] is False
    assert 0.15 <= outcome["waited"] < 5
    messages = [record.getMessage() for record in warnings_of(caplog)]
    assert len(messages) == 1
    assert KEY in messages[0]
    assert "without it" in messages[0]

    outcome.clear()
    thread = ExThread(wait_for_lock)
    thread.start()
    thread.join(timeout=10)
    assert outcome["locked"] is True


@pytest.mark.timeout(30)
def test_lock_waits_for_a_holder_that_releases_in_time(tmp_path: Path) -> None:
    holder = CredentialCache(tmp_path / "cache", lock_timeout_seconds=5)
    waiter = CredentialCache(tmp_path / "cache", lock_timeout_seconds=5)
    acquired = threading.Event()
    events: list[str] = []

    def hold_briefly() -> None:
        with holder.lock(KEY) as locked:
            assert locked
            acquired.set()
            time.sleep(0.3)
            events.append("released")

    thread = ExThread(hold_briefly)
    thread.start()
    assert acquired.wait(timeout=10)
    with waiter.lock(KEY) as locked:
        assert locked is True
        events.append("acquired")
    thread.join(timeout=10)
    assert events == ["released", "acquired"]


@pytest.mark.timeout(30)
def test_locks_of_different_keys_do_not_block_each_other(tmp_path: Path) -> None:
    cache = CredentialCache(tmp_path / "cache", lock_timeout_seconds=0.2)
    other = "arwwi-" + "a" * 40
    outcome: list[bool] = []

    def take_other() -> None:
        with cache.lock(other) as locked:
            outcome.append(locked)

    with cache.lock(KEY) as held:
        assert held
        thread = ExThread(take_other)
        thread.start()
        thread.join(timeout=10)
    assert outcome == [True]


def test_lock_file_is_not_the_entry_file(cache: CredentialCache) -> None:
    cache.write(make_entry())
    with cache.lock(KEY) as locked:
        assert locked
        assert cache.read(KEY, now=NOW) == make_entry()
    assert cache.read(KEY, now=NOW) == make_entry()
