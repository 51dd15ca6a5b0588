"""Reading small files that may be hostile: symlinks, FIFOs, devices, other users' files, huge.

Cache entries and token files sit in places other processes can write to, so a read must never
hang (a FIFO blocks ``open()`` until a writer appears), never follow a planted symlink where the
caller did not ask for it, never read a device or another user's file as if it were ours, and
never pull an unbounded amount into memory (issue 11, items 5 and 9).

How: a ``stat`` before opening turns away directories, FIFOs, sockets and devices without
opening them (opening a device can have side effects); the file is then opened with
``O_NOFOLLOW`` (unless symlinks are wanted), ``O_NONBLOCK`` (so a FIFO swapped in after the
check still cannot block) and ``O_CLOEXEC``, and ``fstat`` of the open descriptor decides: only
what was actually opened is trusted. Reads stop one byte past the limit.

This module imports only the standard library: the botocore-free ``credential-process`` path
uses it too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from typing import Union

PathArg = Union[str, "os.PathLike[str]"]

_READ_CHUNK_BYTES = 64 * 1024


class UnsafeFileError(OSError):
    """The path exists but must not be read: a symlink, not a regular file (FIFO, device,
    directory), owned by another user, or larger than allowed. str() gives the reason."""

    def __init__(self, reason: str, *, path: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path

    def __str__(self) -> str:
        return self.reason

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_unsafe, (self.reason, self.path))


def _rebuild_unsafe(reason: str, path: str) -> UnsafeFileError:
    return UnsafeFileError(reason, path=path)


def describe_file_type(mode: int) -> str:
    """What a non-regular file is, in words: ``a directory``, ``a FIFO``..."""
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISLNK(mode):
        return "a symlink"
    return "not a regular file"


def current_uid() -> int:
    """The uid files we create belong to (the effective one); -1 where there are no uids."""
    return os.geteuid() if hasattr(os, "geteuid") else -1


def read_private_file(
    path: PathArg,
    *,
    max_bytes: int,
    require_owner: bool = True,
    follow_symlinks: bool = False,
) -> bytes:
    """Read a whole small file safely: O_RDONLY|O_NOFOLLOW|O_NONBLOCK (and O_CLOEXEC), fstat
    before reading, regular files only, owner check (our uid) when require_owner, at most
    max_bytes (more -> UnsafeFileError). Raises FileNotFoundError when absent,
    UnsafeFileError when unsafe, OSError otherwise. Never blocks on a FIFO.

    :param follow_symlinks: follow a symlink to a regular file (token files: the kubelet swaps
        a ``..data`` symlink); without it a symlink is refused
    """
    name = os.fspath(path)
    uid = current_uid() if require_owner else -1
    # Turn away what must not even be opened; the fstat below is still what decides.
    before = os.stat(name) if follow_symlinks else os.lstat(name)
    _check(name, before, max_bytes=max_bytes, uid=uid)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(name, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise UnsafeFileError(f"{name} is a symlink", path=name) from exc
        if exc.errno == errno.ENXIO:  # a socket, or a device without its driver
            raise UnsafeFileError(f"{name} is not a regular file", path=name) from exc
        raise
    try:
        _check(name, os.fstat(fd), max_bytes=max_bytes, uid=uid)
        chunks: list[bytes] = []
        remaining = max_bytes + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, _READ_CHUNK_BYTES))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:  # it grew after the fstat
        raise UnsafeFileError(f"{name} is larger than {max_bytes} bytes", path=name)
    return data


def _check(name: str, info: os.stat_result, *, max_bytes: int, uid: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFileError(f"{name} is {describe_file_type(info.st_mode)}", path=name)
    if uid >= 0 and info.st_uid != uid:
        raise UnsafeFileError(
            f"{name} belongs to another user (uid {info.st_uid}, not {uid})", path=name
        )
    if info.st_size > max_bytes:
        raise UnsafeFileError(f"{name} is larger than {max_bytes} bytes", path=name)


def write_private_file(
    path: PathArg, data: bytes, *, temp_prefix: str = ".tmp-", durable: bool = True
) -> None:
    """Replace ``path`` atomically with ``data``, mode 0600.

    ``mkstemp`` in the target directory (so the file is born 0600 and never readable by
    others), ``fsync``, then ``os.replace``: readers see the old file or the new one, never a
    partial write (boto/botocore#3213). A symlink at ``path`` is replaced, not followed.

    :param durable: ``fsync`` before the rename, so a crash cannot leave an empty file under
        the name; hints that are merely re-derived when lost skip it (it costs milliseconds)

    :raises OSError: when the directory refuses (the temporary file is removed)
    """
    import tempfile  # deferred: only writers need it

    directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    fd, temp_path = tempfile.mkstemp(dir=directory, prefix=temp_prefix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(temp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_path)
        raise
