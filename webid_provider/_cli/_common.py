"""What the ``webid-provider`` subcommands share: input parsing, the option set, the provider.

* ``file://`` parameters, as the aws CLI reads them (``--policy file://policy.json``);
* ``--policy-arns`` in the aws CLI's shorthand (``arn=ARN`` items, values optionally quoted)
  or JSON (``[{"arn": "ARN"}]``, or one ``{"arn": "ARN"}`` object per item);
* the option set of ``credential-process``, ``env``, ``inspect`` and ``cache clear``, turned
  into the options of :class:`~webid_provider._provider.WebIdentityProvider`, and the botocore
  session they apply to.

Security: command lines are visible to other users of a host (``ps``), so these commands take
the token from a file or a command, never as an argument value. Error messages name options,
files and keys; they never quote a token or credential.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional

import botocore.session

from webid_provider._clock import Clock, utc_now

if TYPE_CHECKING:
    from webid_provider._provider import WebIdentityProvider
    from webid_provider._settings import WebIdentitySettings

_FILE_PREFIX = "file://"
_SHORTHAND_ITEM = re.compile(r"^\s*([A-Za-z0-9_]+)\s*=\s*(.*?)\s*$", re.DOTALL)


class UsageError(Exception):
    """The command line or an input document is wrong; the command exits with status 2."""


def read_param(value: str, option: str) -> str:
    """The value itself, or the contents of the file a ``file://`` value names.

    :param option: the option, for messages (``--policy``)
    :raises UsageError: when the file cannot be read
    """
    if not value.startswith(_FILE_PREFIX):
        return value
    path = os.path.expanduser(value[len(_FILE_PREFIX) :])
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise UsageError(
            f"argument {option}: cannot read {path}: {exc.strerror or type(exc).__name__}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"argument {option}: {path} is not UTF-8 text") from exc


def load_json(text: str, option: str) -> Any:
    """Parse JSON, naming the option and the position of the problem, never the content.

    :raises UsageError: for invalid JSON
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"argument {option}: invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc


def parse_policy_arns(values: Sequence[str], option: str = "--policy-arns") -> list[str]:
    """ARNs from the aws CLI's shorthand or JSON forms.

    Accepted, as ``aws sts assume-role-with-web-identity`` accepts them: ``arn=A arn=B`` (one
    item per argument, the value optionally in single or double quotes), a JSON list
    ``[{"arn": "A"}, ...]`` (also from ``file://``), or one JSON object per argument.

    :raises UsageError: for anything else, naming the item at fault
    """
    if len(values) == 1:
        first = read_param(values[0], option).strip()
        if first.startswith("["):
            document = load_json(first, option)
            if not isinstance(document, list):
                raise UsageError(f'argument {option}: expected a JSON list of {{"arn": ...}}')
            return [_arn_from_json(item, option) for item in document]
        values = [first]
    arns: list[str] = []
    for value in values:
        if value.strip().startswith("{"):
            arns.append(_arn_from_json(load_json(value, option), option))
            continue
        match = _SHORTHAND_ITEM.match(value)
        if match is None:
            raise UsageError(
                f"argument {option}: expected arn=<policy ARN> or JSON, got {value.strip()!r}"
            )
        key, item = match.group(1), _unquote(match.group(2))
        if key != "arn":
            raise UsageError(f"argument {option}: unknown key {key!r}; the only key is 'arn'")
        if "," in item and not match.group(2).startswith(("'", '"')):
            raise UsageError(
                f"argument {option}: {value.strip()!r} holds a ','; separate items with spaces "
                "(arn=A arn=B)"
            )
        arns.append(item)
    return arns


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def is_arn_item(item: Any) -> bool:
    """Whether ``item`` is one ``{"arn": "<policy ARN>"}`` of the ``PolicyArns`` shape."""
    return isinstance(item, dict) and set(item) == {"arn"} and isinstance(item["arn"], str)


def _arn_from_json(item: Any, option: str) -> str:
    if not is_arn_item(item):
        raise UsageError(f'argument {option}: each entry must be {{"arn": "<policy ARN>"}}')
    return str(item["arn"])


