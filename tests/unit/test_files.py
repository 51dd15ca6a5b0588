"""Reading hostile files: symlinks, FIFOs, devices, directories, other users' files, huge ones."""

from __future__ import annotations

import ast
import os
import pickle
import socket
import sys
from pathlib import Path
from typing import Union

import pytest

import webid_provider._files as files_module
from webid_provider._files import UnsafeFileError, read_private_file

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
PathInput = Union[str, Path]


@pytest.mark.parametrize("path_type", [str, Path])
def test_reads_a_regular_file_of_ours(tmp_path: Path, path_type: type[PathInput]) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"content")
    assert read_private_file(path_type(path), max_bytes=7) == b"content"


def test_absent_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_private_file(tmp_path / "absent", max_bytes=10)


def test_larger_than_allowed_is_unsafe_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 11)
    with pytest.raises(UnsafeFileError) as info:
        read_private_file(path, max_bytes=10)
    assert str(info.value) == f"{path} is larger than 10 bytes"
    assert info.value.path == str(path)


def test_symlink_is_refused_unless_followed(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"content")
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(UnsafeFileError, match="is a symlink"):
        read_private_file(link, max_bytes=100)
    assert read_private_file(link, max_bytes=100, follow_symlinks=True) == b"content"


@pytest.mark.timeout(10)
@pytest.mark.parametrize("follow_symlinks", [False, True])
def test_fifo_is_refused_without_blocking(tmp_path: Path, follow_symlinks: bool) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UnsafeFileError, match="is a FIFO"):
        read_private_file(fifo, max_bytes=100, follow_symlinks=follow_symlinks)


@pytest.mark.timeout(10)
def test_symlink_to_a_fifo_is_refused_when_followed(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "link").symlink_to(fifo)
    with pytest.raises(UnsafeFileError, match="is a FIFO"):
        read_private_file(tmp_path / "link", max_bytes=100, follow_symlinks=True)


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafeFileError, match="is a directory"):
        read_private_file(tmp_path, max_bytes=100, follow_symlinks=True)


@pytest.mark.timeout(10)
def test_device_is_refused_without_reading(tmp_path: Path) -> None:
    (tmp_path / "zero").symlink_to("/dev/zero")
    with pytest.raises(UnsafeFileError, match="is a device"):
        read_private_file(tmp_path / "zero", max_bytes=100, follow_symlinks=True)


@pytest.mark.timeout(10)
def test_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        with pytest.raises(UnsafeFileError, match="is a socket"):
            read_private_file(path, max_bytes=100)


@pytest.mark.skipif(not IS_ROOT, reason="needs root to chown")
def test_another_users_file_is_refused_unless_ownership_is_not_required(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"content")
    os.chown(path, 65534, 65534)
    with pytest.raises(UnsafeFileError, match="belongs to another user"):
        read_private_file(path, max_bytes=100)
    assert read_private_file(path, max_bytes=100, require_owner=False) == b"content"


def test_unsafe_file_error_is_an_os_error_that_pickles() -> None:
    error = UnsafeFileError("/x is a FIFO (named pipe)", path="/x")
    assert isinstance(error, OSError)
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is UnsafeFileError
    assert (str(clone), clone.path) == ("/x is a FIFO (named pipe)", "/x")


@pytest.mark.skipif(sys.version_info < (3, 10), reason="sys.stdlib_module_names is 3.10+")
def test_the_module_imports_only_the_standard_library() -> None:
    # The botocore-free credential-process path reads cache files through this module.
    tree = ast.parse(Path(files_module.__file__).read_text("utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 0
    }
    assert imported
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}
