"""``credential-process`` from a warm cache, without importing botocore, boto3 or pyjwt.

A ``credential_process`` consumer starts us on every refresh, and with a warm cache 90 % of a
run used to be botocore's import (issue 13: 175 ms against 8 ms for ``python -c pass``). This
path answers from the host cache when it can prove the answer is the one the full path would
give without calling STS:

1. the command is ``credential-process`` with no ``--debug``, ``--help``, ``--version``,
   ``--no-cache`` or ``file://`` argument;
2. the cache directory passes the full path's trust checks (ours, not a symlink, not writable
   by others), and holds the index record for the fingerprint of the arguments, environment
   and AWS config files (:mod:`webid_provider._cli._fingerprint`; written by the full path);
3. the token file it names still holds a token of the recorded identity;
4. the cache entry of the recorded key is ours, well-formed, before its refresh time, and has
   the consumer margin left (:mod:`webid_provider._margin`).

The entry is read by the rules of :mod:`webid_provider._entries`: the fields of the response
with the same functions (:mod:`webid_provider._fields`), the envelope (version, key, names)
restated here because that module imports ``dataclasses`` and, through the package's errors,
botocore, which would cost more than the rest of this path; the unit tests check that both
accept and refuse the same entries and print the same document.

Anything else returns ``None`` and the full path runs (and rewrites the record). Nothing here
raises for bad input or hostile files: doubt is a fallback, never an error.

Security: the token is read only to compute its identity (a hash), and is neither printed nor
kept; the entry's credentials are printed on stdout, which is this command's purpose.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Optional

from webid_provider._cache_dir import check_private_directory
from webid_provider._cli._documents import credential_process_fields, credential_process_text
from webid_provider._cli._fingerprint import (
    cache_directory,
    fingerprint,
    read_followed_file,
    read_index,
)
from webid_provider._fields import (
    OPTIONAL_TEXT_FIELDS,
    account_in_arn,
    optional_text,
    packed_policy_size,
    parse_timestamp,
    required_text,
)
from webid_provider._files import read_private_file
from webid_provider._jwt import (
    MAX_TOKEN_CHARS,
    MAX_TOKEN_FILE_BYTES,
    MIN_TOKEN_CHARS,
    peek_claims,
    token_identity,
)
from webid_provider._margin import jittered

if TYPE_CHECKING:
    import random

COMMAND = "credential-process"
#: arguments whose presence always means the full path
_FULL_PATH_FLAGS = frozenset({"--debug", "-h", "--help", "--version", "--no-cache"})
_MAX_ENTRY_BYTES = 256 * 1024
_ENTRY_VERSION = 1
#: never hand out an entry this close to expiry (the refresher's stop point is at most 60 s)
_MIN_SECONDS_LEFT = 60.0


class CachedCredentials(NamedTuple):
    """The parts of a cache entry the fast path needs."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime
    refresh_at: datetime
    account_id: Optional[str]


def run(arguments: Sequence[str]) -> Optional[int]:
    """Print credentials and return 0, or return ``None`` for the full path to run."""
    try:
        text = credential_process_output(arguments, os.environ)
    except Exception:  # any doubt, even an unforeseen one, is the full path's to report
        return None
    if text is None:
        return None
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        return 0  # the reader went away; the full path would say nothing either
    return 0


def credential_process_output(
    arguments: Sequence[str],
    environ: Mapping[str, str],
    *,
    now: Optional[datetime] = None,
    rng: Optional[random.Random] = None,
) -> Optional[str]:
    """The ``credential-process`` output for ``arguments`` from the cache, or ``None``."""
    if not arguments or arguments[0] != COMMAND:
        return None
    options = list(arguments[1:])
    if any(option in _FULL_PATH_FLAGS or "file://" in option for option in options):
        return None
    directory = cache_directory(options, environ)
    if directory is None or not _trusted_directory(directory):
        return None
    from webid_provider import __version__

    fingerprint_hex = fingerprint(options, environ, __version__)
    if fingerprint_hex is None:
        return None
    record = read_index(directory, fingerprint_hex)
    if record is None or not _token_has_identity(record.token_file, record.token_identity):
        return None
    now = now or datetime.now(timezone.utc)
    entry = read_entry(directory, record.key)
    if entry is None or not now < entry.refresh_at < entry.expiration:
        return None
    seconds_left = (entry.expiration - now).total_seconds()
    if seconds_left <= _MIN_SECONDS_LEFT or seconds_left < jittered(record.margin_seconds, rng):
        return None
    return credential_process_text(
        credential_process_fields(
            entry.access_key_id,
            entry.secret_access_key,
            entry.session_token,
            entry.expiration,
            entry.account_id,
        )
    )


def _token_has_identity(path: str, identity: str) -> bool:
    try:
        token = read_followed_file(path, max_bytes=MAX_TOKEN_FILE_BYTES).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return False
    if not MIN_TOKEN_CHARS <= len(token) <= MAX_TOKEN_CHARS:
        return False
    return token_identity(token, peek_claims(token)) == identity


def _trusted_directory(directory: str) -> bool:
    """Whether the full path would use ``directory``: ours, a real directory, not writable by
    others (:func:`webid_provider._cache_dir.check_private_directory`)."""
    try:
        check_private_directory(Path(directory))
    except OSError:
        return False
    return True


def read_entry(directory: str, key: str) -> Optional[CachedCredentials]:
    """The entry for ``key`` when the full path would accept it and it has a refresh time."""
    try:
        data = read_private_file(os.path.join(directory, f"{key}.json"), max_bytes=_MAX_ENTRY_BYTES)
        document = json.loads(data.decode("utf-8"))
        return _parse_entry(document, key)
    except Exception:  # untrusted bytes: any parse failure is a miss, as the cache's own reader
        return None


def _parse_entry(document: Any, key: str) -> Optional[CachedCredentials]:
    if not isinstance(document, dict) or document.get("Version") != _ENTRY_VERSION:
        return None
    response = document.get("Response")
    if document.get("Key") != key or not isinstance(response, dict):
        return None
    credentials = response.get("Credentials")
    if not isinstance(credentials, dict):
        return None
    if not all(isinstance(document.get(name, ""), str) for name in ("RoleArn", "RoleSessionName")):
        return None
    parse_timestamp(document.get("ObtainedAt"))  # the full path refuses entries without it
    account_id = None
    user = response.get("AssumedRoleUser")
    if isinstance(user, dict):
        required_text(user, "AssumedRoleId")
        account_id = account_in_arn(required_text(user, "Arn"))
    packed_policy_size(response)
    for name in OPTIONAL_TEXT_FIELDS:
        optional_text(response, name)
    return CachedCredentials(
        access_key_id=required_text(credentials, "AccessKeyId"),
        secret_access_key=required_text(credentials, "SecretAccessKey"),
        session_token=required_text(credentials, "SessionToken"),
        expiration=parse_timestamp(credentials.get("Expiration")),
        refresh_at=parse_timestamp(document.get("RefreshAt")),
        account_id=account_id,
    )
