"""A small YAML writer for JSON-shaped data (``--output yaml`` and ``yaml-stream``).

The aws CLI v2 prints YAML through a safe dumper in block style with sorted keys. PyYAML is
not a runtime dependency of this package, and a response is only dicts, lists, strings,
numbers, booleans and nulls, so this module writes that subset itself, in the layout
``yaml.safe_dump(data, default_flow_style=False, sort_keys=True, allow_unicode=True)`` uses
(block mappings indented by two, sequences inside mappings not indented). Strings are written
plain only when a YAML 1.1 reader would read them back as the same string; otherwise they are
single-quoted, or double-quoted with JSON escapes when they hold line breaks or control
characters. Long strings are never folded. ``tests/unit/test_cli.py`` checks the output
against PyYAML and that it loads back to the same data.

Security: this module formats whatever it is given; callers decide what to print.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from typing import Any

# PyYAML's implicit resolvers (YAML 1.1): a plain scalar matching one of these is not a string.
_IMPLICIT = re.compile(
    r"""^(?:
        yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF
      | [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
      | \.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
      | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
      | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)
      | [-+]?0b[0-1_]+ | [-+]?0[0-7_]+ | [-+]?(?:0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+
      | [-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
      | ~ | null | Null | NULL | << | =
      | [0-9]{4}-[0-9]{2}-[0-9]{2}
      | [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}
        (?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?
    )$""",
    re.VERBOSE,
)
_FIRST_CHAR_INDICATORS = "#,[]{}&*!|>'\"%@`"
_LINE_BREAKS = "\n\r\x85\u2028\u2029"


def _needs_double_quotes(text: str) -> bool:
    for char in text:
        if char in _LINE_BREAKS or char == "\t":
            return True
        if not char.isprintable() or char == "\ufeff":
            return True
    return False


def _plain_allowed(text: str) -> bool:
    if not text or _IMPLICIT.match(text):
        return False
    if text.startswith(("---", "...")) or text[0] in _FIRST_CHAR_INDICATORS:
        return False
    if text[0] == " " or text[-1] == " ":
        return False
    if text[0] in "-?:" and (len(text) == 1 or text[1] == " "):
        return False
    return not (": " in text or text.endswith(":") or " #" in text)


def scalar(value: Any) -> str:
    """One scalar in YAML syntax."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value).lower()
        if "." not in text and "e" in text:
            text = text.replace("e", ".0e", 1)
        return text
    if isinstance(value, (datetime, date)):
        value = value.isoformat()
    text = str(value)
    if _needs_double_quotes(text):
        return json.dumps(text, ensure_ascii=False)
    if _plain_allowed(text):
        return text
    return "'" + text.replace("'", "''") + "'"


def _is_block(value: Any) -> bool:
    return isinstance(value, (dict, list)) and bool(value)


def _flow_or_scalar(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return scalar(value)


def _block(node: Any, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(node, dict):
        for key in sorted(node, key=str):
            value = node[key]
            head = f"{pad}{scalar(str(key))}:"
            if isinstance(value, dict) and value:
                lines.append(head)
                lines.extend(_block(value, indent + 2))
            elif isinstance(value, list) and value:
                lines.append(head)
                lines.extend(_block(value, indent))
            else:
                lines.append(f"{head} {_flow_or_scalar(value)}")
        return lines
    for item in node:
        if _is_block(item):
            inner = _block(item, indent + 2)
            lines.append(f"{pad}- {inner[0][indent + 2 :]}")
            lines.extend(inner[1:])
        else:
            lines.append(f"{pad}- {_flow_or_scalar(item)}")
    return lines


def dump(data: Any) -> str:
    """``data`` as a YAML document, ending in a newline."""
    if _is_block(data):
        return "\n".join(_block(data, 0)) + "\n"
    text = _flow_or_scalar(data)
    # A plain scalar at the root is followed by an explicit document end, as PyYAML does.
    if text[:1] in ("'", '"', "{", "["):
        return text + "\n"
    return text + "\n...\n"
