"""The on-disk cache: keys, layout, permissions, tolerant reads, degradation, the lock."""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import random
import re
import stat
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from webid_provider._cache import CacheEntry, CredentialCache
from webid_provider._cache_key import KeyMaterial
from webid_provider._errors import CacheError
from webid_provider._result import AssumedRoleUser, WebIdentityResult

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLE-session-token"
ACCESS_KEY = "ASIAEXAMPLEACCESSKEY"
ENTRY_NAME = re.compile(r"^(arwwi-[0-9a-f]{40}\.json|lock-[0-9a-f]{2}\.lock)$")
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

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
        if self.is_alive():
            raise AssertionError(f"the thread still runs after {timeout} s")
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
    assert stat.S_IMODE(os.stat(cache.lock_path(KEY)).st_mode) & 0o077 == 0


def test_existing_directory_readable_by_others_is_used_and_never_chmodded(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    directory.mkdir()
    directory.chmod(0o755)  # ``mkdir`` under umask 022: nobody else can write
    assert CredentialCache(directory).write(make_entry())
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(directory / f"{KEY}.json").st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o775, 0o777, 0o1777, 0o3777])
def test_directory_writable_by_others_is_refused_and_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(mode)
    cache = CredentialCache(directory)
    assert cache.write(make_entry()) is False
    assert cache.read(KEY, now=NOW) is None
    assert stat.S_IMODE(os.stat(directory).st_mode) == mode
    assert list(directory.iterdir()) == []
    (record,) = warnings_of(caplog)
    assert str(directory) in record.getMessage()
    assert "chmod 700" in record.getMessage()
    assert "memory" in record.getMessage()


def test_symlinked_directory_is_refused_and_its_target_untouched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 11: a root process followed such a link and chmodded a root-owned 0755 directory.
    target = tmp_path / "system-directory"
    target.mkdir()
    target.chmod(0o755)
    link = tmp_path / "cache"
    link.symlink_to(target)
    cache = CredentialCache(link)
    assert cache.write(make_entry()) is False
    with cache.lock(KEY) as locked:
        assert locked is False
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o755
    assert list(target.iterdir()) == []
    (record,) = warnings_of(caplog)
    assert "symlink" in record.getMessage()
    assert "memory" in record.getMessage()


def test_dangling_symlink_as_directory_is_refused_and_not_created_through(tmp_path: Path) -> None:
    link = tmp_path / "cache"
    link.symlink_to(tmp_path / "would-be-created")
    assert CredentialCache(link).write(make_entry()) is False
    assert not (tmp_path / "would-be-created").exists()


@pytest.mark.skipif(not IS_ROOT, reason="needs root to chown")
def test_another_users_directory_is_refused_and_never_chmodded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "theirs"
    directory.mkdir()
    directory.chmod(0o755)
    os.chown(directory, 65534, 65534)
    assert CredentialCache(directory).write(make_entry()) is False
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o755
    assert list(directory.iterdir()) == []
    (record,) = warnings_of(caplog)
    assert "uid 65534" in record.getMessage()
    assert "subdirectory" in record.getMessage()


def test_existing_symlinked_ancestors_are_the_users_layout(tmp_path: Path) -> None:
    (tmp_path / "dotfiles").mkdir()
    (tmp_path / "home-aws").symlink_to(tmp_path / "dotfiles")
    directory = tmp_path / "home-aws" / "webid-provider" / "cache"
    cache = CredentialCache(directory)
    assert cache.write(make_entry())
    created = tmp_path / "dotfiles" / "webid-provider"
    assert stat.S_IMODE(os.stat(created).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(created / "cache").st_mode) == 0o700
    assert cache.read(KEY, now=NOW) == make_entry()


