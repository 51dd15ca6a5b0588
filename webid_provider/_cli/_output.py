"""Print a response the way the aws CLI does: json, text, table, yaml, yaml-stream, ``--query``.

``ResponseMetadata`` is dropped and the JMESPath ``--query`` applied first, as awscli does. Each
format then comes from where it can be had exactly: ``json`` from the standard library
(indented by 4, non-ASCII kept, datetimes in ISO 8601 like awscli's encoder), ``yaml`` and
``yaml-stream`` from PyYAML with the aws CLI v2's dumper settings (:mod:`webid_provider._cli.
_yaml`; ``yaml-stream`` wraps the document in a list), ``text`` and ``table`` from
:mod:`webid_provider._cli._layouts`, hand-written because no library reproduces awscli's
layouts and awscli itself is a test-only dependency. Timestamps arrive as the strings STS sent
(see :mod:`webid_provider._cli._assume`), so they print as the aws CLI prints them.

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

from webid_provider._cli import _layouts, _yaml
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
        _layouts.format_text(data, stream)
    elif output == "table":
        width = _layouts.terminal_width() if terminal_width is None else terminal_width
        use_color = color == "on" or (color == "auto" and is_terminal)
        _layouts.render_table(command_name, data, stream, width=width, color=use_color)
    elif output == "yaml":
        if data != {}:
            stream.write(_yaml.dump(data))
    elif output == "yaml-stream":
        stream.write(_yaml.dump([data]))
    else:
        choices = ", ".join(OUTPUT_FORMATS)
        raise UsageError(f"argument --output: invalid choice {output!r} (choose from {choices})")
    stream.flush()
