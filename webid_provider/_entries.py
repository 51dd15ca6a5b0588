"""The file format of cache entries and key-index records, and the sweep of expired entries.

An entry is one JSON document per cache key: the STS response (every output field, never the
token), when it was obtained, the refresh time its writer drew, and the role and session names
a person needs to recognise it (``cache list``). A key-index record maps the fingerprint of a
configuration whose token source rotates one identity (a file, a command) to the key it last
resolved to, so a new process can find its entry while the token source is down.

Every read goes through :func:`webid_provider._files.read_private_file` and treats whatever
the parse of those untrusted bytes trips on (truncation, nesting, overflowing timestamps,
wrong shapes) as unusable, never as a crash (issue 11).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

from webid_provider._cache_key import ENTRY_PREFIX
from webid_provider._errors import CacheError
from webid_provider._fields import format_timestamp, parse_timestamp
from webid_provider._files import UnsafeFileError, read_private_file, write_private_file
from webid_provider._redaction import redact_token_shaped
from webid_provider._result import WebIdentityResult

ENTRY_VERSION = 1
INDEX_VERSION = 1
MAX_ENTRY_BYTES = 256 * 1024
MAX_INDEX_BYTES = 4096
KEY_PATTERN = re.compile(r"^arwwi-[0-9a-f]{40}$")
INDEX_PREFIX = "ix-"
#: at most this many entries are read by one sweep (a sweep follows each write)
SWEEP_LIMIT = 256


@dataclass(frozen=True)
class CacheEntry:
    """A stored result with the names a person needs to recognise it (``cache list``)."""

    key: str
    result: WebIdentityResult
    role_arn: str
    role_session_name: str
    #: when processes should refresh, drawn once by the writer so a host refreshes together
    refresh_at: Optional[datetime] = None


def is_entry_name(name: str) -> bool:
    """Whether ``name`` is a cache entry's file name (``<key>.json``)."""
    return name.startswith(ENTRY_PREFIX) and name.endswith(".json")


def load_entry(path: Path, key: str) -> CacheEntry:
    """Read and parse one entry file.

    :raises FileNotFoundError: when there is none
    :raises CacheError: when it cannot be used, saying why (never quoting its content)
    """
    try:
        data = read_private_file(path, max_bytes=MAX_ENTRY_BYTES)
    except FileNotFoundError:
        raise
    except UnsafeFileError as exc:
        raise CacheError(str(exc), path=str(path)) from exc
    except OSError as exc:
        raise CacheError(f"{path} cannot be read: {exc.strerror or exc}", path=str(path)) from exc
    try:
        return entry_from_json(key, data)
    except Exception as exc:
        # Untrusted bytes: RecursionError from nesting, OverflowError from timestamps at the
        # ends of the calendar, and whatever else the parse trips on are all a miss (issue 11).
        detail = redact_token_shaped(str(exc))[:200]
        raise CacheError(
            f"{path} is not a usable entry ({type(exc).__name__}: {detail})", path=str(path)
        ) from exc


def entry_to_json(entry: CacheEntry) -> dict[str, Any]:
    return {
        "Version": ENTRY_VERSION,
        "Key": entry.key,
        "RoleArn": entry.role_arn,
        "RoleSessionName": entry.role_session_name,
        "ObtainedAt": format_timestamp(entry.result.obtained_at),
        "RefreshAt": format_timestamp(entry.refresh_at) if entry.refresh_at else None,
        "Response": entry.result.to_response(),
    }


def entry_from_json(key: str, data: bytes) -> CacheEntry:
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
        role_arn=_name(document, "RoleArn"),
        role_session_name=_name(document, "RoleSessionName"),
        refresh_at=parse_timestamp(refresh_at) if refresh_at is not None else None,
    )


def _name(document: dict[str, Any], field: str) -> str:
    value = document.get(field, "")
    if not isinstance(value, str):
        raise ValueError(f"{field} is not a string")
    return value


def read_key_index(path: Path) -> Optional[str]:
    """The key a key-index record names, or ``None`` when absent or unusable."""
    try:
        document = json.loads(read_private_file(path, max_bytes=MAX_INDEX_BYTES))
    except (OSError, ValueError, RecursionError):  # untrusted bytes: nesting too deep
        return None
    if not isinstance(document, dict) or document.get("Version") != INDEX_VERSION:
        return None
    key = document.get("Key")
    return key if isinstance(key, str) and KEY_PATTERN.match(key) else None


def write_key_index(path: Path, key: str) -> None:
    """Store a key-index record atomically, 0600, without ``fsync``: a record lost in a crash is
    written again by the next process that reads the token.

    :raises OSError: when the directory refuses
    """
    payload = json.dumps({"Version": INDEX_VERSION, "Key": key}, sort_keys=True)
    write_private_file(path, payload.encode("utf-8"), durable=False)


def sweep_expired(directory: Path, now: datetime, *, keep: str) -> int:
    """Delete entries that have expired; returns how many.

    Keys bound to exact tokens (strings, callables: a service passing its callers' tokens)
    would otherwise pile up one entry per token. Unreadable entries are left to be overwritten;
    lock files are never deleted (another process may hold one). At most
    :data:`SWEEP_LIMIT` entries are read per sweep.
    """
    removed = 0
    try:
        names = [n for n in os.listdir(directory) if is_entry_name(n)]
    except OSError:
        return 0
    for name in names[:SWEEP_LIMIT]:
        key = name[: -len(".json")]
        if key == keep or not KEY_PATTERN.match(key):
            continue
        path = directory / name
        try:
            entry = load_entry(path, key)
        except (FileNotFoundError, CacheError):
            continue
        if entry.result.expiration <= now:
            try:
                os.unlink(path)
                removed += 1
            except OSError:
                continue
    return removed
