"""The host-wide credential cache: keys, file layout, permissions, atomic writes, the lock.

One JSON file per key holds the latest STS result (every output field, never the token) and a
sibling ``.lock`` file is locked with ``filelock`` while one process refreshes, so N processes
on a host make one STS call (DESIGN.md, "Cache"; botocore's ``JSONFileCache`` has no lock).

Security, because the directory is a trust boundary (botocore PR #3753):

* the directory is created 0700 and files are written 0600 via ``mkstemp`` + ``fsync`` +
  ``os.replace``, so readers never see a partial entry (boto/botocore#3213);
* reads use ``O_NOFOLLOW`` and refuse entries that are not regular files owned by us;
* any entry that cannot be used (truncated, garbled, wrong shape, naive timestamps, expired)
  is a miss and is overwritten: a bad file never breaks credential loading (boto/botocore#3106);
* a directory that cannot be used (read-only file system, no HOME, a file in the way, owned by
  someone else) degrades to memory with one warning per directory and process.

The lock file is never the cache file (``UnixFileLock`` opens it with ``O_TRUNC``); lock errors
and timeouts make the caller go to STS itself rather than hang.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Optional

from webid_provider.errors import CacheError
from webid_provider.result import WebIdentityResult, format_timestamp, parse_timestamp

logger = logging.getLogger(__name__)

ENTRY_VERSION = 1
MAX_ENTRY_BYTES = 256 * 1024
DEFAULT_LOCK_TIMEOUT_SECONDS = 30.0
# The lock is tried in growing slices so a waiter notices an entry written by the holder (and
# adopts it) without waiting for the holder to release.
_FIRST_LOCK_WAIT_SECONDS = 0.05
_LONGEST_LOCK_WAIT_SECONDS = 0.5
_warned_directories: set[str] = set()
_warned_lock = threading.Lock()


@dataclass(frozen=True)
class KeyMaterial:
    """Everything that changes what the credentials may do or whom they belong to."""

    role_arn: str
    role_session_name: str
    duration_seconds: Optional[int]
    policy: Optional[str]
    policy_arns: tuple[str, ...]
    provider_id: Optional[str]
    endpoint: str
    token_identity: str

    def key(self) -> str:
        """A file-name-safe digest; the inputs are not recoverable from it."""
        policy = None
        if self.policy is not None:
            try:  # equal policies with different whitespace or key order share an entry
                policy = json.loads(self.policy)
            except ValueError:
                policy = self.policy
        material = {
            "api": "AssumeRoleWithWebIdentity",
            "role_arn": self.role_arn,
            "role_session_name": self.role_session_name,
            "duration_seconds": self.duration_seconds,
            "policy": policy,
            "policy_arns": sorted(self.policy_arns),
            "provider_id": self.provider_id,
            "endpoint": self.endpoint,
            "identity": self.token_identity,
        }
        digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode("utf-8"))
        return "arwwi-" + digest.hexdigest()[:40]


@dataclass(frozen=True)
class CacheEntry:
    """A stored result with the names a person needs to recognise it (``cache list``)."""

    key: str
    result: WebIdentityResult
    role_arn: str
    role_session_name: str
    #: when processes should refresh, drawn once by the writer so a host refreshes together
    refresh_at: Optional[datetime] = None


class CredentialCache:
    """Reads and writes entries in one directory; ``directory=None`` keeps nothing on disk.

    Thread-safe: no state but the directory path and whether it proved unusable.
    """

    def __init__(
        self,
        directory: Optional[Path],
        *,
        lock_timeout_seconds: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
    ) -> None:
        self.directory = directory
        self.lock_timeout_seconds = lock_timeout_seconds
        self._usable: Optional[bool] = None if directory is not None else False

    @property
    def enabled(self) -> bool:
        """Whether entries go to disk (``False`` after the directory proved unusable)."""
        return self._ensure_directory()

    def entry_path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{key}.json"

    def read(self, key: str, *, now: datetime) -> Optional[CacheEntry]:
        """The entry for ``key`` if it is ours, well-formed and not yet expired; else ``None``."""
        if not self._ensure_directory():
            return None
        path = self.entry_path(key)
        try:
            data = _read_private_file(path)
        except FileNotFoundError:
            return None
        except (OSError, CacheError) as exc:
            logger.warning("ignoring cache entry %s: %s", path, exc)
            return None
        try:
            entry = _entry_from_json(key, data)
        except (ValueError, TypeError, KeyError) as exc:
            logger.warning("ignoring unreadable cache entry %s: %s", path, exc)
            return None
        if entry.result.expiration <= now:
            logger.debug("cache entry %s has expired", path)
            return None
        return entry

    def write(self, entry: CacheEntry) -> bool:
        """Store atomically; returns ``False`` (after a warning) when the disk refuses."""
        if not self._ensure_directory():
            return False
        assert self.directory is not None
        payload = json.dumps(_entry_to_json(entry), indent=1, sort_keys=True).encode("utf-8")
        temp_path = None
        try:
            fd, temp_path = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_path, self.entry_path(entry.key))
            temp_path = None
            return True
        except IsADirectoryError:
            # Something is in the way of this one entry; the directory itself is fine.
            logger.warning("cannot replace cache entry %s: a directory is in the way", entry.key)
            return False
        except OSError as exc:
            self._warn_unusable(f"cannot write cache entry: {exc.strerror or exc}")
            return False
        finally:
            if temp_path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temp_path)

    def entries(self) -> list[tuple[Path, Optional[CacheEntry]]]:
        """Every entry file with its parsed entry (``None`` when unusable), for ``cache list``."""
        if self.directory is None or not self.directory.is_dir():
            return []
        found: list[tuple[Path, Optional[CacheEntry]]] = []
        for path in sorted(self.directory.glob("arwwi-*.json")):
            try:
                found.append((path, _entry_from_json(path.stem, _read_private_file(path))))
            except (OSError, CacheError, ValueError, TypeError, KeyError):
                found.append((path, None))
        return found

    def remove(self, key: str) -> bool:
        """Delete an entry and its lock file; ``True`` when the entry existed."""
        if self.directory is None:
            return False
        removed = False
        for path in (self.entry_path(key), self.directory / f"{key}.lock"):
            try:
                path.unlink()
                removed = removed or path.suffix == ".json"
            except FileNotFoundError:
                pass
        return removed

    @contextlib.contextmanager
    def lock(
        self, key: str, *, stop_waiting: Optional[Callable[[], bool]] = None
    ) -> Iterator[bool]:
        """Hold the cross-process lock for ``key``.

        Yields ``True`` when held, ``False`` when not: the lock could not be had within
        :attr:`lock_timeout_seconds` or at all (logged), or ``stop_waiting()`` said the wait is
        pointless (another process has written what we need). The caller then reads the entry
        again and, if it is still missing, refreshes without the lock: a stuck or broken lock
        must never block credentials for longer than the timeout.

        :param stop_waiting: called between short waits; ``True`` ends the wait
        """
        lock = self._acquire(key, stop_waiting)
        if lock is None:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def _acquire(self, key: str, stop_waiting: Optional[Callable[[], bool]]) -> Any:
        """The acquired ``FileLock``, or ``None`` (reason logged) when it could not be had."""
        if not self._ensure_directory():
            return None
        assert self.directory is not None
        import filelock  # deferred: only a refresh that reaches STS needs it

        lock = filelock.FileLock(str(self.directory / f"{key}.lock"), mode=0o600)
        deadline = time.monotonic() + self.lock_timeout_seconds
        wait = _FIRST_LOCK_WAIT_SECONDS
        try:
            while True:
                remaining = deadline - time.monotonic()
                try:
                    lock.acquire(timeout=max(min(wait, remaining), 0), poll_interval=0.01)
                    return lock
                except filelock.Timeout:
                    if remaining <= wait:
                        break
                if stop_waiting is not None and stop_waiting():
                    logger.debug("stopped waiting for the cache lock of %s: entry written", key)
                    return None
                wait = min(wait * 2, _LONGEST_LOCK_WAIT_SECONDS)
        except OSError as exc:
            logger.warning(
                "cannot take the cache lock of %s (%s); calling STS without it", key, exc
            )
            return None
        logger.warning(
            "waited %g s for the cache lock of %s in %s; going on without it",
            self.lock_timeout_seconds,
            key,
            self.directory,
        )
        return None

    def _ensure_directory(self) -> bool:
        if self._usable is not None:
            return self._usable
        assert self.directory is not None
        try:
            self._usable = _prepare_directory(self.directory)
        except (OSError, CacheError) as exc:
            self._usable = False
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._warn_unusable(reason)
        return self._usable

    def _warn_unusable(self, reason: str) -> None:
        self._usable = False
        key = str(self.directory)
        with _warned_lock:
            if key in _warned_directories:
                return
            _warned_directories.add(key)
        logger.warning(
            "credential cache directory %s cannot be used (%s); keeping credentials in memory",
            self.directory,
            reason,
        )


def _prepare_directory(directory: Path) -> bool:
    """Create ``directory`` 0700 or check an existing one is ours and private."""
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except FileExistsError as exc:  # a file (or a broken symlink) in the way
        raise CacheError(f"{directory} exists and is not a directory", path=str(directory)) from exc
    except NotADirectoryError as exc:
        raise CacheError(
            f"a parent of {directory} is not a directory", path=str(directory)
        ) from exc
    info = os.stat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise CacheError(f"{directory} is not a directory", path=str(directory))
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise CacheError(f"{directory} belongs to another user", path=str(directory))
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(directory, 0o700)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OSError(errno.EACCES, "not writable", str(directory))
    return True


def _read_private_file(path: Path) -> bytes:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CacheError(f"{path} is a symlink", path=str(path)) from exc
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise CacheError(f"{path} is not a regular file", path=str(path))
    with os.fdopen(fd, "rb") as handle:
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            raise CacheError(f"{path} belongs to another user", path=str(path))
        data = handle.read(MAX_ENTRY_BYTES + 1)
    if len(data) > MAX_ENTRY_BYTES:
        raise CacheError(f"{path} is too large to be an entry", path=str(path))
    return data


def _entry_to_json(entry: CacheEntry) -> dict[str, Any]:
    return {
        "Version": ENTRY_VERSION,
        "Key": entry.key,
        "RoleArn": entry.role_arn,
        "RoleSessionName": entry.role_session_name,
        "ObtainedAt": format_timestamp(entry.result.obtained_at),
        "RefreshAt": format_timestamp(entry.refresh_at) if entry.refresh_at else None,
        "Response": entry.result.to_response(),
    }


def _entry_from_json(key: str, data: bytes) -> CacheEntry:
    document = json.loads(data.decode("utf-8"))
    if not isinstance(document, dict) or document.get("Version") != ENTRY_VERSION:
        raise ValueError("not a version 1 entry")
    if document.get("Key") != key:
        raise ValueError("entry belongs to another key")
    response = document.get("Response")
    if not isinstance(response, dict):
        raise ValueError("no Response")
    result = WebIdentityResult.from_response(
        response, obtained_at=parse_timestamp(document.get("ObtainedAt"))
    )
    refresh_at = document.get("RefreshAt")
    return CacheEntry(
        key=key,
        result=result,
        role_arn=str(document.get("RoleArn", "")),
        role_session_name=str(document.get("RoleSessionName", "")),
        refresh_at=parse_timestamp(refresh_at) if refresh_at is not None else None,
    )
