"""Argument parsing, dispatch, logging and exit statuses of the ``webid-provider`` command.

Every failure ends here and becomes one line on stderr, ``webid-provider: error: <message>``,
and an exit status: 2 for bad input (usage, ``ConfigurationError``, a ``TokenSourceError``
that needs fixing first such as a missing token file or command, malformed JSON or YAML,
unknown profile), 1 for STS and other runtime failures (a token command that ran and failed or
timed out included: the cause may be transient), 130 for Ctrl-C. argparse's multi-line usage
dumps are replaced by the same one-line form.

Logging: the package's warnings go to stderr as ``webid-provider: warning: ...``. botocore is
silenced because it logs tracebacks of failed refreshes, and at DEBUG level its request logs
contain the web identity token; ``--debug`` shows the package's DEBUG messages, botocore's
warnings, and the traceback of a failure, but still never botocore's request bodies.

Security: messages come from the package's exceptions, which never carry secrets; an exception
of unknown origin is shown by type name only, because its text may quote a request.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn, Optional

from botocore.exceptions import (
    BotoCoreError,
    NoRegionError,
    ParamValidationError,
    ProfileNotFound,
)

from webid_provider._cli import _assume, _cache, _credentials, _exec, _inspect, _serve
from webid_provider._cli._common import UsageError
from webid_provider._cli._version import PROG, version_text
from webid_provider._errors import (
    ConfigurationError,
    StsError,
    TokenSourceError,
    WebIdProviderError,
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse without abbreviations, whose errors are one line (raised, not printed)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    """The full command-line parser."""
    common = _Parser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log what the provider does and show tracebacks (never tokens or secrets)",
    )
    common.add_argument("--version", action="version", version=version_text())
    parser = _Parser(
        prog=PROG,
        parents=[common],
        description=(
            "AWS credentials from STS AssumeRoleWithWebIdentity: aws CLI-compatible calls, "
            "credential_process for other tools, and diagnostics of the shared cache."
        ),
    )
    parser.set_defaults(debug=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    parents = [common]
    _assume.add_parser(subparsers, parents)
    _credentials.add_parsers(subparsers, parents)
    _exec.add_parser(subparsers, parents)
    _serve.add_parser(subparsers, parents)
    _inspect.add_parser(subparsers, parents)
    _cache.add_parser(subparsers, parents)
    demo = subparsers.add_parser(
        "demo",
        parents=parents,
        help="run a self-contained demo against a local STS emulator",
        description="Run a demo against a local STS emulator (needs the testing extra).",
    )
    demo.set_defaults(handler=_run_demo)
    emulator = subparsers.add_parser(
        "emulator",
        parents=parents,
        help="run the local OIDC issuer and strict STS emulator for tests in any language",
        description=(
            "Run the local OIDC issuer and strict STS emulator on 127.0.0.1 until SIGINT or "
            "SIGTERM. The first line of output is AWS_ENDPOINT_URL_STS=<url>. Needs the "
            "testing extra."
        ),
    )
    from webid_provider.testing.standalone import add_arguments

    add_arguments(emulator)
    emulator.set_defaults(handler=_run_emulator)
    return parser


def _run_demo(args: argparse.Namespace) -> int:
    with _testing_extra("demo"):
        from webid_provider.testing.demo import run_demo

        return int(run_demo(sys.stdout))


def _run_emulator(args: argparse.Namespace) -> int:
    from webid_provider.testing.standalone import EmulatorStartError, EmulatorUsageError

    with _testing_extra("emulator"):
        from webid_provider.testing.standalone import run

        try:
            return run(args, sys.stdout)
        except EmulatorUsageError as exc:
            raise UsageError(str(exc)) from exc
        except EmulatorStartError as exc:
            raise WebIdProviderError(str(exc)) from exc


@contextmanager
def _testing_extra(command: str) -> Iterator[None]:
    """Turn a missing ``testing`` extra into a usage error carrying the install command."""
    try:
        yield
    except ImportError as exc:
        if (exc.name or "").startswith("webid_provider.testing"):
            raise WebIdProviderError(f"the {command} is not part of this installation") from exc
        from webid_provider.testing._extra import INSTALL_HINT, is_missing_extra

        if is_missing_extra(exc):
            message = f"the {command} command needs the testing extra: {INSTALL_HINT}"
            raise UsageError(message) from exc
        raise


def classify(exc: BaseException) -> tuple[int, str]:
    """The exit status and the one-line message for a failure."""
    if isinstance(exc, TokenSourceError) and exc.retryable:
        return EXIT_FAILURE, str(exc)  # a token command that ran and failed: maybe transient
    if isinstance(exc, (UsageError, ConfigurationError, TokenSourceError)):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, ProfileNotFound):
        profile = exc.kwargs.get("profile")
        return EXIT_USAGE, f"profile {profile!r} is not defined in the AWS config files"
    if isinstance(exc, NoRegionError):
        return EXIT_USAGE, "no region: give --region or set AWS_DEFAULT_REGION"
    if isinstance(exc, (StsError, WebIdProviderError)):
        return EXIT_FAILURE, str(exc)
    if isinstance(exc, ParamValidationError):  # its report may quote parameter values
        return EXIT_FAILURE, "botocore rejected the request parameters"
    if isinstance(exc, BotoCoreError):
        return EXIT_FAILURE, f"{type(exc).__name__}: {exc}"
    return EXIT_FAILURE, f"unexpected {type(exc).__name__} (run with --debug for the traceback)"


class _LineFormatter(logging.Formatter):
    def __init__(self, with_traceback: bool) -> None:
        super().__init__()
        self._with_traceback = with_traceback

    def format(self, record: logging.LogRecord) -> str:
        line = f"{PROG}: {record.levelname.lower()}: {record.getMessage()}"
        if self._with_traceback and record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


@contextmanager
def _logging(debug: bool) -> Iterator[None]:
    """Route log records for one command run; restore the loggers afterwards."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LineFormatter(with_traceback=debug))
    package, boto = logging.getLogger("webid_provider"), logging.getLogger("botocore")
    saved = [(log, log.level, log.propagate, list(log.handlers)) for log in (package, boto)]
    package.handlers, package.propagate = [handler], False
    package.setLevel(logging.DEBUG if debug else logging.WARNING)
    # botocore logs failed refreshes with a traceback, and its DEBUG records quote request
    # bodies (with the token): show only its warnings, and only with --debug.
    boto.handlers, boto.propagate = [handler if debug else logging.NullHandler()], False
    boto.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for log, level, propagate, handlers in saved:
            log.setLevel(level)
            log.propagate = propagate
            log.handlers = handlers


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``webid-provider`` command.

    :param argv: the arguments after the program name (default: ``sys.argv[1:]``)
    :returns: the exit status
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    options = arguments[: arguments.index("--")] if "--" in arguments else arguments
    debug = "--debug" in options
    with _logging(debug):
        try:
            args = build_parser().parse_args(arguments)
            args.raw_arguments = tuple(arguments)  # the fast path's index is keyed on them
            return int(args.handler(args))
        except SystemExit as exc:  # --help and --version
            return exc.code if isinstance(exc.code, int) else EXIT_OK
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            # The reader went away (``| head``): nothing left to say, like the aws CLI.
            _silence_stdout()
            return EXIT_OK
        except Exception as exc:
            status, message = classify(exc)
            if debug:
                traceback.print_exc(file=sys.stderr)
            sys.stderr.write(f"{PROG}: error: {' '.join(message.split())}\n")
            sys.stderr.flush()
            return status


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
