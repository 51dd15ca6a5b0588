"""The aws CLI's ``text`` and ``table`` output layouts, hand-written.

No library reproduces them: they are awscli's own algorithms (v1, ``awscli/text.py`` and
``awscli/table.py`` with ``TableFormatter`` in ``awscli/formatter.py``), and awscli is a
test-only dependency of this project, so they are ported here step by step.
``tests/unit/test_cli.py`` renders recorded responses through both and compares them.

* ``text``: tab-separated rows, scalar keys sorted, nested keys as upper-cased row prefixes.
* ``table``: a dict's scalar keys become one row under a header (or a vertical key/value list
  when the table would be wider than the terminal), non-scalar keys indented sub-sections,
  sorted by key, with awscli's rounding of column widths.

Security: this module formats whatever it is given; callers decide what to print.
"""

from __future__ import annotations

import struct
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any, Optional, TextIO

_BRIGHT_BLUE = "\x1b[1m\x1b[34m"
_DIM_YELLOW = "\x1b[2m\x1b[33m"
_RESET = "\x1b[0m"


def text_length(text: object) -> int:
    """Display width: East Asian wide, full-width and ambiguous characters count twice."""
    return sum(2 if unicodedata.east_asian_width(char) in "WFA" else 1 for char in str(text))


def terminal_width(stream: Optional[TextIO] = None, default: int = 80) -> int:
    """The terminal's width in columns, or ``default`` when ``stream`` is not a terminal."""
    try:
        from fcntl import ioctl
        from termios import TIOCGWINSZ
    except ImportError:  # pragma: no cover - Windows
        return default
    try:
        _height, width = struct.unpack(
            "hhhh", ioctl(stream or sys.stdout, TIOCGWINSZ, b"\000" * 8)
        )[0:2]
    except Exception:
        return default
    return int(width)


