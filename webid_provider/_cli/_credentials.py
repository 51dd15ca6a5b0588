"""``webid-provider credential-process`` and ``webid-provider env``: credentials for other tools.

Both resolve settings exactly as the Python provider does (options, then ``AWS_ROLE_ARN`` /
``AWS_WEB_IDENTITY_TOKEN_FILE`` / ``AWS_ROLE_SESSION_NAME``, then the profile) and get
credentials through :class:`~webid_provider._provider.WebIdentityProvider`, so they share the
host-wide disk cache with every Python process: an aws CLI, Terraform or Go program that runs
``credential_process = webid-provider credential-process --profile wi`` on every start makes
one STS call per credential lifetime, not one per start.

``credential-process`` prints the JSON document that ``credential_process`` consumers read
(botocore's ``ProcessProvider`` and the other SDKs): ``Version`` 1, the three keys,
``Expiration`` in ISO 8601, and ``AccountId`` when the assumed-role ARN gives it. It hands out
credentials with the consumer margin left (:mod:`webid_provider._cli._consumer`; botocore would
otherwise respawn it on every request of its last 15 minutes), and after a full run it records
the fingerprint of its inputs so the next run can answer from the cache without botocore
(:mod:`webid_provider._cli._fast`).
``env`` prints the same credentials as ``export`` lines (values quoted with ``shlex.quote``),
as a dotenv file, or as JSON.

Security: stdout carries live credentials, by design; nothing else is printed on stdout, and
errors go to stderr without them. The token is read from a file or a command, never from the
command line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
from collections.abc import Sequence
from typing import Any, Optional

from webid_provider._cli._common import (
    UsageError,
    add_web_identity_options,
    new_session,
    no_settings_message,
    provider_options,
)
from webid_provider._cli._consumer import (
    CredentialSupply,
    add_min_remaining_option,
    build_supply,
    credentials_with_margin,
)
from webid_provider._cli._documents import (
    credential_process_document as credential_process_document,
)
from webid_provider._cli._documents import credential_process_text
from webid_provider._cli._fingerprint import (
    IndexRecord,
    fingerprint,
    read_followed_file,
    write_index,
)
from webid_provider._clock import Clock, utc_now
from webid_provider._errors import ConfigurationError, WebIdProviderError
from webid_provider._fields import format_timestamp
from webid_provider._jwt import MAX_TOKEN_FILE_BYTES
from webid_provider._margin import effective_margin
from webid_provider._provider import WebIdentityProvider
from webid_provider._result import WebIdentityResult

ENV_FORMATS = ("shell", "dotenv", "json")
_DOTENV_SAFE = re.compile(r"^[A-Za-z0-9_/+=:.,@%-]*$")


def add_parsers(subparsers: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    """Register ``credential-process`` and ``env``."""
    process = subparsers.add_parser(
        "credential-process",
        parents=parents,
        help="print credentials for a credential_process line in ~/.aws/config",
        description=(
            "Print web identity credentials as the JSON a credential_process command must "
            "print. Credentials come from the shared disk cache while they are fresh, so "
            "repeated invocations make one STS call per credential lifetime."
        ),
    )
    add_web_identity_options(process)
    add_min_remaining_option(process)
    process.set_defaults(handler=run_credential_process)

    env = subparsers.add_parser(
        "env",
        parents=parents,
        help="print credentials as environment variables",
        description=(
            "Print web identity credentials as AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
            "AWS_SESSION_TOKEN and AWS_CREDENTIAL_EXPIRATION: 'export' lines for "
            'eval "$(webid-provider env)", a dotenv file, or JSON.'
        ),
    )
    add_web_identity_options(env)
    env.add_argument(
        "--format", choices=ENV_FORMATS, default="shell", help="output format (default: shell)"
    )
    env.set_defaults(handler=run_env)


def load_result(args: argparse.Namespace) -> WebIdentityResult:
    """Credentials for the arguments, from the cache or STS, through the package's provider.

    :raises UsageError: when nothing configures web identity
    """
    options = provider_options(args)
    session = new_session(args.profile, args.region)
    credentials = WebIdentityProvider(session, options).load()
    if credentials is None:
        raise UsageError(no_settings_message(args.profile))
    try:
        result: WebIdentityResult = credentials.web_identity
    except RuntimeError as exc:
        # botocore's refresh raises RuntimeError when fresh credentials are already past their
        # expiry by this host's clock: a skewed clock, or a lifetime too short to use.
        raise WebIdProviderError(
            f"{exc} Check this host's clock against STS's (Expiration is in UTC)."
        ) from exc
    return result


def environment_variables(result: WebIdentityResult) -> dict[str, str]:
    """The environment variables botocore's ``EnvProvider`` (and other SDKs) read."""
    return {
        "AWS_ACCESS_KEY_ID": result.access_key_id,
        "AWS_SECRET_ACCESS_KEY": result.secret_access_key,
        "AWS_SESSION_TOKEN": result.session_token,
        "AWS_CREDENTIAL_EXPIRATION": format_timestamp(result.expiration),
    }


