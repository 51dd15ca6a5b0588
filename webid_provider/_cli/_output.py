"""Print a response the way the aws CLI does: json, text, table, yaml, yaml-stream, ``--query``.

``json``, ``text`` and ``table`` follow awscli v1 (``awscli/formatter.py``, ``awscli/text.py``,
``awscli/table.py``) rule for rule: ``ResponseMetadata`` is dropped, the JMESPath ``--query``
is applied, JSON is indented by 4 with non-ASCII kept, text rows are tab-separated with scalar
keys sorted and nested keys as upper-cased row prefixes. ``yaml`` and ``yaml-stream`` follow
awscli v2 (block YAML with sorted keys; ``yaml-stream`` wraps the document in a list). Timestamps
arrive as the strings STS sent (see :mod:`webid_provider._cli._assume`), so they print as the aws
CLI prints them; a ``datetime`` that reaches a formatter is printed in ISO 8601 like awscli's
JSON encoder does.

awscli is a test-only dependency: nothing here imports it; the unit tests compare both.

Security: formatters print what they are given. The ``assume-role-with-web-identity`` command
prints credentials on purpose (that is its job, as for the aws CLI); nothing else here does.
"""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any, Optional, TextIO

import jmespath
from jmespath.exceptions import JMESPathError

from webid_provider._cli import _table, _yaml
from webid_provider._cli._common import UsageError

OUTPUT_FORMATS = ("json", "text", "table", "yaml", "yaml-stream")
COLOR_CHOICES = ("auto", "on", "off")


class Query:
    """A compiled ``--query`` expression."""

    def __init__(self, expression: str) -> None:
        try:
            self._parsed = jmespath.compile(expression)
        except JMESPathError as exc:
            raise UsageError(f"argument --query: invalid JMESPath expression: {exc}") from exc
        self.expression = expression

    def search(self, data: Any) -> Any:
        return self._parsed.search(data)


def json_default(value: object) -> Any:
    """awscli's JSON encoder: datetimes in ISO 8601, bytes in base64."""
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("utf-8")
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def format_text(data: Any, stream: TextIO) -> None:
    """awscli's text output."""
    _text(data, stream, None, None)


def _text(item: Any, stream: TextIO, identifier: Optional[str], keys: Optional[list[str]]) -> None:
    if isinstance(item, dict):
        _text_dict(item, stream, identifier, keys)
    elif isinstance(item, list):
        _text_list(item, stream, identifier)
    else:
        stream.write(f"{item}\n")


def _text_list(items: list[Any], stream: TextIO, identifier: Optional[str]) -> None:
    if not items:
        return
    if any(isinstance(el, dict) for el in items):
        all_keys = sorted(
            {
                key
                for el in items
                if isinstance(el, dict)
                for key, value in el.items()
                if not isinstance(value, (dict, list))
            }
        )
        for element in items:
            _text(element, stream, identifier, all_keys)
    elif any(isinstance(el, list) for el in items):
        scalars = [el for el in items if not isinstance(el, (list, dict))]
        others = [el for el in items if isinstance(el, (list, dict))]
        if scalars:
            _text_scalar_list(scalars, stream, identifier)
        for other in others:
            _text(other, stream, identifier, None)
    else:
        _text_scalar_list(items, stream, identifier)


def _text_scalar_list(items: list[Any], stream: TextIO, identifier: Optional[str]) -> None:
    if identifier is not None:
        for item in items:
            stream.write(f"{identifier.upper()}\t{item}\n")
    else:
        stream.write("\t".join(str(item) for item in items) + "\n")


def _text_dict(
    item: dict[str, Any], stream: TextIO, identifier: Optional[str], keys: Optional[list[str]]
) -> None:
    scalars: list[str] = []
    nested: list[tuple[str, Any]] = []
    if keys is None:
        for key, value in sorted(item.items()):
            if isinstance(value, (dict, list)):
                nested.append((key, value))
            else:
                scalars.append(str(value))
    else:
        scalars = [str(item.get(key, "")) for key in keys]
        nested = [(key, item[key]) for key in sorted(set(item) - set(keys))]
    if scalars:
        if identifier is not None:
            scalars.insert(0, identifier.upper())
        stream.write("\t".join(scalars) + "\n")
    for name, value in nested:
        _text(value, stream, name, None)


def format_response(
    response: Any,
    stream: TextIO,
    *,
    output: str,
    command_name: str,
    query: Optional[Query] = None,
    color: str = "auto",
    terminal_width: Optional[int] = None,
    is_terminal: bool = False,
) -> None:
    """Print one operation's response in ``output`` format.

    :param command_name: the operation name, the table's title (``AssumeRoleWithWebIdentity``)
    :param color: ``auto`` colours tables only when ``is_terminal``
    :param terminal_width: width for tables; ``None`` asks the terminal (80 when not a tty)
    """
    data = response
    if isinstance(data, dict) and "ResponseMetadata" in data:
        data = {key: value for key, value in data.items() if key != "ResponseMetadata"}
    if query is not None:
        data = query.search(data)
    if output == "json":
        if data != {}:
            json.dump(data, stream, indent=4, default=json_default, ensure_ascii=False)
            stream.write("\n")
    elif output == "text":
        format_text(data, stream)
    elif output == "table":
        width = _table.terminal_width() if terminal_width is None else terminal_width
        use_color = color == "on" or (color == "auto" and is_terminal)
        _table.render_table(command_name, data, stream, width=width, color=use_color)
    elif output == "yaml":
        if data != {}:
            stream.write(_yaml.dump(data))
    elif output == "yaml-stream":
        stream.write(_yaml.dump([data]))
    else:
        choices = ", ".join(OUTPUT_FORMATS)
        raise UsageError(f"argument --output: invalid choice {output!r} (choose from {choices})")
    stream.flush()
