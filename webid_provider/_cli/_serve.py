"""``webid-provider serve``: the container-credentials endpoint for a sidecar or a systemd unit.

Programs read it through ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` (the URL this command prints
as its first line of stdout) and ``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`` (the file given
to ``--authorization-token-file``, or written by ``--write-authorization-token-file``). Every
AWS SDK and the aws CLI support both, and refresh through the endpoint on their own schedule;
the endpoint answers from the package's refresher and host cache with the consumer margin.

Bad input fails before anything listens and before any STS call, with exit status 2: a
non-loopback ``--host`` without ``--allow-remote`` (SDKs accept plain HTTP from loopback
only), a port in use, an authorization token file that cannot be read or holds no usable
token, invalid web identity settings. SIGTERM and SIGINT stop the server; the exit status is 0.

Security: the authorization token is never printed or logged; a generated one is written
0600 through a temporary file and a rename, without a trailing newline (botocore refuses
tokens holding CR or LF).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import secrets
import signal
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from webid_provider._cli._common import UsageError, add_web_identity_options
from webid_provider._cli._consumer import (
    CredentialSupply,
    add_min_remaining_option,
    build_supply,
    credentials_with_margin,
)
from webid_provider._cli._documents import container_document
from webid_provider._cli._fingerprint import read_followed_file
from webid_provider._endpoint import (
    CredentialsCallable,
    CredentialsEndpoint,
    CredentialsUnavailable,
    is_loopback_host,
)
from webid_provider._errors import WebIdProviderError
from webid_provider._files import UnsafeFileError, write_private_file

logger = logging.getLogger(__name__)

ENV_FULL_URI = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
ENV_AUTHORIZATION_TOKEN = "AWS_CONTAINER_AUTHORIZATION_TOKEN"
ENV_AUTHORIZATION_TOKEN_FILE = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
MAX_AUTHORIZATION_TOKEN_CHARS = 4096
MIN_AUTHORIZATION_TOKEN_CHARS = 16


def add_parser(subparsers: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        parents=parents,
        help="serve credentials to any SDK over the container-credentials protocol",
        description=(
            "Serve web identity credentials at AWS_CONTAINER_CREDENTIALS_FULL_URI (printed as "
            "the first line of stdout) for every AWS SDK and the aws CLI, from the shared "
            "cache. For a sidecar container or a systemd unit; stops on SIGTERM or SIGINT."
        ),
    )
    add_web_identity_options(parser)
    add_min_remaining_option(parser)
    endpoint = parser.add_argument_group("endpoint")
    endpoint.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    endpoint.add_argument(
        "--port", type=_port, default=0, help="port to listen on (default: chosen by the OS)"
    )
    endpoint.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host that is not a loopback address (SDKs then need HTTPS in front)",
    )
    tokens = endpoint.add_mutually_exclusive_group()
    tokens.add_argument(
        "--authorization-token-file",
        metavar="PATH",
        help="read the token clients must send as Authorization from PATH",
    )
    tokens.add_argument(
        "--write-authorization-token-file",
        metavar="PATH",
        help="generate a random token and write it to PATH (0600) for the clients to read",
    )
    parser.set_defaults(handler=run_serve)


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is outside 0-65535")
    return port


def run_serve(args: argparse.Namespace) -> int:
    if not args.allow_remote and not is_loopback_host(args.host):
        raise UsageError(
            f"argument --host: {args.host} is not a loopback address; SDKs fetch container "
            "credentials over plain HTTP from loopback only, so serving elsewhere exposes them "
            "(add --allow-remote to do it anyway)"
        )
    if args.authorization_token_file is not None:
        token = read_authorization_token(args.authorization_token_file)
    elif args.write_authorization_token_file is not None:
        token = new_authorization_token()
    else:
        raise UsageError(
            "give --authorization-token-file PATH, or --write-authorization-token-file PATH "
            "to generate one (clients read it through AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)"
        )
    supply = build_supply(args)
    endpoint = open_endpoint(supply, args.min_remaining, token, host=args.host, port=args.port)
    try:
        if args.write_authorization_token_file is not None:
            write_authorization_token(args.write_authorization_token_file, token)
        with stop_on_signals() as stop:
            endpoint.start()
            sys.stdout.write(f"{ENV_FULL_URI}={endpoint.url}\n")
            sys.stdout.flush()
            logger.info("serving container credentials at %s", endpoint.url)
            while not stop.wait(1.0):
                pass
    finally:
        endpoint.stop()
    return 0


def endpoint_credentials(supply: CredentialSupply, min_remaining: float) -> CredentialsCallable:
    """What the endpoint serves: the container document, with the consumer margin."""

    def credentials() -> Mapping[str, Any]:
        try:
            return container_document(credentials_with_margin(supply, min_remaining))
        except WebIdProviderError as exc:
            raise CredentialsUnavailable(str(exc)) from exc

    return credentials


def open_endpoint(
    supply: CredentialSupply, min_remaining: float, token: str, *, host: str, port: int
) -> CredentialsEndpoint:
    """Bind the endpoint (not serving yet).

    :raises UsageError: when the address cannot be bound
    """
    try:
        return CredentialsEndpoint(
            endpoint_credentials(supply, min_remaining),
            authorization_token=token,
            host=host,
            port=port,
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"argument --port: port {port} on {host} is in use") from exc
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"cannot listen on {host} port {port}: {reason}") from exc


def new_authorization_token() -> str:
    return secrets.token_urlsafe(32)


def read_authorization_token(path: str) -> str:
    """The token in ``path`` (a secret mount may be a symlink), stripped.

    :raises UsageError: when it cannot be read or is not a usable header value
    """
    option = "argument --authorization-token-file"
    try:
        data = read_followed_file(path, max_bytes=MAX_AUTHORIZATION_TOKEN_CHARS + 64)
    except FileNotFoundError as exc:
        raise UsageError(f"{option}: {path} does not exist") from exc
    except UnsafeFileError as exc:  # its text names the path and what it is
        raise UsageError(f"{option}: {exc}") from exc
    except OSError as exc:
        raise UsageError(f"{option}: cannot read {path}: {exc.strerror or exc}") from exc
    try:
        token = data.decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise UsageError(f"{option}: {path} is not ASCII text") from exc
    if not MIN_AUTHORIZATION_TOKEN_CHARS <= len(token) <= MAX_AUTHORIZATION_TOKEN_CHARS or any(
        not 0x21 <= ord(char) <= 0x7E for char in token
    ):
        raise UsageError(
            f"{option}: {path} must hold one token of {MIN_AUTHORIZATION_TOKEN_CHARS}-"
            f"{MAX_AUTHORIZATION_TOKEN_CHARS} visible ASCII characters"
        )
    if data != token.encode("ascii"):
        logger.warning(
            "%s holds whitespace around the token; botocore refuses a token file with a "
            "newline, so write it without one (printf '%%s' ...)",
            path,
        )
    return token


def write_authorization_token(path: str, token: str) -> None:
    """Write ``token`` to ``path`` 0600 (temp file + rename, no trailing newline).

    :raises UsageError: when the file cannot be written
    """
    try:
        write_private_file(path, token.encode("ascii"), temp_prefix=".webid-token-")
    except OSError as exc:
        raise UsageError(
            f"argument --write-authorization-token-file: cannot write {path}: {exc.strerror or exc}"
        ) from exc


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event SIGTERM and SIGINT set (instead of killing the process); handlers restored."""
    stop = threading.Event()
    saved = {}
    for number in (signal.SIGTERM, signal.SIGINT):
        saved[number] = signal.signal(number, lambda *_: stop.set())
    try:
        yield stop
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)
