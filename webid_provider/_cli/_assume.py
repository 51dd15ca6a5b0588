"""``webid-provider assume-role-with-web-identity``: the aws CLI command, checked before sending.

It takes the options of ``aws sts assume-role-with-web-identity`` (plus
``--web-identity-token-file``) and prints the response exactly as aws CLI v1 prints it: the
same keys in the model's order, JSON indented by 4, text and table layouts, ``--query``, and
timestamps as the raw string STS sent. awscli gets the raw string by installing an identity
timestamp parser in botocore's response parser factory (``awscli/customizations/scalarparse.py``,
``cli_timestamp_format = wire``); this module does the same on its own botocore session,
honouring ``cli_timestamp_format = iso8601`` in the profile as awscli does.

Unlike the aws CLI, every limit STS enforces that can be checked locally is checked first
(role ARN, session name, duration, policy JSON and size, policy ARNs, token length and expiry,
``--provider-id`` with a JWT), so bad input fails with exit status 2 and no STS call. The call
itself is one unsigned attempt: the command reports what STS answered, it does not retry.

Security: ``--web-identity-token`` puts the token on the command line, where other users of the
host can see it (``ps``), exactly as with the aws CLI; ``--web-identity-token-file`` and
``file://`` avoid that. The token never appears in an error message. The response holds
credentials and is printed because that is what the command is for.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Callable, Optional
from urllib.parse import urlparse

from botocore.config import Config
from botocore.exceptions import NoRegionError
from botocore.utils import parse_timestamp

from webid_provider._cli import _yaml
from webid_provider._cli._common import (
    UsageError,
    is_arn_item,
    load_json,
    new_session,
    parse_policy_arns,
    read_param,
)
from webid_provider._cli._output import COLOR_CHOICES, OUTPUT_FORMATS, Query, format_response
from webid_provider._cli._skeletons import (
    INPUT_KEYS,
    INPUT_SKELETON,
    OUTPUT_SKELETON,
    YAML_INPUT_SKELETON,
)
from webid_provider._sts_client import single_attempt_options
from webid_provider._sts_errors import to_sts_error
from webid_provider._tokens import (
    FileTokenSource,
    check_token,
    peek_claims,
    refuse_expired,
    refuse_provider_id_with_jwt,
)
from webid_provider._validation import VALIDATORS

OPERATION = "AssumeRoleWithWebIdentity"
DEFAULT_TIMEOUT_SECONDS = 60
_STRING_KEYS = ("RoleArn", "RoleSessionName", "WebIdentityToken", "ProviderId", "Policy")
_OPTION_OF = {
    "RoleArn": "role_arn",
    "RoleSessionName": "role_session_name",
    "WebIdentityToken": "web_identity_token",
    "ProviderId": "provider_id",
    "PolicyArns": "policy_arns",
    "Policy": "policy",
    "DurationSeconds": "duration_seconds",
}


def add_parser(subparsers: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    """Register the subcommand."""
    parser = subparsers.add_parser(
        "assume-role-with-web-identity",
        parents=parents,
        help="call STS like 'aws sts assume-role-with-web-identity', validated locally first",
        description=(
            "Call STS AssumeRoleWithWebIdentity once, unsigned, and print the response as "
            "'aws sts assume-role-with-web-identity' prints it. Every limit STS enforces that "
            "can be checked locally is checked before the call. No cache is used."
        ),
    )
    add = parser.add_argument
    add("--role-arn", help="[required] the role to assume")
    add("--role-session-name", help="[required] 2-64 characters of letters, digits and _+=,.@-")
    tokens = parser.add_mutually_exclusive_group()
    tokens.add_argument(
        "--web-identity-token", help="[required, or the file] the token (or file://path)"
    )
    tokens.add_argument("--web-identity-token-file", help="read the token from this file")
    add("--provider-id", help="OAuth 2.0 provider host; not for OpenID Connect tokens")
    add("--policy-arns", nargs="+", metavar="arn=ARN", help='arn=ARN ... or [{"arn": "ARN"}]')
    add("--policy", help="inline session policy (JSON text or file://path)")
    add("--duration-seconds", help="900-43200 (default 3600)")
    inputs = parser.add_mutually_exclusive_group()
    inputs.add_argument("--cli-input-json", help="parameters as JSON (text or file://path)")
    inputs.add_argument("--cli-input-yaml", help="parameters as YAML (text or file://path)")
    add(
        "--generate-cli-skeleton",
        nargs="?",
        const="input",
        choices=("input", "output", "yaml-input"),
        help="print an input (or yaml-input) skeleton, or validate and print a sample output",
    )
    add("--endpoint-url", help="send the request to this URL")
    add("--region", help="the STS region")
    add("--profile", help="profile for region, output, CA bundle and endpoint settings")
    add("--output", choices=OUTPUT_FORMATS, help="output format (default: profile's, or json)")
    add("--query", help="JMESPath query applied to the response")
    add("--color", choices=COLOR_CHOICES, default="auto", help="colour tables (default: auto)")
    add("--no-verify-ssl", dest="verify_ssl", action="store_false", help="skip TLS checks")
    add("--ca-bundle", help="CA certificates to verify TLS with")
    add("--cli-read-timeout", type=int, help="seconds; 0 blocks (default 60)")
    add("--cli-connect-timeout", type=int, help="seconds; 0 blocks (default 60)")
    for flag in ("--no-sign-request", "--no-paginate", "--no-cli-pager"):
        add(flag, action="store_true", help=argparse.SUPPRESS)  # aws CLI compatibility
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; exceptions are turned into exit codes by ``main``."""
    stdout = sys.stdout
    if args.generate_cli_skeleton == "input":
        format_response(INPUT_SKELETON, stdout, output="json", command_name=OPERATION)
        return 0
    if args.generate_cli_skeleton == "yaml-input":
        stdout.write(YAML_INPUT_SKELETON)
        return 0
    query = Query(args.query) if args.query is not None else None
    params = build_params(args)
    session = new_session(args.profile, args.region)
    output = args.output or _configured_output(session)
    if output not in OUTPUT_FORMATS:
        raise UsageError(
            f"output format {output!r} from the configuration is not one of "
            f"{', '.join(OUTPUT_FORMATS)}"
        )
    if output.startswith("yaml"):
        _yaml.require(f"--output {output}")  # before the call, not after it
    show = _printer(stdout, output, query, args.color)
    if args.generate_cli_skeleton == "output":
        show(OUTPUT_SKELETON)
        return 0
    client = _client(session, args)
    try:
        response = client.assume_role_with_web_identity(**params)
    except Exception as exc:
        raise to_sts_error(exc) from exc
    show(response)
    return 0