def test_a_symlink_raced_into_a_component_being_created_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another user wins the race between "it does not exist" and mkdir with a symlink.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    real_mkdir = os.mkdir

    def planting_mkdir(path: Any, mode: int = 0o777, *, dir_fd: Optional[int] = None) -> None:
        if os.path.basename(path) == "cache":
            os.symlink(elsewhere, path, dir_fd=dir_fd)
        real_mkdir(path, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "mkdir", planting_mkdir)
    cache = CredentialCache(tmp_path / "parent" / "cache")
    assert cache.write(make_entry()) is False
    assert list(elsewhere.iterdir()) == []


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
    assert cache.entry_keys() == sorted([KEY, other])
    with cache.lock(KEY):
        pass
    assert cache.remove(KEY) is True
    assert not cache.entry_path(KEY).exists()
    assert cache.remove(KEY) is False


@pytest.mark.timeout(30)
def test_remove_never_deletes_a_lock_file_someone_may_hold(
    cache: CredentialCache, tmp_path: Path
) -> None:
    # Issue 11, item 16: deleting a held lock file lets a second process lock a new file.
    cache.write(make_entry())
    with cache.lock(KEY) as held:
        assert held
        assert cache.remove(KEY) is True
        assert cache.lock_path(KEY).exists()
        other = CredentialCache(tmp_path / "cache", lock_timeout_seconds=0.1)
        with other.lock(KEY) as also_held:
            assert also_held is False  # still excluded: the same lock file
    assert cache.lock_path(KEY).exists()


def test_remove_with_a_directory_in_the_way_is_reported_not_raised(
    cache: CredentialCache, caplog: pytest.LogCaptureFixture
) -> None:
    assert cache.enabled
    cache.entry_path(KEY).mkdir()
    assert cache.remove(KEY) is False
    assert cache.entry_path(KEY).is_dir()
    assert KEY in warnings_of(caplog)[0].getMessage()


