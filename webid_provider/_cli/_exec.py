"""``webid-provider exec [options] -- COMMAND [ARGS...]``: a command with a credentials endpoint.

Starts the container-credentials endpoint (:mod:`webid_provider._endpoint`) on 127.0.0.1 at a
port the OS chooses, with a fresh random authorization token, gets credentials once (so a
configuration or STS error is reported before the command runs), then runs COMMAND with
``AWS_CONTAINER_CREDENTIALS_FULL_URI`` and ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` set. Every AWS
SDK and the aws CLI in COMMAND then get credentials from the endpoint, refreshed through the
host cache; the endpoint lives as long as COMMAND.

The child's SDK tries other sources before the container provider, so the child's environment
loses what would win over the endpoint: the web identity variables (``AWS_ROLE_ARN``,
``AWS_WEB_IDENTITY_TOKEN_FILE``, ``AWS_ROLE_SESSION_NAME``), static keys
(``AWS_ACCESS_KEY_ID`` and friends), another container endpoint's relative URI and token file,
and ``AWS_PROFILE``/``AWS_DEFAULT_PROFILE`` when it names a web identity profile.

Signals: SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 are forwarded to COMMAND; SIGINT and SIGQUIT too,
unless this process is in its terminal's foreground process group (the terminal then sent
them to COMMAND already). The exit status is COMMAND's (128 + N when a signal N ended it), 127
when COMMAND does not exist and 126 when it cannot be executed.

Security: the authorization token goes only into COMMAND's environment, never to a log, and a
new one is drawn for every run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Optional

from webid_provider._cli._common import UsageError, add_web_identity_options
from webid_provider._cli._consumer import (
    CredentialSupply,
    add_min_remaining_option,
    build_supply,
    credentials_with_margin,
)
from webid_provider._cli._serve import (
    ENV_AUTHORIZATION_TOKEN,
    ENV_AUTHORIZATION_TOKEN_FILE,
    ENV_FULL_URI,
    new_authorization_token,
    open_endpoint,
)
from webid_provider._cli._version import PROG
from webid_provider._settings import PROFILE_KEYS, PROFILE_TOKEN_OPTIONS

EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126

#: variables that would make the child's SDK bypass the endpoint
REMOVED_FROM_CHILD = (
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    # botocore prefers a relative URI over the full one, and a token file over the token
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ENV_AUTHORIZATION_TOKEN_FILE,
)
PROFILE_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")
_ALWAYS_FORWARDED = ("SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2")
_TERMINAL_SIGNALS = ("SIGINT", "SIGQUIT")


def add_parser(subparsers: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "exec",
        parents=parents,
        help="run a command whose AWS SDKs get credentials from a local endpoint",
        description=(
            "Run COMMAND with AWS_CONTAINER_CREDENTIALS_FULL_URI and "
            "AWS_CONTAINER_AUTHORIZATION_TOKEN pointing at a credentials endpoint on "
            "127.0.0.1 that lives as long as COMMAND. Every AWS SDK and the aws CLI read it."
        ),
        usage=f"{PROG} exec [options] -- COMMAND [ARGS...]",
    )
    add_web_identity_options(parser)
    add_min_remaining_option(parser)
    parser.add_argument("command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run_exec)


def run_exec(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UsageError(f"exec needs a command: {PROG} exec [options] -- COMMAND [ARGS...]")
    supply = build_supply(args)
    environment = child_environment(os.environ, supply)
    missing = _unrunnable(command[0], environment)
    if missing is not None:
        status, reason = missing
        sys.stderr.write(f"{PROG}: error: {command[0]}: {reason}\n")
        sys.stderr.flush()
        return status
    token = new_authorization_token()
    endpoint = open_endpoint(supply, args.min_remaining, token, host="127.0.0.1", port=0)
    try:
        endpoint.start()
        credentials_with_margin(supply, args.min_remaining)  # fail here, not in COMMAND
        environment[ENV_FULL_URI] = endpoint.url
        environment[ENV_AUTHORIZATION_TOKEN] = token
        return _run(command, environment)
    finally:
        endpoint.stop()


def child_environment(environ: Mapping[str, str], supply: CredentialSupply) -> dict[str, str]:
    """``environ`` without what would make the child's SDK bypass the endpoint."""
    environment = {k: v for k, v in environ.items() if k not in REMOVED_FROM_CHILD}
    profiles = _profiles(supply.session)
    for variable in PROFILE_VARIABLES:
        name = environment.get(variable)
        if name is not None and _is_web_identity_profile(profiles.get(name)):
            del environment[variable]
    return environment


