"""Telling a missing ``testing`` extra apart from a real import error.

The pytest plugin and the ``demo``/``emulator`` commands load everywhere the package is
installed, but their work needs ``moto`` and ``cryptography`` from the
``webid-provider[testing]`` extra. When one of those is missing the user should read the
install command, not a traceback; any other ``ImportError`` is a bug and propagates.
Standard library only: this module must import wherever the package does.
"""

from __future__ import annotations

__all__ = ["INSTALL_HINT", "is_missing_extra"]

#: The command that installs what the test helpers need (the package is installed from a
#: checkout until it is published).
INSTALL_HINT = "pip install 'webid-provider[testing]' (from a checkout: pip install '.[testing]')"

# Top-level modules that come with the testing extra (moto[server] brings werkzeug and flask).
_EXTRA_MODULES = frozenset({"moto", "cryptography", "werkzeug", "flask", "pytest"})


def is_missing_extra(exc: ImportError) -> bool:
    """Whether ``exc`` says a module of the ``testing`` extra is not installed."""
    name = getattr(exc, "name", None) or ""
    return name.split(".")[0] in _EXTRA_MODULES
