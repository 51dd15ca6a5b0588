"""The ``webid-provider`` command: aws CLI-compatible calls, ``credential_process``, diagnostics.

Subcommands: ``assume-role-with-web-identity`` (``aws sts assume-role-with-web-identity`` with
local validation and identical output), ``credential-process`` and ``env`` (credentials for
other tools through the shared cache), ``inspect`` (settings, token claims and cache state
without an STS call), ``cache list`` / ``cache clear`` and ``demo``.

Exit status: 0 success; 1 STS or runtime failure; 2 bad input (usage, settings, token,
JSON); 130 interrupted. Errors are one line on stderr, ``webid-provider: error: ...``, never a
traceback (unless ``--debug``) and never a token or credential.

Only :func:`main` is public; the console script ``webid-provider`` and ``python -m
webid_provider`` call it.
"""

from __future__ import annotations

from webid_provider.cli._main import main

__all__ = ["main"]