def _center(text: str, length: int, text_len: Optional[int] = None) -> str:
    size = text_length(text) if text_len is None else text_len
    start = (length // 2) - (size // 2) - 1
    left = "|" + " " * start + text
    right_spaces = length - 1 - (1 + start + size)
    return left + " " * right_spaces + "|"


def _center_cell(text: str, length: int, left_edge: str, text_len: int) -> str:
    start = (length // 2) - (text_len // 2) - 1
    so_far = len(left_edge) + start + text_len
    return left_edge + " " * start + text + " " * (length - 1 - so_far) + "|"


def _align_left(text: str, length: int, left_edge: str, right_edge: str, text_len: int) -> str:
    computed = text_len + 2 + len(left_edge) + len(right_edge)
    padding = 2 if length - computed >= 0 else 0
    so_far = len(left_edge) + padding + text_len
    return left_edge + " " * padding + text + " " * (length - so_far - len(right_edge)) + right_edge


class Styler:
    """No styling (``--color off``, or output that is not a terminal)."""

    def row_element(self, text: str) -> str:
        return text

    def indentation(self, text: str) -> str:
        return text


class ColorStyler(Styler):
    """The aws CLI's colours: bright blue values, dim yellow indentation bars."""

    def row_element(self, text: str) -> str:
        return _BRIGHT_BLUE + text + _RESET

    def indentation(self, text: str) -> str:
        return _DIM_YELLOW + text + _RESET


class Section:
    """One titled block: optional header row and rows of cells."""

    def __init__(self) -> None:
        self.title = ""
        self.headers: list[str] = []
        self.rows: list[list[str]] = []
        self.indent_level = 0
        self._num_cols: Optional[int] = None
        self._max_widths: list[int] = []

    def column_widths(self, padding: int = 0, max_width: Optional[int] = None) -> list[int]:
        unscaled = [w + padding for w in self._max_widths]
        if max_width is None or not unscaled:
            return unscaled
        scale = max_width / float(sum(unscaled))
        scaled = [round(scale * w) for w in unscaled]
        off_by = sum(scaled) - max_width
        while off_by != 0:
            order: Iterable[int] = range(len(scaled))
            if off_by < 0:
                order = reversed(range(len(scaled)))
            for i in order:
                if off_by > 0:
                    scaled[i] -= 1
                    off_by -= 1
                else:
                    scaled[i] += 1
                    off_by += 1
                if off_by == 0:
                    break
        return scaled

    def total_width(self, padding: int = 0, outer_padding: int = 0) -> int:
        total = sum(w + padding for w in self.column_widths()) + 2 + 2 * outer_padding
        return max(text_length(self.title) + 2 + 2 * outer_padding, total)

    def add_header(self, headers: Sequence[Any]) -> None:
        self._update_max_widths(headers)
        if self._num_cols is None:
            self._num_cols = len(headers)
        self.headers = [str(h) for h in headers]

    def add_row(self, row: Iterable[Any]) -> None:
        cells = [str(cell) for cell in row]
        if self._num_cols is None:
            self._num_cols = len(cells)
        if len(cells) != self._num_cols:
            raise ValueError(f"row should have {self._num_cols} elements, not {len(cells)}")
        self.rows.append(cells)
        self._update_max_widths(cells)

    def _update_max_widths(self, row: Sequence[Any]) -> None:
        if not self._max_widths:
            self._max_widths = [text_length(cell) for cell in row]
        else:
            for i, cell in enumerate(row):
                self._max_widths[i] = max(text_length(cell), self._max_widths[i])


class _IndentedStream:
    def __init__(self, stream: TextIO, indent_level: int, bar: str) -> None:
        self._stream = stream
        self._indent = bar * indent_level

    def write(self, text: str) -> None:
        self._stream.write(self._indent)
        if text.endswith("\n"):
            self._stream.write(text[:-1])
            self._stream.write(self._indent)
            self._stream.write("\n")
        else:
            self._stream.write(text)


class MultiTable:
    """Sections rendered one under another at a common width."""

    def __init__(self, width: int, styler: Styler) -> None:
        self._sections: list[Section] = []
        self._current: Optional[Section] = None
        self._width = width
        self._styler = styler

    @property
    def current(self) -> Section:
        if self._current is None:  # awscli fails the same way for a headless nested list
            raise ValueError("table row outside any section")
        return self._current

    def new_section(self, title: str, indent_level: int = 0) -> None:
        self._current = Section()
        self._sections.append(self._current)
        self._current.title = title
        self._current.indent_level = indent_level

    def render(self, stream: TextIO) -> None:
        max_width = self._max_width()
        if max_width > self._width:
            self._to_vertical()
            max_width = self._max_width()
        stream.write("-" * max_width + "\n")
        for section in self._sections:
            self._render_section(section, max_width, stream)

    def _to_vertical(self) -> None:
        for i, section in enumerate(self._sections):
            if len(section.rows) == 1 and section.headers:
                vertical = Section()
                vertical.title = section.title
                vertical.indent_level = section.indent_level
                for header, cell in zip(section.headers, section.rows[0]):
                    vertical.add_row([header, cell])
                self._sections[i] = vertical

    def _max_width(self) -> int:
        return max(s.total_width(padding=4, outer_padding=s.indent_level) for s in self._sections)

    def _render_section(self, section: Section, max_width: int, out: TextIO) -> None:
        stream = _IndentedStream(out, section.indent_level, self._styler.indentation("|"))
        max_width -= section.indent_level * 2
        if section.title:
            stream.write(_center(section.title, max_width) + "\n")
            if not section.headers and not section.rows:
                stream.write("+{}+\n".format("-" * (max_width - 2)))
        if section.headers:
            widths = section.column_widths(padding=4, max_width=max_width)
            line = "".join(
                _center_cell(header, width, "|" if i == 0 else "", text_length(header))
                for i, (width, header) in enumerate(zip(widths, section.headers))
            )
            self._line_break(stream, widths)
            stream.write(line + "\n")
        if section.rows:
            widths = section.column_widths(padding=4, max_width=max_width)
            if not widths:
                return
            self._line_break(stream, widths)
            for row in section.rows:
                line = "".join(
                    _align_left(
                        self._styler.row_element(cell),
                        width,
                        "|" if i == 0 else "",
                        "|",
                        text_length(cell),
                    )
                    for i, (width, cell) in enumerate(zip(widths, row))
                )
                stream.write(line + "\n")
            self._line_break(stream, widths)

    @staticmethod
    def _line_break(stream: _IndentedStream, widths: Sequence[int]) -> None:
        parts = [
            "+{}+".format("-" * (w - 2)) if i == 0 else "{}+".format("-" * (w - 1))
            for i, w in enumerate(widths)
        ]
        stream.write("".join(parts) + "\n")


def _is_scalar(value: object) -> bool:
    return not isinstance(value, (list, dict))


def _scalar_and_nested_keys(current: dict[str, Any]) -> tuple[list[str], list[str]]:
    headers = sorted(key for key in current if _is_scalar(current[key]))
    more = sorted(key for key in current if not _is_scalar(current[key]))
    return headers, more


class TableBuilder:
    """awscli's ``TableFormatter._build_table``: response -> sections."""

    def __init__(self, table: MultiTable) -> None:
        self.table = table

    def build(self, title: Optional[str], current: Any, indent_level: int = 0) -> bool:
        if not current:
            return False
        if title is not None:
            self.table.new_section(title, indent_level=indent_level)
        if isinstance(current, list):
            if isinstance(current[0], dict):
                self._from_list(current, indent_level, title)
            else:
                for item in current:
                    if _is_scalar(item):
                        self.table.current.add_row([item])
                    elif all(_is_scalar(el) for el in item):
                        self.table.current.add_row(item)
                    else:
                        self.build(None, item)
        if isinstance(current, dict):
            self._from_dict(current, indent_level)
        return True

    def _from_dict(self, current: dict[str, Any], indent_level: int) -> None:
        headers, more = _scalar_and_nested_keys(current)
        if len(headers) == 1:
            self.table.current.add_row([headers[0], current[headers[0]]])
        elif headers:
            self.table.current.add_header(headers)
            self.table.current.add_row([current[k] for k in headers])
        for key in more:
            self.build(key, current[key], indent_level=indent_level + 1)

    def _from_list(self, current: list[Any], indent_level: int, title: Optional[str]) -> None:
        header_set: set[str] = set()
        more_set: set[str] = set()
        for item in current:
            item_headers, item_more = _scalar_and_nested_keys(item)
            header_set.update(item_headers)
            more_set.update(item_more)
        headers, more = sorted(header_set), sorted(more_set)
        self.table.current.add_header(headers)
        first = True
        for element in current:
            if not first and more:
                self.table.new_section(title or "", indent_level=indent_level)
                self.table.current.add_header(headers)
            first = False
            self.table.current.add_row([element.get(header, "") for header in headers])
            for key in more:
                if key in element:
                    self.build(key, element[key], indent_level=indent_level + 1)


def render_table(
    title: str, data: Any, stream: TextIO, *, width: int = 80, color: bool = False
) -> None:
    """Write ``data`` as the aws CLI's table titled ``title``; nothing for empty data.

    :param width: the terminal width; wider tables are turned into key/value lists
    :param color: use the aws CLI's ANSI colours
    """
    table = MultiTable(width, ColorStyler() if color else Styler())
    if TableBuilder(table).build(title, data):
        table.render(stream)


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
