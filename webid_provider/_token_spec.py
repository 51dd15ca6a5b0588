"""Where the token comes from, as configured: a token file, a string, a callable or a command.

:class:`TokenSpec` is the settings' value for the token source (one of the four option or
profile keys); :mod:`webid_provider._tokens` builds the source that reads the token from it.
:func:`describe_token_source` is the one way messages and ``inspect`` name a source.

Security: a spec never shows the token (``repr`` hides the string and the callable), and a
token command is only parsed here, like a POSIX shell would split it, never run.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

from webid_provider._errors import ConfigurationError

TokenCallable = Callable[[], Union[str, bytes]]


@dataclass(frozen=True)
class TokenSpec:
    """Where the token comes from; exactly one of the value fields is set."""

    kind: str  # "file" | "string" | "callable" | "command"
    file: Optional[Path] = None
    string: Optional[str] = field(default=None, repr=False)
    function: Optional[TokenCallable] = field(default=None, repr=False)
    command: tuple[str, ...] = ()

    def describe(self) -> str:
        """A human description that never includes the token itself."""
        return describe_token_source(
            self.kind, file=self.file, function=self.function, command=self.command
        )


def describe_token_source(
    kind: str,
    *,
    file: Optional[object] = None,
    function: Optional[object] = None,
    command: Sequence[str] = (),
    with_arguments: bool = True,
) -> str:
    """How messages and ``inspect`` name a token source (:meth:`TokenSpec.describe`, and every
    :class:`~webid_provider._tokens.TokenSource`'s ``description``); never the token itself.

    :param with_arguments: show a command's arguments. ``inspect`` and configuration errors
        show the command as configured; a token source's run-time errors name only the program
        (``with_arguments=False``), because they reach logs and an argument may carry a secret,
        even the token itself.
    """
    if kind == "file":
        return f"token file {file}"
    if kind == "command":
        shown = shlex.join(command) if with_arguments else command[0]
        return f"token command {shown!r}"
    if kind == "callable":
        name = getattr(function, "__qualname__", type(function).__name__)
        return f"token callable {name}"
    return "token string"


def token_spec(option: str, value: Any) -> TokenSpec:
    if option == "web_identity_token_file":
        if not is_text_path(value):
            raise ConfigurationError(
                "web_identity_token_file must be a path", field="web_identity_token_file"
            )
        return TokenSpec(kind="file", file=Path(os.path.expanduser(os.fspath(value))))
    if option == "web_identity_token_command":
        return TokenSpec(kind="command", command=parse_command(value))
    if callable(value):
        return TokenSpec(kind="callable", function=value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise ConfigurationError(
            "web_identity_token must be a string or a callable returning one",
            field="web_identity_token",
        )
    return TokenSpec(kind="string", string=value)


def parse_command(value: Any) -> tuple[str, ...]:
    """Split a token command like a POSIX shell would, without ever running a shell.

    :raises ConfigurationError: for an empty command or unbalanced quotes
    """
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise ConfigurationError(
                f"web_identity_token_command cannot be parsed: {exc}",
                field="web_identity_token_command",
            ) from exc
    elif isinstance(value, Sequence) and all(isinstance(part, str) for part in value):
        argv = list(value)
    else:
        raise ConfigurationError(
            "web_identity_token_command must be a string or a list of strings",
            field="web_identity_token_command",
        )
    if not argv or not argv[0]:
        raise ConfigurationError(
            "web_identity_token_command is empty", field="web_identity_token_command"
        )
    if any("\0" in part for part in argv):
        raise ConfigurationError(
            "web_identity_token_command contains a NUL character",
            field="web_identity_token_command",
        )
    return tuple(argv)


def is_text_path(value: Any) -> bool:
    """A non-empty str or ``os.PathLike[str]`` without NUL bytes (no bytes paths)."""
    try:
        text = os.fspath(value)
    except TypeError:
        return False
    return isinstance(text, str) and bool(text) and "\0" not in text