def _profiles(session: Any) -> Mapping[str, Any]:
    try:
        profiles = session.full_config.get("profiles", {})
    except Exception:  # unreadable config: the child's SDK will say so itself
        return {}
    return profiles if isinstance(profiles, Mapping) else {}


def _is_web_identity_profile(profile: Any) -> bool:
    if not isinstance(profile, Mapping):
        return False
    return any(profile.get(PROFILE_KEYS[option] or "") for option in PROFILE_TOKEN_OPTIONS)


def _unrunnable(program: str, environment: Mapping[str, str]) -> Optional[tuple[int, str]]:
    """Why ``program`` cannot run, as (exit status, reason), or ``None`` when it can."""
    if os.sep in program:
        if not os.path.exists(program):
            return EXIT_NOT_FOUND, "no such file"
        if os.path.isdir(program) or not os.access(program, os.X_OK):
            return EXIT_NOT_EXECUTABLE, "not executable"
        return None
    if shutil.which(program, path=environment.get("PATH", os.defpath)) is None:
        return EXIT_NOT_FOUND, "command not found"
    return None


def _run(command: list[str], environment: dict[str, str]) -> int:
    forwarder = _SignalForwarder()
    with forwarder.installed():  # first: a signal that arrives while COMMAND starts is kept
        try:
            child = subprocess.Popen(command, env=environment)
        except FileNotFoundError:
            sys.stderr.write(f"{PROG}: error: {command[0]}: command not found\n")
            return EXIT_NOT_FOUND
        except PermissionError:
            sys.stderr.write(f"{PROG}: error: {command[0]}: not executable\n")
            return EXIT_NOT_EXECUTABLE
        forwarder.attach(child)
        status = child.wait()
    return 128 - status if status < 0 else status


class _SignalForwarder:
    """Forwards signals to the child; holds those that arrive before it exists."""

    def __init__(self) -> None:
        self._child: Optional[subprocess.Popen[bytes]] = None
        self._pending: list[int] = []
        self._terminal = {
            getattr(signal, name) for name in _TERMINAL_SIGNALS if hasattr(signal, name)
        }

    def attach(self, child: subprocess.Popen[bytes]) -> None:
        self._child = child
        while self._pending:
            self._send(self._pending.pop(0))

    def _forward(self, number: int, _frame: object) -> None:
        if number in self._terminal and _terminal_delivers_to_child():
            return
        if self._child is None:
            self._pending.append(number)
        else:
            self._send(number)

    def _send(self, number: int) -> None:
        assert self._child is not None
        with contextlib.suppress(ProcessLookupError):
            self._child.send_signal(number)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        numbers = [
            getattr(signal, name)
            for name in (*_ALWAYS_FORWARDED, *_TERMINAL_SIGNALS)
            if hasattr(signal, name)
        ]
        saved = {number: signal.signal(number, self._forward) for number in numbers}
        try:
            yield
        finally:
            for number, handler in saved.items():
                signal.signal(number, handler)


def _terminal_delivers_to_child() -> bool:
    """Whether we (and so the child) are in the foreground process group of our terminal."""
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        try:
            fd = stream.fileno()
            if os.isatty(fd):
                return os.tcgetpgrp(fd) == os.getpgrp()
        except (AttributeError, OSError, ValueError):
            continue
    return False
