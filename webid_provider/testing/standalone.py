"""``webid-provider emulator``: the OIDC issuer and the strict STS emulator as a process.

Tests written in Go, Java, JavaScript (or shell, or Python without the pytest plugin) start
this command, read ``AWS_ENDPOINT_URL_STS=<url>`` from the first line of its standard output,
and run the program under test with that variable, ``AWS_ROLE_ARN`` and
``AWS_WEB_IDENTITY_TOKEN_FILE``: its own AWS SDK then does AssumeRoleWithWebIdentity against
an STS that checks what AWS checks. The process:

- serves STS, moto's other APIs, the issuer's discovery document and JWKS, and the admin API
  (``_admin``: tokens, faults, settings, call records) on one port of 127.0.0.1;
- is strict: only roles that exist in its IAM are let in, each by its trust policy. It
  registers the issuer as an IAM OIDC provider (client ID ``--aud``) and creates every
  ``--role-arn`` with a trust policy for exactly ``--sub`` and ``--aud``, as eksctl writes
  them; tests may create other roles through the IAM API on the same endpoint;
- writes a token to ``--token-file`` the way the kubelet does (``..data`` symlink swap in the
  file's directory) and re-mints it at 80% of ``--token-ttl``, as the kubelet rotates;
- prints ``AWS_ENDPOINT_URL_STS=...`` (then ``AWS_WEB_IDENTITY_TOKEN_FILE=...`` and
  ``AWS_ROLE_ARN=...`` when given) once everything is ready, and runs until SIGINT or SIGTERM,
  then exits 0.

Only the standard library is imported at module level (the CLI builds its parser from
:func:`add_arguments` in every environment); the emulator's dependencies are imported by
:func:`run`.

Security: binds 127.0.0.1 only; the token file is 0600; tokens are signed by keys that live
in this process's memory and nowhere else.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from webid_provider.testing.emulator import StsEmulator
    from webid_provider.testing.issuer import OidcIssuer
    from webid_provider.testing.kubelet import KubeletTokenFile

__all__ = ["EmulatorStartError", "EmulatorUsageError", "add_arguments", "run"]

DEFAULT_SUB = "system:serviceaccount:default:app"
DEFAULT_AUD = "sts.amazonaws.com"
DEFAULT_ISSUER = "https://oidc.webid.test"
_ROLE_ARN = re.compile(r"^arn:aws:iam::(\d{12}):role/((?:[\w+=,.@-]+/)*)([\w+=,.@-]{1,64})$")
# The kubelet rotates a projected token once 80% of its lifetime has passed.
_ROTATE_AT = 0.8


class EmulatorUsageError(ValueError):
    """An argument the command cannot work with (the CLI shows it as a usage error)."""


class EmulatorStartError(RuntimeError):
    """The emulator could not start (the port is taken, ...)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any)")
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        help="write a token here, kubelet-style (..data symlink swap), re-minted before expiry",
    )
    parser.add_argument(
        "--sub", default=DEFAULT_SUB, help=f"token subject (default: {DEFAULT_SUB})"
    )
    parser.add_argument(
        "--aud", default=DEFAULT_AUD, help=f"token audience (default: {DEFAULT_AUD})"
    )
    parser.add_argument(
        "--token-ttl",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="token lifetime (default: 3600)",
    )
    parser.add_argument(
        "--role-arn",
        action="append",
        default=[],
        metavar="ARN",
        help="create this role, trusting exactly --sub and --aud (repeatable)",
    )
    parser.add_argument(
        "--lifetime",
        type=int,
        metavar="SECONDS",
        help="credentials expire after this (default: as requested)",
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, metavar="SECONDS", help="delay every STS answer"
    )
    parser.add_argument(
        "--issuer", default=DEFAULT_ISSUER, help=f"the tokens' iss (default: {DEFAULT_ISSUER})"
    )


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Run until SIGINT or SIGTERM; returns the exit status (0).

    :raises EmulatorUsageError: for an unusable argument
    :raises EmulatorStartError: when the port cannot be bound
    """
    _check(args)
    from webid_provider.testing import OidcIssuer

    issuer = OidcIssuer(args.issuer)
    stop = threading.Event()
    with _stop_on_signals(stop), _running(issuer, args) as emulator:
        _create_roles(emulator, issuer, args.sub, args.aud, args.role_arn)
        rotation = _TokenRotation(issuer, Path(args.token_file), args) if args.token_file else None
        try:
            lines = [f"AWS_ENDPOINT_URL_STS={emulator.endpoint_url}"]
            if rotation is not None:
                lines.append(f"AWS_WEB_IDENTITY_TOKEN_FILE={rotation.path}")
            if args.role_arn:
                lines.append(f"AWS_ROLE_ARN={args.role_arn[0]}")
            out.write("\n".join(lines) + "\n")
            out.flush()
            while not stop.wait(0.5):
                pass
        finally:
            if rotation is not None:
                rotation.stop()
    return 0


@contextlib.contextmanager
def _running(issuer: OidcIssuer, args: argparse.Namespace) -> Iterator[StsEmulator]:
    """A started strict emulator, stopped on exit."""
    from webid_provider.testing import StsEmulator

    emulator = StsEmulator(
        issuer,
        lifetime_seconds=args.lifetime,
        latency_seconds=args.latency,
        audiences=(args.aud,),
        strict_roles=True,
        port=args.port,
    )
    try:
        emulator.start()
    except OSError as exc:
        message = f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}"
        raise EmulatorStartError(message) from exc
    try:
        yield emulator
    finally:
        emulator.stop()


def _check(args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        raise EmulatorUsageError(f"--port {args.port} is not a port number")
    if args.token_ttl < 2:
        raise EmulatorUsageError("--token-ttl must be at least 2 seconds")
    if args.lifetime is not None and args.lifetime < 0:
        raise EmulatorUsageError("--lifetime must be >= 0")
    if args.latency < 0:
        raise EmulatorUsageError("--latency must be >= 0")
    for arn in args.role_arn:
        if not _ROLE_ARN.match(arn):
            raise EmulatorUsageError(
                f"--role-arn {arn!r} is not an IAM role ARN "
                "(arn:aws:iam::<12-digit account>:role/<path/name>)"
            )
    if args.token_file:
        path = Path(args.token_file)
        if path.exists() and not path.is_symlink():
            raise EmulatorUsageError(
                f"--token-file {path} exists; give a new path (its directory gets the kubelet's "
                "..data layout)"
            )


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set ``stop`` on SIGINT and SIGTERM; restore the previous handlers afterwards."""

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _create_roles(
    emulator: StsEmulator, issuer: OidcIssuer, sub: str, aud: str, role_arns: Sequence[str]
) -> None:
    """Register the issuer as an IAM OIDC provider and create each role trusting sub/aud."""
    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=emulator.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="emulator",
        aws_secret_access_key="emulator",  # moto accepts any key; nothing leaves 127.0.0.1
    )
    try:
        provider_arn = iam.create_open_id_connect_provider(
            Url=issuer.issuer, ClientIDList=[aud], ThumbprintList=["0" * 40]
        )["OpenIDConnectProviderArn"]
        for arn in role_arns:
            _create_role(iam, arn, _trust_policy(provider_arn, issuer.issuer, sub, aud))
    finally:
        iam.close()


