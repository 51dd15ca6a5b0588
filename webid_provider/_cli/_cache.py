"""``webid-provider cache list`` and ``cache clear``: look at and empty the shared disk cache.

``list`` shows every entry file of the cache directory with its role, session name, expiration
and state as a new process would judge it (``fresh``; ``refresh due``: inside the refresh
window, so the next process calls STS; ``expired``; ``unreadable``: corrupt, foreign or a
symlink, so it is a miss and will be overwritten). ``clear`` removes the entry the current
settings use (which needs the token, to compute the key), or with ``--all`` every entry in the
directory. Lock files stay: another process may hold one, and deleting it would let a second
process take a "new" lock while the first still holds the old one (filelock's warning).

Both refuse a cache directory the package would refuse (a symlink, another user's, writable by
others) with one error line, and neither can hang on a FIFO named like an entry.

Security: entries hold live credentials; this module prints only their names, roles, session
names and expirations, never the keys.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from webid_provider._cache import CredentialCache
from webid_provider._cli._common import (
    UsageError,
    add_web_identity_options,
    resolve_settings,
)
from webid_provider._cli._inspect import entry_state, human_seconds
from webid_provider._clock import utc_now
from webid_provider._fields import format_timestamp
from webid_provider._policy import RefreshPolicy
from webid_provider._settings import DEFAULT_CACHE_DIR, resolve_cache_dir


def add_parser(subparsers: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "cache",
        parents=parents,
        help="list or clear the shared credential cache",
        description="List or clear the shared credential cache.",
    )
    actions = parser.add_subparsers(dest="cache_command", metavar="{list,clear}")
    actions.required = True
    listing = actions.add_parser(
        "list",
        parents=parents,
        help="show every cache entry and its state",
        description="Show every cache entry: key, role, session, expiration and state.",
    )
    listing.add_argument("--cache-dir", help="cache directory (default: as the package resolves)")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    listing.set_defaults(handler=run_list)
    clear = actions.add_parser(
        "clear",
        parents=parents,
        help="remove the entry of the current settings, or every entry with --all",
        description=(
            "Remove the cache entry the current settings use (the token is read to compute "
            "its key), or every entry with --all. Lock files stay: another process may hold "
            "one. No STS call is made."
        ),
    )
    clear.add_argument("--all", action="store_true", help="remove every entry in the directory")
    add_web_identity_options(clear)
    clear.set_defaults(handler=run_clear)


def _directory(value: Optional[str]) -> Path:
    directory = resolve_cache_dir(value if value is not None else DEFAULT_CACHE_DIR, os.environ)
    if directory is None:
        raise UsageError("no cache directory: give --cache-dir or set WEBID_PROVIDER_CACHE_DIR")
    return directory


def list_entries(directory: Path, policy: RefreshPolicy) -> list[dict[str, Any]]:
    """One row per entry file, sorted by key."""
    now = utc_now()
    rows: list[dict[str, Any]] = []
    for path, entry in CredentialCache(directory).entries():
        row: dict[str, Any] = {"key": path.stem, "path": str(path)}
        if entry is None:
            row.update(role=None, session=None, expiration=None, state="unreadable")
        else:
            result = entry.result
            row.update(
                role=entry.role_arn,
                session=entry.role_session_name,
                expiration=format_timestamp(result.expiration),
                seconds_left=int(result.seconds_left(now)),
                state=entry_state(entry, now, policy),
            )
        rows.append(row)
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    """Aligned columns: KEY ROLE SESSION EXPIRATION STATE."""
    table = [("KEY", "ROLE", "SESSION", "EXPIRATION", "STATE")]
    for row in rows:
        state = row["state"]
        if row.get("seconds_left") is not None and state != "expired":
            state = f"{state} (expires in {human_seconds(row['seconds_left'])})"
        table.append(
            (row["key"], row["role"] or "-", row["session"] or "-", row["expiration"] or "-", state)
        )
    widths = [max(len(line[i]) for line in table) for i in range(4)]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line[:4], widths))
        + "  "
        + line[4]
        + "\n"
        for line in table
    )


def run_list(args: argparse.Namespace) -> int:
    directory = _directory(args.cache_dir)
    rows = list_entries(directory, RefreshPolicy())
    if args.format == "json":
        sys.stdout.write(json.dumps({"directory": str(directory), "entries": rows}, indent=2))
        sys.stdout.write("\n")
    elif rows:
        sys.stdout.write(format_rows(rows))
    else:
        sys.stdout.write(f"no cache entries in {directory}\n")
    return 0


def run_clear(args: argparse.Namespace) -> int:
    if args.all:
        directory = _directory(args.cache_dir)
        cache = CredentialCache(directory)
        removed = sum(1 for key in cache.entry_keys() if cache.remove(key))
        sys.stdout.write(
            f"removed {removed} cache entr{'y' if removed == 1 else 'ies'} from {directory}\n"
        )
        return 0
    _, provider, settings = resolve_settings(args)
    if settings.cache_dir is None:
        raise UsageError("the cache is disabled for these settings (--no-cache); nothing to clear")
    refresher = provider.refresher(settings)
    key = refresher.key_material(refresher.token_source.read_token()).key()
    if CredentialCache(settings.cache_dir).remove(key):
        sys.stdout.write(f"removed cache entry {key} from {settings.cache_dir}\n")
    else:
        sys.stdout.write(f"no cache entry for the current settings in {settings.cache_dir}\n")
    return 0
