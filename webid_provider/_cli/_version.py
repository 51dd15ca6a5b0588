"""The ``--version`` line, without importing botocore (issue 16: it imported all of it).

botocore's version comes from its installed distribution's metadata, which is what
``botocore.__version__`` reports, at a fraction of the import's cost.
"""

from __future__ import annotations

from collections.abc import Sequence

PROG = "webid-provider"
_HELP = frozenset({"-h", "--help"})


def version_text() -> str:
    """``webid-provider X (botocore Y, Python Z)``."""
    import platform
    from importlib import metadata

    from webid_provider import __version__

    try:
        botocore_version = metadata.version("botocore")
    except metadata.PackageNotFoundError:
        botocore_version = "not installed"
    return f"{PROG} {__version__} (botocore {botocore_version}, Python {platform.python_version()})"


def version_requested(arguments: Sequence[str]) -> bool:
    """Whether argparse would print the version for ``arguments`` before anything else.

    True when ``--version`` comes before any ``--``, ``-h``/``--help`` and second word: after
    nothing, ``--debug``, or one command name (every subcommand takes ``--version``). Other
    placements go through argparse, which prints the same line.
    """
    words = 0
    for argument in arguments:
        if argument == "--version":
            return True
        if argument == "--" or argument in _HELP:
            return False
        if argument == "--debug":
            continue
        if argument.startswith("-"):
            return False
        words += 1
        if words > 1:
            return False
    return False