def test_listing_and_removing_refuse_a_symlinked_directory(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    (target / f"{KEY}.json").write_text(json.dumps(valid_payload()))
    (tmp_path / "cache").symlink_to(target)
    cache = CredentialCache(tmp_path / "cache")
    with pytest.raises(CacheError, match="symlink"):
        cache.entries()
    with pytest.raises(CacheError, match="symlink"):
        cache.remove(KEY)
    assert (target / f"{KEY}.json").exists()


def test_listing_a_missing_directory_is_empty_and_creates_nothing(tmp_path: Path) -> None:
    cache = CredentialCache(tmp_path / "absent")
    assert cache.entries() == []
    assert cache.remove(KEY) is False
    assert not (tmp_path / "absent").exists()


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
    # Issue 11, item 6: these crashed instead of missing.
    "deeply-nested": b"[" * 100_000 + b"]" * 100_000,
    "deeply-nested-field": corrupt(_set(["RoleArn"], "@")).replace(
        b'"@"', b"[" * 50_000 + b"]" * 50_000
    ),
    "expiration-overflows-upward": corrupt(
        _set(["Response", "Credentials", "Expiration"], "9999-12-31T23:59:59-14:00")
    ),
    "expiration-overflows-downward": corrupt(
        _set(["Response", "Credentials", "Expiration"], "0001-01-01T00:00:00+14:00")
    ),
    "obtained-at-overflows": corrupt(_set(["ObtainedAt"], "9999-12-31T23:59:59-14:00")),
    "refresh-at-overflows": corrupt(_set(["RefreshAt"], "0001-01-01T00:00:00+14:00")),
    "timestamp-of-wrong-type": corrupt(_set(["ObtainedAt"], 1767268800)),
    "role-arn-not-text": corrupt(_set(["RoleArn"], {"nested": ["x"]})),
    "number-past-the-digit-limit": corrupt(_set(["Response", "PackedPolicySize"], 7)).replace(
        b": 7", b": " + b"9" * 5000
    ),
    "nul-bytes": json.dumps(valid_payload()).encode().replace(b"{", b"\x00", 1),
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


def garble(rng: random.Random, data: bytes) -> bytes:
    """One random corruption of an entry: flipped, dropped, repeated or truncated bytes."""
    choice = rng.randrange(5)
    position = rng.randrange(len(data))
    if choice == 0:
        return data[:position] + bytes([rng.randrange(256)]) + data[position + 1 :]
    if choice == 1:
        return data[:position] + data[position + rng.randrange(1, 40) :]
    if choice == 2:
        chunk = data[position : position + rng.randrange(1, 20)]
        return data[:position] + chunk * rng.randrange(2, 2000) + data[position:]
    if choice == 3:
        return data[:position]
    return data[:position] + rng.choice([b"[", b"{", b'"', b"-", b"9" * 40]) + data[position:]


def random_json_value(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["int", "str", "time", "none", "bool", "float"] + (
        ["list", "dict"] if depth < 3 else []
    )
    kind = rng.choice(kinds)
    if kind == "int":
        return rng.choice([0, -1, 2**63, -(10**30), rng.randrange(-(10**6), 10**6)])
    if kind == "str":
        return rng.choice(["", "x", "\u0000", "\ud800", "9999-12-31T23:59:59-14:00"])
    if kind == "time":
        return rng.choice(
            ["0001-01-01T00:00:00+14:00", "2026-01-01T13:00:00", "2026-13-45T99:99:99Z", "Z"]
        )
    if kind == "float":
        return rng.choice([1e308, -0.0, 3.5])
    if kind in ("none", "bool"):
        return rng.choice([None, True, False])
    if kind == "list":
        return [random_json_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {
        str(rng.randrange(5)): random_json_value(rng, depth + 1) for _ in range(rng.randrange(3))
    }


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths_of(child, (*prefix, key))
    return found


@pytest.mark.timeout(120)
def test_fuzzed_entries_are_a_miss_or_a_well_formed_entry(cache: CredentialCache) -> None:
    # Whatever the bytes, read() returns None or an entry; it never raises (issue 11, item 6).
    assert cache.enabled
    rng = random.Random(20260101)
    original = json.dumps(valid_payload()).encode()
    path = cache.entry_path(KEY)
    for index in range(1500):
        if index % 2:
            data = original
            for _ in range(rng.randrange(1, 4)):
                data = garble(rng, data)
        else:
            payload = valid_payload()
            target_path = rng.choice(paths_of(payload))
            target = payload
            for part in target_path[:-1]:
                target = target[part]
            target[target_path[-1]] = random_json_value(rng)
            data = json.dumps(payload).encode()
        path.write_bytes(data)
        entry = cache.read(KEY, now=NOW)
        assert entry is None or isinstance(entry.result.expiration, datetime)
        listed = dict(cache.entries())
        assert set(listed) == {path}
    assert cache.write(make_entry()) is True
    assert cache.read(KEY, now=NOW) == make_entry()


def test_a_deeply_nested_key_index_is_a_miss_and_is_replaced(cache: CredentialCache) -> None:
    # 4 KB of "[" makes json.loads raise RecursionError, which is neither OSError nor
    # ValueError: the hint must still be a miss, never a crash of credential loading.
    assert cache.enabled
    path = cache.key_index_path("f" * 64)
    path.write_bytes(b"[" * 4000)
    path.chmod(0o600)
    assert cache.read_key_index("f" * 64) is None
    cache.write_key_index("f" * 64, KEY)
    assert cache.read_key_index("f" * 64) == KEY


@pytest.mark.timeout(10)
def test_fifo_named_like_an_entry_is_a_miss_without_blocking_and_is_replaced(
    cache: CredentialCache, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 11, item 5: open() of a FIFO waits for a writer, forever.
    assert cache.enabled
    os.mkfifo(cache.entry_path(KEY), 0o600)
    assert cache.read(KEY, now=NOW) is None
    assert "FIFO" in warnings_of(caplog)[0].getMessage()
    assert dict(cache.entries()) == {cache.entry_path(KEY): None}
    assert cache.write(make_entry()) is True
    assert cache.entry_path(KEY).is_file()
    assert cache.read(KEY, now=NOW) == make_entry()


@pytest.mark.timeout(10)
@pytest.mark.skipif(not IS_ROOT, reason="needs root to make a device node")
def test_device_named_like_an_entry_is_a_miss_without_being_opened(
    cache: CredentialCache,
) -> None:
    assert cache.enabled
    os.mknod(cache.entry_path(KEY), 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero
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
