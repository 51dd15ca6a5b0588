"""Public names imported on first use (PEP 562), for the package and ``webid_provider.testing``.

``import webid_provider`` must not import botocore (the fast ``credential-process`` path answers
without it), and ``webid_provider.testing`` must import nothing beyond the standard library
(pytest loads its plugin wherever the package is installed, testing extra or not). So both
packages bind their public names lazily: a module-level ``__getattr__`` imports the defining
module the first time a name is used, through :func:`load`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any


def load(namespace: dict[str, Any], homes: Mapping[str, str], name: str) -> Any:
    """The package attribute ``name``, imported from its home module and kept in ``namespace``
    (the package's globals), so later lookups skip ``__getattr__``.

    :param homes: public name -> the module that defines it
    :raises AttributeError: for a name that is not public
    """
    home = homes.get(name)
    if home is None:
        raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    namespace[name] = value
    return value


def names(namespace: Mapping[str, Any], public: Iterable[str]) -> list[str]:
    """``dir()`` of a lazy package: what is bound already, and every public name."""
    return sorted(set(namespace) | set(public))
