"""A token file laid out and rotated the way the kubelet does it.

Kubernetes mounts a projected service-account token through an ``AtomicWriter`` layout::

    <dir>/..2024_05_01_12_00_00.123456/token     the real file, in a timestamped directory
    <dir>/..data -> ..2024_05_01_12_00_00.123456 one symlink, swapped atomically on rotation
    <dir>/token  -> ..data/token                 the path in AWS_WEB_IDENTITY_TOKEN_FILE

Rotation writes a new timestamped directory, points a temporary symlink at it and renames
that over ``..data`` (``rename(2)`` replaces a symlink atomically), then deletes the old
directory. A reader that opened ``<dir>/token`` before the swap keeps reading the old file;
one that opens it after reads the new token; none sees a half-written file. Code that caches
the resolved path, or the token, goes stale exactly as it would in a pod, which is what the
tests built on :class:`KubeletTokenFile` check.

Security: token files are created with mode 0600 and the token is never kept in memory here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Optional, Union

__all__ = ["KubeletTokenFile"]

_DATA = "..data"
_TOKEN = "token"


class KubeletTokenFile:
    """A projected service-account token volume in ``directory``.

    Not thread-safe: one test drives the rotations.

    :param directory: the volume's mount point; created if missing
    :param token: the first token to write
    :param filename: the token file's name in ``directory`` (the kubelet's is ``token``)
    :raises ValueError: for a file name that is not a plain name
    """

    def __init__(self, directory: Union[str, Path], token: str, *, filename: str = _TOKEN) -> None:
        if not filename or filename in (".", "..", _DATA) or "/" in filename:
            raise ValueError(f"filename must be a plain file name, not {filename!r}")
        self._directory = Path(directory)
        self._filename = filename
        self._directory.mkdir(parents=True, exist_ok=True)
        self._current: Optional[Path] = None
        self.rotate(token)
        link = self._directory / filename
        if not link.is_symlink():
            os.symlink(os.path.join(_DATA, filename), link)

    def __repr__(self) -> str:
        return f"KubeletTokenFile({str(self._directory)!r})"

    @property
    def directory(self) -> Path:
        """The volume's mount point."""
        return self._directory

    @property
    def path(self) -> Path:
        """``directory/filename``: the path to put in ``AWS_WEB_IDENTITY_TOKEN_FILE``."""
        return self._directory / self._filename

    @property
    def data_dir(self) -> Path:
        """The timestamped directory ``..data`` points at now."""
        assert self._current is not None
        return self._current

    def rotate(self, token: str) -> None:
        """Publish ``token``: new timestamped directory, atomic ``..data`` swap, old one removed.

        :param token: the new file content, written as is (an empty string simulates the
            empty read some SDKs saw during rotation)
        """
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
        new_dir = Path(tempfile.mkdtemp(prefix=stamp, dir=self._directory))
        fd = os.open(new_dir / self._filename, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(token)
            handle.flush()
            os.fsync(handle.fileno())
        new_dir.chmod(0o755)
        tmp_link = self._directory / f"{_DATA}_tmp"
        if tmp_link.is_symlink():
            tmp_link.unlink()
        os.symlink(new_dir.name, tmp_link)
        os.replace(tmp_link, self._directory / _DATA)
        old, self._current = self._current, new_dir
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
