"""YAML for the command line through PyYAML: ``--output yaml`` and ``--cli-input-yaml``.

PyYAML comes with the ``cli`` extra (``pip install 'webid-provider[cli]'``); without it these
options fail before any STS call with a one-line error that names the extra, as httpx's command
line does for ``httpx[cli]``. Output follows the aws CLI v2, which prints YAML through a safe
dumper in block style with sorted keys: ``yaml.safe_dump(data, default_flow_style=False,
sort_keys=True, allow_unicode=True)``.

Security: a YAML error quotes the offending line, which may hold the token; only the position
and the kind of problem are reported.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Optional

from webid_provider._cli._common import UsageError

INSTALL_HINT = "pip install 'webid-provider[cli]' (from a checkout: pip install '.[cli]')"


def require(option: str, *, instead: Optional[str] = None) -> ModuleType:
    """PyYAML, for ``option``.

    :param instead: what to use without PyYAML, for the message
    :raises UsageError: naming the option and the extra when PyYAML is not installed
    """
    try:
        import yaml
    except ImportError as exc:
        alternative = f", or use {instead}" if instead else ""
        raise UsageError(f"{option} needs PyYAML: {INSTALL_HINT}{alternative}") from exc
    return yaml


def dump(data: Any) -> str:
    """``data`` as the aws CLI v2 prints it with ``--output yaml``, ending in a newline."""
    yaml = require("--output yaml")
    text: str = yaml.safe_dump(data, default_flow_style=False, sort_keys=True, allow_unicode=True)
    return text


def load(text: str, option: str) -> Any:
    """Parse a YAML input document.

    :raises UsageError: for invalid YAML (position and problem only), or without PyYAML
    """
    yaml = require(f"argument {option}", instead="--cli-input-json")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise UsageError(f"argument {option}: invalid YAML: {problem}{where}") from exc