def format_environment(variables: dict[str, str], fmt: str) -> str:
    """``variables`` as ``export`` lines (``shell``), ``KEY=value`` lines (``dotenv``) or JSON."""
    if fmt == "json":
        return json.dumps(variables, indent=2) + "\n"
    if fmt == "dotenv":
        return "".join(f"{name}={_dotenv_value(value)}\n" for name, value in variables.items())
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in variables.items())


def _dotenv_value(value: str) -> str:
    # Unquoted when safe: docker's --env-file keeps quotes literally, and credentials never
    # need them. Anything else is double-quoted with backslash escapes.
    if _DOTENV_SAFE.match(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return '"' + escaped.replace("\n", "\\n") + '"'


def run_credential_process(args: argparse.Namespace) -> int:
    sys.stdout.write(credential_process_output(args))
    sys.stdout.flush()
    return 0


def credential_process_output(
    args: argparse.Namespace, *, session: Any = None, clock: Clock = utc_now
) -> str:
    """The full path: resolve, get credentials with the consumer margin, record the fingerprint.

    :param session: the botocore session (default: a new one for ``--profile``/``--region``)
    :param clock: the clock for the refresher (the benchmark runs it on a virtual one)
    """
    arguments = _index_arguments(args)
    before = _fingerprint(arguments)
    if session is None:
        session = new_session(args.profile, args.region)
    supply = build_supply(args, session=session, clock=clock)
    result = credentials_with_margin(supply, args.min_remaining)
    if arguments is not None and before is not None:
        _record_for_fast_path(supply, arguments, before, args.min_remaining)
    return credential_process_text(credential_process_document(result))


def _index_arguments(args: argparse.Namespace) -> Optional[list[str]]:
    """The arguments the fast path will see, when this run may write an index record."""
    raw = getattr(args, "raw_arguments", None)
    if not raw or raw[0] != "credential-process" or args.debug or args.no_cache:
        return None
    return list(raw[1:])


def _fingerprint(arguments: Optional[list[str]]) -> Optional[str]:
    from webid_provider import __version__

    return None if arguments is None else fingerprint(arguments, os.environ, __version__)


def _record_for_fast_path(
    supply: CredentialSupply, arguments: list[str], before: str, min_remaining: float
) -> None:
    """Map the fingerprint to the key this run used, when nothing changed meanwhile.

    Written only for token files (the fast path cannot run a token command) and only when the
    token now in the file gives the key the refresher used and the inputs still have the
    fingerprint they had before resolution: a concurrent rotation or config edit writes nothing.
    """
    settings, refresher = supply.settings, supply.refresher
    if settings.token.kind != "file" or settings.token.file is None:
        return
    if settings.cache_dir is None or refresher.key is None or not refresher.cache.enabled:
        return
    token_file = str(settings.token.file)
    try:
        data = read_followed_file(token_file, max_bytes=MAX_TOKEN_FILE_BYTES)
        token = data.decode("utf-8").strip()
        material = refresher.key_material(token)
    except (OSError, UnicodeDecodeError, ConfigurationError):
        return
    key = material.key()
    if key != refresher.key or _fingerprint(arguments) != before:
        return
    record = IndexRecord(
        key=key,
        token_file=token_file,
        token_identity=material.token_identity,
        margin_seconds=effective_margin(settings.duration_seconds, min_remaining),
    )
    write_index(str(settings.cache_dir), before, record)


def run_env(args: argparse.Namespace) -> int:
    variables = environment_variables(load_result(args))
    sys.stdout.write(format_environment(variables, args.format))
    sys.stdout.flush()
    return 0