def add_web_identity_options(parser: argparse.ArgumentParser) -> None:
    """The option set of ``credential-process``, ``env``, ``inspect`` and ``cache clear``."""
    group = parser.add_argument_group(
        "web identity settings",
        "Unset options come from AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE and "
        "AWS_ROLE_SESSION_NAME, then from the profile (with --profile, from the profile only).",
    )
    group.add_argument("--profile", help="read the web identity keys of this ~/.aws/config profile")
    group.add_argument("--role-arn", help="the IAM role to assume")
    tokens = group.add_mutually_exclusive_group()
    tokens.add_argument("--web-identity-token-file", help="file holding the token (re-read)")
    tokens.add_argument(
        "--web-identity-token-command",
        help="command printing the token on stdout (split like a shell would; run without one)",
    )
    group.add_argument("--role-session-name", help="session name (default: from the token)")
    group.add_argument("--duration-seconds", help="session length, 900-43200")
    group.add_argument("--policy", help="inline session policy: JSON text or file://path")
    group.add_argument(
        "--policy-arns",
        nargs="+",
        metavar="arn=ARN",
        help='managed session policies: arn=ARN ... or JSON [{"arn": "ARN"}]',
    )
    group.add_argument("--provider-id", help="OAuth 2.0 provider host (not for OIDC JWTs)")
    group.add_argument("--region", help="region of the STS endpoint")
    cache = group.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache-dir",
        help=(
            "shared credential cache (default: $WEBID_PROVIDER_CACHE_DIR, else "
            "~/.aws/webid-provider/cache)"
        ),
    )
    cache.add_argument("--no-cache", action="store_true", help="keep credentials in memory only")


def provider_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`~webid_provider._provider.WebIdentityProvider` options the arguments set.

    :raises UsageError: when a ``file://`` value cannot be read or ``--policy-arns`` is malformed
    """
    options: dict[str, Any] = {}
    for name in (
        "role_arn",
        "web_identity_token_file",
        "web_identity_token_command",
        "role_session_name",
        "duration_seconds",
        "provider_id",
    ):
        value = getattr(args, name, None)
        if value is not None:
            options[name] = value
    if args.policy is not None:
        options["policy"] = read_param(args.policy, "--policy")
    if args.policy_arns is not None:
        options["policy_arns"] = parse_policy_arns(args.policy_arns)
    if args.no_cache:
        options["cache_dir"] = None
    elif args.cache_dir is not None:
        options["cache_dir"] = args.cache_dir
    return options


def new_session(profile: Optional[str] = None, region: Optional[str] = None) -> Any:
    """A botocore session; a named profile that does not exist fails here, not later.

    :raises botocore.exceptions.ProfileNotFound: for an unknown profile
    """
    session = botocore.session.Session(profile=profile)
    if region:
        session.set_config_variable("region", region)
    if profile is not None:
        session.get_scoped_config()
    return session


def resolve_settings(
    args: argparse.Namespace, *, session: Any = None, clock: Clock = utc_now
) -> tuple[Any, WebIdentityProvider, WebIdentitySettings]:
    """The command's session, provider and settings (no STS call, no token read).

    :param session: a botocore session to use instead of one built from ``--profile`` and
        ``--region``
    :raises UsageError: when nothing configures web identity
    :raises ConfigurationError: for invalid settings
    """
    from webid_provider._provider import WebIdentityProvider

    options = provider_options(args)
    if session is None:
        session = new_session(args.profile, args.region)
    provider = WebIdentityProvider(session, options, clock=clock)
    settings = provider.resolve()
    if settings is None:
        raise UsageError(no_settings_message(args.profile))
    return session, provider, settings


def no_settings_message(profile: Optional[str]) -> str:
    if profile is not None:
        return f"no web identity settings found for profile {profile}"
    return (
        "no web identity settings found (give --role-arn with --web-identity-token-file or "
        "--web-identity-token-command, set AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, "
        "or name a profile with --profile)"
    )
