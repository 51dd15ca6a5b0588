"""Choosing the cache directory, creating it, and deciding whether an existing one may be trusted.

The choice (:func:`choose_cache_dir`): the ``cache_dir`` argument (``--cache-dir``), else
``WEBID_PROVIDER_CACHE_DIR``, else ``~/.aws/webid-provider/cache`` (``~`` is ``HOME``, else the
passwd entry's home). It sits beside the aws CLI's own cache but in its own directory, because
our entries are keyed differently and must never be read by botocore.

The directory is a trust boundary: whoever can write to it can plant, delete or swap entries,
and a symlink in its place redirects our writes (issue 11: a root process followed one and
chmodded a root-owned 0755 directory to 0700). So:

* missing components are created 0700, one at a time relative to an open parent, and each is
  reopened with ``O_NOFOLLOW``: a symlink planted between "it does not exist" and ``mkdir`` is
  refused, never followed. Existing ancestors are the user's layout (``~/.aws`` may be a
  symlink into a dotfiles checkout) and are followed;
* an existing directory is used only when it is a real directory (not a symlink), owned by us,
  and not writable by group or others; anything else is refused with a reason that names the
  fix. Read access for others (``mkdir`` under umask 022 gives 0755) is accepted as it is:
  entries and lock files are 0600 and named by hashes, so a listing reveals only that entries
  exist;
* nothing is ever chmodded: we cannot tell whether we created an existing directory, and
  tightening a shared one (a home, ``/var/lib``, a team directory) would break its other users.
  Refusing costs a ``chmod 700`` or a subdirectory, which the message names.

Standard library only (with :mod:`webid_provider._files`), so the botocore-free
``credential-process`` path makes the same choice and applies the same checks.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

from webid_provider._files import UnsafeFileError, current_uid, describe_file_type

ENV_CACHE_DIR = "WEBID_PROVIDER_CACHE_DIR"
_DIRECTORY_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def choose_cache_dir(
    argument: Optional[str], environ: Mapping[str, str]
) -> tuple[Optional[str], str]:
    """The cache directory the argument, the environment or the default selects, and where the
    choice came from; ``None`` when the default is wanted but there is no home directory.

    :param argument: the ``cache_dir`` option or ``--cache-dir``, ``None`` when not given
    :param environ: where ``WEBID_PROVIDER_CACHE_DIR`` is looked up
    """
    if argument is not None:
        return os.path.expanduser(argument), "argument"
    if environ.get(ENV_CACHE_DIR):
        return os.path.expanduser(environ[ENV_CACHE_DIR]), f"env {ENV_CACHE_DIR}"
    home = home_directory()
    if home is None:
        return None, "default (no home: memory only)"
    return os.path.join(home, ".aws", "webid-provider", "cache"), "default"


def home_directory() -> Optional[str]:
    """``HOME``, else the passwd entry's home, as ``~`` would; ``None`` when there is neither
    (containers often run a uid without a passwd entry and without ``HOME``)."""
    home = os.environ.get("HOME")
    if home:
        return home
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_dir or None
    except (ImportError, KeyError):
        return None


def unusable_message(directory: Optional[Path], reason: str) -> str:
    """The warning's text: which directory, and why it cannot be used."""
    return f"credential cache directory {directory} cannot be used ({reason})"


def _refused(directory: Path, reason: str) -> UnsafeFileError:
    return UnsafeFileError(unusable_message(directory, reason), path=str(directory))


def prepare_directory(directory: Path) -> None:
    """Create what is missing of ``directory`` 0700, then check the directory is ours and private.

    :raises UnsafeFileError: for a directory the cache must not use, saying why and what to do
    :raises OSError: when the file system refuses
    """
    _create_missing_directories(directory)
    check_private_directory(directory)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OSError(errno.EACCES, "not writable", str(directory))


def _create_missing_directories(directory: Path) -> None:
    """``mkdir -p`` that never follows a symlink through a component it creates.

    Existing ancestors are the user's layout (``~/.aws`` may well be a symlink into a dotfiles
    checkout) and are followed; every missing component is made 0700 relative to its open
    parent and reopened with ``O_NOFOLLOW``, so a symlink raced in by someone else is refused.
    """
    missing: list[str] = []
    existing = directory
    while not os.path.lexists(existing) and existing.parent != existing:
        missing.append(existing.name)
        existing = existing.parent
    if not missing:
        return
    try:
        fd = os.open(existing, _DIRECTORY_FLAGS)
    except NotADirectoryError as exc:
        raise _refused(directory, f"{existing} is not a directory") from exc
    try:
        for name in reversed(missing):
            with contextlib.suppress(FileExistsError):  # made meanwhile: checked just below
                os.mkdir(name, 0o700, dir_fd=fd)
            try:
                child = os.open(name, _DIRECTORY_FLAGS | _NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _refused(directory, f"{name} is a symlink or not a directory") from exc
                raise
            os.close(fd)
            fd = child
    finally:
        os.close(fd)


def check_private_directory(directory: Path) -> None:
    """Refuse a directory the cache must not use; never changes anything.

    :raises FileNotFoundError: when it does not exist
    :raises UnsafeFileError: for a symlink, a non-directory, another user's directory, or one
        that other users may write to
    """
    info = os.lstat(directory)
    if stat.S_ISLNK(info.st_mode):
        raise _refused(directory, "it is a symlink; give the directory it points to")
    if not stat.S_ISDIR(info.st_mode):
        raise _refused(directory, f"it is {describe_file_type(info.st_mode)}")
    fd = os.open(directory, _DIRECTORY_FLAGS | _NOFOLLOW)
    try:
        info = os.fstat(fd)  # what was opened decides, not what the path showed before
    finally:
        os.close(fd)
    uid = current_uid()
    if uid >= 0 and info.st_uid != uid:
        raise _refused(
            directory,
            f"it belongs to uid {info.st_uid}, not to uid {uid}; point the cache at a new "
            "subdirectory, which is created 0700",
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022:
        raise _refused(
            directory,
            f"other users can write to it (mode {mode:04o}); chmod 700 it, or point the "
            "cache at a new subdirectory, which is created 0700",
        )
