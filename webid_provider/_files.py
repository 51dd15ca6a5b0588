"""Bounded, symlink-refusing reads of files we own: cache entries, indexes, private state.

Every file under the cache directory may be hostile: a symlink planted by another user, a
FIFO that blocks ``open`` forever, a device, a multi-gigabyte file, or a file someone else
owns. :func:`read_private_file` opens without following symlinks and without blocking
(``O_NOFOLLOW | O_NONBLOCK``), checks the open descriptor with ``fstat`` (a regular file,
owned by us unless told otherwise) before reading a single byte, and reads at most
``max_bytes``.

Standard library only: the fast ``credential-process`` path reads through this module
without importing botocore.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Union

PathLike = Union[str, "os.PathLike[str]"]


class UnsafeFileError(OSError):
    """The file exists but must not be read: a symlink, not a regular file, another user's,
    or larger than allowed."""


def read_private_file(path: PathLike, *, max_bytes: int, require_owner: bool = True) -> bytes:
    """Read a whole file that must be a regular file (and ours, by default).

    :param max_bytes: the largest size accepted; a larger file is refused, not truncated
    :param require_owner: refuse files owned by another user (POSIX only)
    :raises FileNotFoundError: when the file does not exist
    :raises UnsafeFileError: when it exists but is unsafe to read
    :raises OSError: for any other failure (permissions, I/O)
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFileError(errno.ELOOP, "is a symlink", os.fspath(path)) from exc
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFileError(errno.EINVAL, "is not a regular file", os.fspath(path))
        if require_owner and hasattr(os, "getuid") and info.st_uid != os.getuid():
            raise UnsafeFileError(errno.EPERM, "belongs to another user", os.fspath(path))
        if info.st_size > max_bytes:
            raise UnsafeFileError(errno.EFBIG, f"is larger than {max_bytes} bytes", os.fspath(path))
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:
            chunk = os.read(fd, max_bytes + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > max_bytes:  # it grew between fstat and read
        raise UnsafeFileError(errno.EFBIG, f"is larger than {max_bytes} bytes", os.fspath(path))
    return b"".join(chunks)