def _printer(
    stream: Any, output: str, query: Optional[Query], color: str
) -> Callable[[Mapping[str, Any]], None]:
    def show(response: Mapping[str, Any]) -> None:
        format_response(
            dict(response),
            stream,
            output=output,
            command_name=OPERATION,
            query=query,
            color=color,
            is_terminal=_isatty(stream),
        )

    return show


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def build_params(args: argparse.Namespace) -> dict[str, Any]:
    """The request parameters from the input document and options, validated.

    :raises UsageError: for missing parameters and malformed input documents
    :raises ConfigurationError: for values outside the operation's limits
    :raises TokenSourceError: for a token (or token file) STS would reject
    """
    given = _given_parameters(args)
    token_file = args.web_identity_token_file
    required = ("RoleArn", "RoleSessionName") + (() if token_file else ("WebIdentityToken",))
    missing = [_option(key) for key in required if given.get(key) is None]
    if missing:
        raise UsageError(f"the following arguments are required: {', '.join(missing)}")
    params: dict[str, Any] = {
        key: VALIDATORS[_OPTION_OF[key]](given[key]) for key in ("RoleArn", "RoleSessionName")
    }
    if token_file is not None:
        source = FileTokenSource(os.path.expanduser(token_file))
        token, described = source.read_token(), source.description
    else:
        described = "--web-identity-token"
        token = check_token(str(given["WebIdentityToken"]), described)
    params["WebIdentityToken"] = token
    for key in _OPTIONAL_PARAMS:
        if given.get(key) is not None:
            value = VALIDATORS[_OPTION_OF[key]](given[key])
            params[key] = [{"arn": arn} for arn in value] if key == "PolicyArns" else value
    _check_token_claims(token, params.get("ProviderId"), described)
    return params


#: the optional parameters, in the order they are judged
_OPTIONAL_PARAMS = ("ProviderId", "PolicyArns", "Policy", "DurationSeconds")


def _option(key: str) -> str:
    """The command-line option of a request parameter (``--role-arn``)."""
    return "--" + _OPTION_OF[key].replace("_", "-")


def _given_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The input document's parameters, overridden by the options given."""
    given = _input_document(args)
    for key, name in _OPTION_OF.items():
        value = getattr(args, name)
        if value is None:
            continue
        if key == "PolicyArns":
            given[key] = parse_policy_arns(value)
        elif key == "DurationSeconds":
            given[key] = value
        else:
            given[key] = read_param(value, _option(key))
    if args.web_identity_token_file is not None:
        given.pop("WebIdentityToken", None)
    return given


