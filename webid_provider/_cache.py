"""The host-wide credential cache: file layout, permissions, atomic writes, the lock.

One JSON file per key (:mod:`webid_provider._cache_key` makes the keys, :mod:`webid_provider.
_entries` owns the format) holds the latest STS result (every output field, never the token),
and a lock file beside it is locked with ``filelock`` while one process refreshes, so N
processes on a host make one STS call (DESIGN.md, "Cache"; botocore's ``JSONFileCache`` has no
lock). Keys share 256 lock files (:meth:`CredentialCache.lock_path`).

Security, because the directory is a trust boundary (botocore PR #3753, issue 11):

* the directory is created 0700, or an existing one is trusted, by
  :mod:`webid_provider._cache_dir` (never through a symlink, never another user's or a
  directory others can write to, never chmodded); files are written 0600 via ``mkstemp`` +
  ``fsync`` + ``os.replace``, so readers never see a partial entry (boto/botocore#3213);
* entries are read with :func:`webid_provider._files.read_private_file`: ``O_NOFOLLOW`` and
  ``O_NONBLOCK``, regular files owned by us only, size-capped, so a symlink, a FIFO or a device
  named like an entry is a miss and never a hang;
* any entry that cannot be used (truncated, garbled, wrong shape, naive or overflowing
  timestamps, nested too deep, expired) is a miss and is overwritten: whatever the parse of
  those untrusted bytes trips on, a bad file never breaks credential loading
  (boto/botocore#3106);
* a directory that cannot be used (read-only file system, a file in the way, refused as
  above) degrades to memory with one warning per directory and process;
* the credentials of every entry read are handed to :mod:`webid_provider._redaction`, so
  botocore's DEBUG logs of requests signed with them show no session token.

The lock file is never the cache file (``UnixFileLock`` opens it with ``O_TRUNC``); lock errors
and timeouts make the caller go to STS itself rather than hang. Lock files are never deleted
(``remove`` and ``cache clear`` delete entries only): another process may hold one, and a new
file under the same name would give a second process the "same" lock at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Optional

from webid_provider._cache_dir import (
    check_private_directory,
    prepare_directory,
    unusable_message,
)
from webid_provider._entries import (
    INDEX_PREFIX,
    entry_to_json,
    is_entry_name,
    load_entry,
    read_key_index,
    sweep_expired,
    write_key_index,
)
from webid_provider._entries import (
    CacheEntry as CacheEntry,
)
from webid_provider._errors import CacheError
from webid_provider._files import UnsafeFileError, write_private_file
from webid_provider._redaction import remember_secrets

logger = logging.getLogger(__name__)

DEFAULT_LOCK_TIMEOUT_SECONDS = 30.0
# The lock is tried in growing slices so a waiter notices an entry written by the holder (and
# adopts it) without waiting for the holder to release.
_FIRST_LOCK_WAIT_SECONDS = 0.05
_LONGEST_LOCK_WAIT_SECONDS = 0.5
_warned_directories: set[str] = set()
_warned_lock = threading.Lock()


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
        try:
            entry = load_entry(self.entry_path(key), key)
        except FileNotFoundError:
            return None
        except CacheError as exc:
            logger.warning("ignoring cache entry: %s; it will be replaced", exc)
            return None
        if entry.result.expiration <= now:
            logger.debug("cache entry %s has expired", self.entry_path(key))
            return None
        remember_secrets(entry.result.session_token, entry.result.secret_access_key)
        return entry

    def write(self, entry: CacheEntry) -> bool:
        """Store atomically; returns ``False`` (after a warning) when the disk refuses.

        Expired entries are left for :meth:`sweep_after`, which the writer calls once it has
        released the key's lock: the sweep reads up to hundreds of files.
        """
        if not self._ensure_directory():
            return False
        assert self.directory is not None
        payload = json.dumps(entry_to_json(entry), indent=1, sort_keys=True).encode("utf-8")
        try:
            write_private_file(self.entry_path(entry.key), payload)
        except IsADirectoryError:
            # Something is in the way of this one entry; the directory itself is fine.
            logger.warning("cannot replace cache entry %s: a directory is in the way", entry.key)
            return False
        except OSError as exc:
            self._warn_unusable(
                unusable_message(self.directory, f"cannot write cache entry: {exc.strerror or exc}")
            )
            return False
        return True

    def sweep_after(self, written: CacheEntry) -> None:
        """Remove expired entries after ``written`` was stored (keys bound to exact tokens pile
        up else)."""
        assert self.directory is not None
        removed = sweep_expired(self.directory, written.result.obtained_at, keep=written.key)
        if removed:
            logger.debug("removed %d expired cache entries from %s", removed, self.directory)

    def key_index_path(self, fingerprint: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{INDEX_PREFIX}{fingerprint}.json"

    def read_key_index(self, fingerprint: str) -> Optional[str]:
        """The key the configuration with ``fingerprint`` resolved to last on this host."""
        if not self._ensure_directory():
            return None
        return read_key_index(self.key_index_path(fingerprint))

    def write_key_index(self, fingerprint: str, key: str) -> None:
        """Record that ``fingerprint`` resolves to ``key`` (no write when already so)."""
        if not self._ensure_directory() or self.read_key_index(fingerprint) == key:
            return
        try:
            write_key_index(self.key_index_path(fingerprint), key)
        except OSError as exc:
            logger.debug("cannot write the key index %s: %s", fingerprint, exc.strerror or exc)

    def lock_path(self, key: str) -> Path:
        """The lock file of ``key``: one per 256th of the key space, not one per key.

        Lock files can never be deleted safely (see the module docstring), and keys bound to
        exact tokens are unbounded in number; sharing a lock among keys of the same bucket
        bounds the files at 256, at the price of serialising their rare concurrent refreshes.
        """
        assert self.directory is not None
        return self.directory / f"lock-{key[-40:][:2]}.lock"

    def entries(self) -> list[tuple[Path, Optional[CacheEntry]]]:
        """Every entry file with its parsed entry (``None`` when unusable), for ``cache list``.

        :raises CacheError: when the directory exists but is not one the cache would use
        """
        return [(self.entry_path(key), self._load(key)) for key in self.entry_keys()]

    def entry(self, key: str) -> Optional[CacheEntry]:
        """The parsed entry of ``key`` whatever its age (``None`` when absent or unusable), for
        ``inspect``; :meth:`entries` for one key.

        :raises CacheError: when the directory exists but is not one the cache would use
        """
        if self.directory is None:
            return None
        try:
            check_private_directory(self.directory)
        except FileNotFoundError:
            return None
        except UnsafeFileError as exc:
            raise CacheError(str(exc), path=str(self.directory)) from exc
        return self._load(key)

    def _load(self, key: str) -> Optional[CacheEntry]:
        try:
            return load_entry(self.entry_path(key), key)
        except (CacheError, FileNotFoundError):
            return None

    def entry_keys(self) -> list[str]:
        """The keys of every entry file in the directory (usable or not), sorted.

        :raises CacheError: when the directory exists but is not one the cache would use
        """
        if self.directory is None:
            return []
        try:
            check_private_directory(self.directory)
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        except UnsafeFileError as exc:
            raise CacheError(str(exc), path=str(self.directory)) from exc
        return sorted(name[: -len(".json")] for name in names if is_entry_name(name))

    def remove(self, key: str) -> bool:
        """Delete the entry of ``key``; ``True`` when it existed.

        The lock file stays (see the module docstring). Something in the way that cannot be
        unlinked (a directory) is logged and reported as not removed.

        :raises CacheError: when the directory exists but is not one the cache would use
        """
        if self.directory is None:
            return False
        path = self.entry_path(key)
        try:
            check_private_directory(self.directory)
            os.unlink(path)
        except FileNotFoundError:
            return False
        except UnsafeFileError as exc:
            raise CacheError(str(exc), path=str(self.directory)) from exc
        except OSError as exc:
            logger.warning("cannot remove cache entry %s: %s", path, exc.strerror or exc)
            return False
        return True

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

        lock = filelock.FileLock(str(self.lock_path(key)), mode=0o600)
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
            prepare_directory(self.directory)
            self._usable = True
        except UnsafeFileError as exc:  # refused: the message says why and what to do
            self._warn_unusable(str(exc))
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._warn_unusable(unusable_message(self.directory, reason))
        return bool(self._usable)

    def _warn_unusable(self, message: str) -> None:
        self._usable = False
        key = str(self.directory)
        with _warned_lock:
            if key in _warned_directories:
                return
            _warned_directories.add(key)
        logger.warning("%s; keeping credentials in memory", message)
