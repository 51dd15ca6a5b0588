"""The ``webid-provider`` command: aws CLI-compatible calls, ``credential_process``, diagnostics.

Subcommands: ``assume-role-with-web-identity`` (``aws sts assume-role-with-web-identity`` with
local validation and identical output), ``credential-process`` and ``env`` (credentials for
other tools through the shared cache), ``exec`` and ``serve`` (a container-credentials
endpoint for any SDK), ``inspect`` (settings, token claims and cache state without an STS
call), ``cache list`` / ``cache clear`` and ``demo``.

Exit status: 0 success; 1 STS or runtime failure; 2 bad input (usage, settings, token,
JSON); 130 interrupted; ``exec`` exits with its command's status. Errors are one line on
stderr, ``webid-provider: error: ...``, never a traceback (unless ``--debug``) and never a
token or credential.

Startup: :func:`main` answers ``--version`` and a warm-cache ``credential-process`` (see
:mod:`webid_provider._cli._fast`) before importing argparse's parser and botocore, because
``credential_process`` consumers start this command on every refresh.

Only :func:`main` is public; the console script ``webid-provider`` and ``python -m
webid_provider`` call it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Optional

__all__ = ["main"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``webid-provider`` command.

    :param argv: the arguments after the program name (default: ``sys.argv[1:]``)
    :returns: the exit status
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    from webid_provider._cli import _version

    if _version.version_requested(arguments):
        sys.stdout.write(_version.version_text() + "\n")
        sys.stdout.flush()
        return 0
    from webid_provider._cli import _fast

    status = _fast.run(arguments)
    if status is not None:
        return status
    from webid_provider._cli import _main

    return _main.main(arguments)