def _trust_policy(provider_arn: str, issuer: str, sub: str, aud: str) -> str:
    from webid_provider.testing._iam import issuer_key

    key = issuer_key(issuer)
    statement = {
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{key}:sub": sub, f"{key}:aud": aud}},
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _create_role(iam: Any, arn: str, trust_policy: str) -> None:
    match = _ROLE_ARN.match(arn)
    assert match is not None  # checked by _check
    path, name = "/" + match.group(2), match.group(3)
    created = iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=trust_policy)
    if created["Role"]["Arn"] != arn:
        raise EmulatorUsageError(
            f"--role-arn {arn!r}: the emulator's IAM created {created['Role']['Arn']}; "
            "use its account id"
        )


class _TokenRotation:
    """A kubelet-style token file, re-minted at 80% of its lifetime by a daemon thread."""

    def __init__(self, issuer: OidcIssuer, path: Path, args: argparse.Namespace) -> None:
        from webid_provider.testing import KubeletTokenFile

        self._issuer, self._sub, self._aud, self._ttl = issuer, args.sub, args.aud, args.token_ttl
        path = path.absolute()
        try:
            self._kubelet: KubeletTokenFile = KubeletTokenFile(
                path.parent, self._mint(), filename=path.name
            )
        except OSError as exc:
            raise EmulatorUsageError(f"--token-file {path}: {exc.strerror or exc}") from exc
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webid-token-rotation", daemon=True)
        self._thread.start()

    @property
    def path(self) -> Path:
        return self._kubelet.path

    def _mint(self) -> str:
        return self._issuer.mint(sub=self._sub, aud=self._aud, ttl=self._ttl)

    def _run(self) -> None:
        while not self._stopping.wait(self._ttl * _ROTATE_AT):
            self._kubelet.rotate(self._mint())

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