def _check_token_claims(token: str, provider_id: Optional[str], described: str) -> None:
    claims = peek_claims(token)
    refuse_provider_id_with_jwt(provider_id, claims, description=described, option="--provider-id")
    # No leeway here, unlike the refresher: the command reports what STS would say now.
    refuse_expired(claims, datetime.now(timezone.utc), description=described, leeway_seconds=0)


def _input_document(args: argparse.Namespace) -> dict[str, Any]:
    """The parameters of ``--cli-input-json`` or ``--cli-input-yaml``, checked like the aws CLI
    checks them against the operation's input shape; ``{}`` without either."""
    if args.cli_input_json is not None:
        option = "--cli-input-json"
        document = load_json(read_param(args.cli_input_json, option), option)
    elif args.cli_input_yaml is not None:
        option = "--cli-input-yaml"
        document = _yaml.load(read_param(args.cli_input_yaml, option), option)
    else:
        return {}
    if not isinstance(document, dict):
        raise UsageError(f"argument {option}: expected an object of parameters")
    unknown = sorted(str(key) for key in document if key not in INPUT_KEYS)
    if unknown:
        raise UsageError(
            f"argument {option}: unknown parameter {unknown[0]!r}; valid parameters: "
            f"{', '.join(INPUT_KEYS)}"
        )
    problem = _shape_problem(document)
    if problem is not None:
        raise UsageError(f"argument {option}: {problem}")
    parameters = dict(document)
    if parameters.get("PolicyArns") is not None:
        parameters["PolicyArns"] = [item["arn"] for item in parameters["PolicyArns"]]
    return parameters


def _shape_problem(document: dict[str, Any]) -> Optional[str]:
    """What in an input document does not fit the operation's input shape, if anything."""
    for key in _STRING_KEYS:
        value = document.get(key)
        # A policy document given as an object is taken as JSON.
        policy_object = key == "Policy" and isinstance(value, dict)
        if value is not None and not isinstance(value, str) and not policy_object:
            return f"{key} must be a string"
    duration = document.get("DurationSeconds")
    if duration is not None and (not isinstance(duration, int) or isinstance(duration, bool)):
        return "DurationSeconds must be an integer"
    arns = document.get("PolicyArns")
    if arns is not None and not (isinstance(arns, list) and all(map(is_arn_item, arns))):
        return 'PolicyArns must be a list of {"arn": "..."}'
    return None


def _configured_output(session: Any) -> str:
    """awscli's output chain: ``AWS_DEFAULT_OUTPUT``, the profile's ``output``, ``json``."""
    value = os.environ.get("AWS_DEFAULT_OUTPUT") or session.get_scoped_config().get("output")
    return str(value or "json")


def _timestamp_parser(session: Any) -> Callable[[Any], Any]:
    setting = session.get_scoped_config().get("cli_timestamp_format", "wire")
    if setting in ("wire", "none"):
        return _identity
    if setting == "iso8601":
        return _iso8601
    raise UsageError(
        f"cli_timestamp_format {setting!r} in the profile is not one of wire, none, iso8601"
    )


def _identity(value: Any) -> Any:
    return value


def _iso8601(value: Any) -> str:
    return str(parse_timestamp(value).isoformat())


def _timeout(value: Optional[int], option: str) -> Optional[int]:
    if value is None:
        return DEFAULT_TIMEOUT_SECONDS
    if value < 0:
        raise UsageError(f"argument {option}: must be 0 (no timeout) or more seconds")
    return value or None


def _client(session: Any, args: argparse.Namespace) -> Any:
    """An unsigned, single-attempt STS client that keeps timestamps as STS sent them."""
    if args.endpoint_url is not None:
        parsed = urlparse(args.endpoint_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UsageError(
                f"argument --endpoint-url: {args.endpoint_url!r} is not a URL "
                "(expected http://<host>/ or https://<host>/)"
            )
    # The same switch awscli flips in scalarparse.py: raw timestamp strings, blobs untouched.
    session.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=_timestamp_parser(session), blob_parser=_identity
    )
    config = Config(
        **single_attempt_options(
            connect_timeout=_timeout(args.cli_connect_timeout, "--cli-connect-timeout"),
            read_timeout=_timeout(args.cli_read_timeout, "--cli-read-timeout"),
        )
    )
    verify: Any = False if not args.verify_ssl else args.ca_bundle
    if verify is False:
        import warnings

        from urllib3.exceptions import InsecureRequestWarning

        warnings.simplefilter("ignore", InsecureRequestWarning)  # asked for explicitly
    try:
        return session.create_client(
            "sts",
            region_name=args.region,
            endpoint_url=args.endpoint_url,
            verify=verify,
            config=config,
        )
    except NoRegionError as exc:
        raise UsageError("no region: give --region or set AWS_DEFAULT_REGION") from exc
    except ValueError as exc:
        raise UsageError(f"cannot create the STS client: {exc}") from exc
