"""The fast ``credential-process`` index: a fingerprint of its inputs, mapped to the cache key.

The cache key is computed in one place only, by the full path (settings resolution with
botocore's config loader, then :meth:`~webid_provider._refresh.WebIdentityRefresher.key_material`).
After it has printed credentials, the full path writes an *index record* into the cache
directory: the SHA-256 fingerprint of everything resolution read, mapped to the key, the token
file it used and that token's identity. A later ``credential-process`` run with the same
fingerprint may then skip resolution (and botocore) and read the entry directly; any doubt (no
record, a changed input, an unreadable file) sends it down the full path, which rewrites the
record.

What the fingerprint covers: the package version, the command's arguments exactly as given,
every ``AWS_*`` and ``WEBID_*`` environment variable plus ``HOME`` (names and values), and
the content hashes of the AWS config and shared credentials files. The token is not in it:
the record names the token file and its identity, checked on every run (the kubelet rotates
the token, keeping its identity).

Files read here may be hostile. Config and token files are followed through symlinks (the
kubelet and ConfigMaps mount them as ``..data`` symlinks) but opened without blocking,
checked to be regular files before reading and read up to a bound; index records are read
with :func:`webid_provider._files.read_private_file` (ours, no symlinks).

Standard library only, and only cheap modules of it (no ``pathlib``, ``tempfile`` at import).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple, Optional

from webid_provider._cache_dir import choose_cache_dir
from webid_provider._files import read_private_file, write_private_file

INDEX_VERSION = 1
INDEX_PREFIX = "cp-"
MAX_INDEX_BYTES = 16 * 1024
MAX_CONFIG_BYTES = 1024 * 1024
_KEY_PATTERN = re.compile(r"^arwwi-[0-9a-f]{40}$")
_FINGERPRINT_PATTERN = re.compile(r"^[0-9a-f]{64}$")


class IndexRecord(NamedTuple):
    """What the full path resolved for one fingerprint."""

    key: str
    token_file: str
    token_identity: str
    #: the consumer margin for these settings (0 when sessions are too short for one)
    margin_seconds: float


def read_followed_file(path: str, *, max_bytes: int) -> bytes:
    """Read a config, token or authorization-token file: through symlinks (the kubelet and
    ConfigMaps mount them behind a ``..data`` symlink), whoever owns it, never blocking on a
    FIFO, regular files only, at most ``max_bytes``.

    :raises FileNotFoundError: when it does not exist
    :raises UnsafeFileError: when it is not a regular file or larger than ``max_bytes``
    :raises OSError: for any other failure
    """
    return read_private_file(path, max_bytes=max_bytes, require_owner=False, follow_symlinks=True)


def cache_directory(arguments: Sequence[str], environ: Mapping[str, str]) -> Optional[str]:
    """The cache directory the arguments and environment select, as settings choose it
    (:func:`webid_provider._cache_dir.choose_cache_dir`)."""
    chosen: Optional[str] = None
    for index, argument in enumerate(arguments):
        if argument == "--cache-dir" and index + 1 < len(arguments):
            chosen = arguments[index + 1]
        elif argument.startswith("--cache-dir="):
            chosen = argument.split("=", 1)[1]
    return choose_cache_dir(chosen, environ)[0]


def fingerprint(
    arguments: Sequence[str], environ: Mapping[str, str], version: str
) -> Optional[str]:
    """The fingerprint of everything resolution reads, or ``None`` when a file is unreadable."""
    files: dict[str, Optional[str]] = {}
    for variable, default in (
        ("AWS_CONFIG_FILE", "~/.aws/config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
    ):
        path = _expand_user(environ.get(variable) or default, environ)
        try:
            files[variable] = hashlib.sha256(
                read_followed_file(path, max_bytes=MAX_CONFIG_BYTES)
            ).hexdigest()
        except FileNotFoundError:
            files[variable] = None
        except OSError:
            return None
    material = {
        "index": INDEX_VERSION,
        "version": version,
        "arguments": list(arguments),
        "environment": sorted(
            (name, value)
            for name, value in environ.items()
            if name.startswith(("AWS_", "WEBID_")) or name == "HOME"
        ),
        "files": files,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode("utf-8")).hexdigest()


def index_path(directory: str, fingerprint_hex: str) -> str:
    return os.path.join(directory, f"{INDEX_PREFIX}{fingerprint_hex[:40]}.json")


def read_index(directory: str, fingerprint_hex: str) -> Optional[IndexRecord]:
    """The record for ``fingerprint_hex``, or ``None`` when absent, foreign or malformed."""
    try:
        data = read_private_file(index_path(directory, fingerprint_hex), max_bytes=MAX_INDEX_BYTES)
        document = json.loads(data.decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or document.get("Version") != INDEX_VERSION:
        return None
    key, token_file = document.get("Key"), document.get("TokenFile")
    identity, margin = document.get("TokenIdentity"), document.get("MarginSeconds")
    if (
        document.get("Fingerprint") != fingerprint_hex
        or not isinstance(key, str)
        or not _KEY_PATTERN.match(key)
        or not isinstance(token_file, str)
        or not token_file
        or not isinstance(identity, str)
        or not isinstance(margin, (int, float))
        or isinstance(margin, bool)
        or not 0 <= margin <= 43200
    ):
        return None
    return IndexRecord(
        key=key, token_file=token_file, token_identity=identity, margin_seconds=float(margin)
    )


def write_index(directory: str, fingerprint_hex: str, record: IndexRecord) -> bool:
    """Store ``record`` atomically (0600, temp file + rename); ``False`` when the disk refuses."""
    if not _FINGERPRINT_PATTERN.match(fingerprint_hex) or not _KEY_PATTERN.match(record.key):
        return False
    payload = json.dumps(
        {
            "Version": INDEX_VERSION,
            "Fingerprint": fingerprint_hex,
            "Key": record.key,
            "TokenFile": record.token_file,
            "TokenIdentity": record.token_identity,
            "MarginSeconds": record.margin_seconds,
        },
        sort_keys=True,
    ).encode("utf-8")
    try:
        write_private_file(index_path(directory, fingerprint_hex), payload, durable=False)
    except OSError:
        return False
    return True


def _expand_user(path: str, environ: Mapping[str, str]) -> str:
    # os.path.expanduser reads os.environ; resolution ran with ``environ``, so expand with it.
    if not path.startswith("~"):
        return path
    home = environ.get("HOME")
    if path == "~" or path.startswith("~/"):
        return (home + path[1:]) if home else os.path.expanduser(path)
    return os.path.expanduser(path)
