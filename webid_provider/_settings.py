"""Resolve and validate the settings of one web identity exchange.

Every option is resolved from, in order: call arguments, the IRSA environment variables
(``AWS_ROLE_ARN``, ``AWS_WEB_IDENTITY_TOKEN_FILE``, ``AWS_ROLE_SESSION_NAME``), then the active
profile of ``~/.aws/config``. Like botocore, the environment is skipped when the session was
given a profile explicitly (``boto3.Session(profile_name=...)``): an explicit profile is a
stronger statement than the ambient pod environment.

Every limit AssumeRoleWithWebIdentity enforces that can be checked locally is checked here, so
bad input fails with a message naming the field before any network call.

Security: profile files are configuration written by the user; values are validated but never
executed here (a ``web_identity_token_command`` runs only in :mod:`webid_provider._tokens`,
without a shell). Messages never quote a token.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import shlex
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

from webid_provider._errors import ConfigurationError

logger = logging.getLogger(__name__)

TokenCallable = Callable[[], Union[str, bytes]]
PathLike = Union[str, "os.PathLike[str]"]

#: An IAM role ARN as IAM accepts it: a path of printable ASCII (``\u0021-\u007E``) between
#: slashes, at most 512 characters, then a name of 1-64 ``[\w+=,.@-]``.
ROLE_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:iam::\d{12}:role(?P<path>/(?:[\x21-\x7e]*/)?)(?P<name>[\w+=,.@-]{1,64})$",
    re.ASCII,
)
MAX_ROLE_PATH_CHARS = 512
#: STS's limit on ``RoleArn``.
MAX_ROLE_ARN_CHARS = 2048
POLICY_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:iam::(\d{12}|aws):policy/[\w+=,.@/-]{1,512}$", re.ASCII
)
SESSION_NAME_PATTERN = re.compile(r"^[\w+=,.@-]{2,64}$", re.ASCII)
PROVIDER_ID_PATTERN = re.compile(r"^[A-Za-z0-9.-]{4,2048}$")
MIN_DURATION_SECONDS = 900
MAX_DURATION_SECONDS = 43200
MAX_POLICY_CHARS = 2048
MAX_POLICY_ARNS = 10

ENV_ROLE_ARN = "AWS_ROLE_ARN"
ENV_TOKEN_FILE = "AWS_WEB_IDENTITY_TOKEN_FILE"
ENV_SESSION_NAME = "AWS_ROLE_SESSION_NAME"
ENV_CACHE_DIR = "WEBID_PROVIDER_CACHE_DIR"

#: option name -> profile key (``None``: not read from profiles)
PROFILE_KEYS: dict[str, Optional[str]] = {
    "role_arn": "role_arn",
    "web_identity_token_file": "web_identity_token_file",
    "web_identity_token": None,
    "web_identity_token_command": "web_identity_token_command",
    "role_session_name": "role_session_name",
    "duration_seconds": "duration_seconds",
    "policy": "web_identity_policy",
    "policy_arns": "web_identity_policy_arns",
    "provider_id": "web_identity_provider_id",
    "cache_dir": None,
}
ENV_KEYS: dict[str, str] = {
    "role_arn": ENV_ROLE_ARN,
    "web_identity_token_file": ENV_TOKEN_FILE,
    "role_session_name": ENV_SESSION_NAME,
}
OPTION_NAMES = frozenset(PROFILE_KEYS)
TOKEN_OPTIONS = ("web_identity_token_file", "web_identity_token", "web_identity_token_command")
#: the token options a profile may carry
PROFILE_TOKEN_OPTIONS = ("web_identity_token_file", "web_identity_token_command")


class _Default:
    """Marker for "``cache_dir`` not given": use the environment, then the default."""

    def __repr__(self) -> str:
        return "DEFAULT_CACHE_DIR"


DEFAULT_CACHE_DIR: Any = _Default()


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


@dataclass(frozen=True)
class WebIdentitySettings:
    """Everything one AssumeRoleWithWebIdentity exchange needs, validated.

    ``origins`` says where each value came from (``argument``, ``env AWS_ROLE_ARN``,
    ``profile dev``...) for ``webid-provider inspect`` and for error messages.
    """

    role_arn: str
    token: TokenSpec
    role_session_name: Optional[str] = None
    duration_seconds: Optional[int] = None
    policy: Optional[str] = None
    policy_arns: tuple[str, ...] = ()
    provider_id: Optional[str] = None
    cache_dir: Optional[Path] = None
    profile_name: Optional[str] = None
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)


def resolve_settings(
    options: Mapping[str, Any],
    *,
    environ: Mapping[str, str],
    profile_name: Optional[str] = None,
    profile: Optional[Mapping[str, Any]] = None,
    use_environment: bool = True,
) -> Optional[WebIdentitySettings]:
    """Merge arguments, environment and profile into validated settings.

    :param options: call arguments; keys are the option names of :data:`PROFILE_KEYS`
    :param environ: the process environment
    :param profile_name: the active profile, for messages and ``origins``
    :param profile: the active profile's keys from ``~/.aws/config``
    :param use_environment: ``False`` when the session's profile was set explicitly
    :returns: the settings, or ``None`` when no token source is configured anywhere (the
        credential chain then moves on to its next provider)
    :raises ConfigurationError: for unknown options, conflicting token sources, a token source
        without a role, or any value outside the operation's limits
    """
    unknown = sorted(set(options) - OPTION_NAMES)
    if unknown:
        raise ConfigurationError(
            f"unknown option {unknown[0]!r}; valid options: {', '.join(sorted(OPTION_NAMES))}",
            field=unknown[0],
        )
    profile = profile or {}
    env = environ if use_environment else {}
    origins: dict[str, str] = {}
    profile_origin = f"profile {profile_name or 'default'}"

    def pick(name: str) -> Any:
        if options.get(name) is not None:
            origins[name] = "argument"
            return options[name]
        env_key = ENV_KEYS.get(name)
        if env_key and env.get(env_key):
            origins[name] = f"env {env_key}"
            return env[env_key]
        profile_key = PROFILE_KEYS[name]
        if profile_key and profile.get(profile_key) not in (None, ""):
            origins[name] = f"{profile_origin} key {profile_key}"
            return profile[profile_key]
        return None

    token = _resolve_token_spec(options, env, profile, profile_origin, origins)
    if token is not None or _role_without_other_use(profile):
        _check_profile_keys(profile, profile_origin)
    if token is None:
        return None
    role_arn = pick("role_arn")
    if role_arn is None:
        raise ConfigurationError(
            f"role_arn is required with the {token.describe()} (set the role_arn option, "
            f"{ENV_ROLE_ARN}, or role_arn in the profile)",
            field="role_arn",
        )
    cache_dir = resolve_cache_dir(options.get("cache_dir", DEFAULT_CACHE_DIR), environ)
    origins["cache_dir"] = _cache_dir_origin(options.get("cache_dir", DEFAULT_CACHE_DIR), environ)

    def valid(name: str, validate: Callable[[Any], Any], value: Any) -> Any:
        try:
            return validate(value)
        except ConfigurationError as exc:  # name the profile and key the value came from
            origin = origins.get(name, "")
            if not origin.startswith("profile "):
                raise
            raise ConfigurationError(f"{origin}: {exc}", field=exc.field) from exc

    return WebIdentitySettings(
        role_arn=valid("role_arn", validate_role_arn, role_arn),
        token=token,
        role_session_name=valid(
            "role_session_name", validate_session_name, pick("role_session_name")
        ),
        duration_seconds=valid("duration_seconds", validate_duration, pick("duration_seconds")),
        policy=valid("policy", validate_policy, pick("policy")),
        policy_arns=valid("policy_arns", validate_policy_arns, pick("policy_arns")),
        provider_id=valid("provider_id", validate_provider_id, pick("provider_id")),
        cache_dir=cache_dir,
        profile_name=profile_name,
        origins=origins,
    )


def _resolve_token_spec(
    options: Mapping[str, Any],
    env: Mapping[str, str],
    profile: Mapping[str, Any],
    profile_origin: str,
    origins: dict[str, str],
) -> Optional[TokenSpec]:
    given = [name for name in TOKEN_OPTIONS if options.get(name) is not None]
    if len(given) > 1:
        raise ConfigurationError(
            f"give one token source, not {' and '.join(given)}", field=given[1]
        )
    if given:
        origins["token"] = "argument"
        return _token_spec(given[0], options[given[0]])
    if env.get(ENV_TOKEN_FILE):
        origins["token"] = f"env {ENV_TOKEN_FILE}"
        return _token_spec("web_identity_token_file", env[ENV_TOKEN_FILE])
    in_profile = [name for name in PROFILE_TOKEN_OPTIONS if profile.get(PROFILE_KEYS[name] or "")]
    if len(in_profile) > 1:
        raise ConfigurationError(
            f"{profile_origin} sets both web_identity_token_file and web_identity_token_command;"
            " keep one",
            field="web_identity_token_command",
        )
    if in_profile:
        origins["token"] = f"{profile_origin} key {in_profile[0]}"
        return _token_spec(in_profile[0], profile[PROFILE_KEYS[in_profile[0]] or ""])
    return None


def _role_without_other_use(profile: Mapping[str, Any]) -> bool:
    """A ``role_arn`` no other provider will use: the profile is meant for web identity."""
    return bool(profile.get("role_arn")) and not (
        profile.get("source_profile") or profile.get("credential_source")
    )


def _check_profile_keys(profile: Mapping[str, Any], profile_origin: str) -> None:
    """Refuse a key that is a near miss of one of ours (``web_identity_token_fle``).

    botocore ignores unknown keys, so a typo would silently drop a token source or, worse, a
    session policy. Keys that are not close to ours (``region``, ``output``...) pass.

    :raises ConfigurationError: naming the profile, the key and the closest known key
    """
    ours = [key for key in PROFILE_KEYS.values() if key]
    for key in profile:
        close = [] if key in ours else difflib.get_close_matches(key, ours, n=1, cutoff=0.8)
        if close:
            raise ConfigurationError(
                f"{profile_origin} has an unknown key {key!r}; did you mean {close[0]!r}?",
                field=key,
            )


def _token_spec(option: str, value: Any) -> TokenSpec:
    if option == "web_identity_token_file":
        if not _is_text_path(value):
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


def validate_role_arn(value: Any) -> str:
    """Accept what IAM accepts for a role, which STS accepts too.

    :raises ConfigurationError: unless ``value`` is an IAM role ARN
    """
    text = str(value).strip()
    match = ROLE_ARN_PATTERN.match(text) if len(text) <= MAX_ROLE_ARN_CHARS else None
    if match is None or len(match.group("path")) > MAX_ROLE_PATH_CHARS:
        raise ConfigurationError(
            f"role_arn {text[:100]!r}{'...' if len(text) > 100 else ''} is not an IAM role ARN "
            "(expected arn:<partition>:iam::<12-digit account>:role/<path/>name, the path "
            "printable ASCII without spaces, at most 512 characters, the name 1-64 of "
            "letters, digits and _+=,.@-)",
            field="role_arn",
        )
    return text


def validate_session_name(value: Any) -> Optional[str]:
    """:raises ConfigurationError: unless 2-64 characters of ``[\\w+=,.@-]``"""
    if value is None:
        return None
    text = str(value).strip()
    if not SESSION_NAME_PATTERN.match(text):
        raise ConfigurationError(
            f"role_session_name {text!r} must be 2-64 characters of letters, digits and _+=,.@-",
            field="role_session_name",
        )
    return text


def validate_duration(value: Any) -> Optional[int]:
    """:raises ConfigurationError: unless a whole number of seconds in 900-43200"""
    if value is None:
        return None
    try:
        seconds = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError as exc:
        raise ConfigurationError(
            f"duration_seconds {value!r} is not a whole number of seconds",
            field="duration_seconds",
        ) from exc
    if isinstance(seconds, bool) or not MIN_DURATION_SECONDS <= seconds <= MAX_DURATION_SECONDS:
        raise ConfigurationError(
            f"duration_seconds {value!r} is outside {MIN_DURATION_SECONDS}-{MAX_DURATION_SECONDS}",
            field="duration_seconds",
        )
    return seconds


def validate_policy(value: Any) -> Optional[str]:
    """Accept a JSON string or a dict; return compact JSON.

    :raises ConfigurationError: for invalid JSON, a non-object, or more than 2048 characters
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        try:
            text = json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise ConfigurationError(
                f"policy cannot be written as JSON: {exc}", field="policy"
            ) from exc
    elif isinstance(value, str):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError) as exc:
            raise ConfigurationError(f"policy is not valid JSON: {exc}", field="policy") from exc
        if not isinstance(parsed, dict):
            raise ConfigurationError("policy must be a JSON object", field="policy")
        text = value.strip()
    else:
        raise ConfigurationError("policy must be a JSON string or a dict", field="policy")
    if len(text) > MAX_POLICY_CHARS:
        raise ConfigurationError(
            f"policy is {len(text)} characters; STS allows at most {MAX_POLICY_CHARS}",
            field="policy",
        )
    return text


def validate_policy_arns(value: Any) -> tuple[str, ...]:
    """Accept a list, or a comma/whitespace separated string (profile form).

    :raises ConfigurationError: for more than 10 entries or an entry that is not a policy ARN
    """
    if value is None:
        return ()
    if isinstance(value, str):
        items = [part for part in re.split(r"[\s,]+", value) if part]
    elif isinstance(value, Sequence):
        items = [
            str(item.get("arn", "")) if isinstance(item, Mapping) else str(item) for item in value
        ]
    else:
        raise ConfigurationError("policy_arns must be a list of ARNs", field="policy_arns")
    if len(items) > MAX_POLICY_ARNS:
        raise ConfigurationError(
            f"policy_arns has {len(items)} entries; STS allows at most {MAX_POLICY_ARNS}",
            field="policy_arns",
        )
    for item in items:
        if not POLICY_ARN_PATTERN.match(item):
            raise ConfigurationError(
                f"policy_arns entry {item!r} is not an IAM policy ARN", field="policy_arns"
            )
    return tuple(items)


def validate_provider_id(value: Any) -> Optional[str]:
    """:raises ConfigurationError: unless a host name such as ``www.amazon.com``"""
    if value is None:
        return None
    text = str(value).strip()
    if not PROVIDER_ID_PATTERN.match(text):
        raise ConfigurationError(
            f"provider_id {text!r} must be the host name of an OAuth 2.0 provider "
            "(such as www.amazon.com), without scheme or port",
            field="provider_id",
        )
    return text


def resolve_cache_dir(value: Any, environ: Mapping[str, str]) -> Optional[Path]:
    """``None`` means memory only; otherwise the argument, the env variable, or the default.

    The default sits under ``~/.aws`` beside the CLI's own cache but in its own directory,
    because our entries are keyed differently and must never be read by botocore.
    """
    if value is None:
        return None
    if not isinstance(value, _Default):
        if not _is_text_path(value):
            raise ConfigurationError(
                f"cache_dir must be a path (str or os.PathLike) or None, not "
                f"{type(value).__name__}",
                field="cache_dir",
            )
        return Path(os.path.expanduser(os.fspath(value)))
    if environ.get(ENV_CACHE_DIR):
        return Path(os.path.expanduser(environ[ENV_CACHE_DIR]))
    home = _home_directory()
    if home is None:
        _warn_memory_only_once()
        return None
    return Path(home) / ".aws" / "webid-provider" / "cache"


def _is_text_path(value: Any) -> bool:
    """A non-empty str or ``os.PathLike[str]`` without NUL bytes (no bytes paths)."""
    try:
        text = os.fspath(value)
    except TypeError:
        return False
    return isinstance(text, str) and bool(text) and "\0" not in text


def _home_directory() -> Optional[str]:
    """``HOME``, else the passwd entry's home, as ``~`` would; ``None`` when there is neither
    (containers often run a uid without a passwd entry and without ``HOME``)."""
    home = os.environ.get("HOME")
    if home:
        return home
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_dir or None
    except (ImportError, KeyError):
        return None


_memory_only_lock = threading.Lock()
_memory_only_warned = False


def _warn_memory_only_once() -> None:
    # The README promises one warning when the cache cannot be on disk (issue 11, item 10).
    global _memory_only_warned
    with _memory_only_lock:
        if _memory_only_warned:
            return
        _memory_only_warned = True
        logger.warning(
            "no home directory (HOME is unset and uid %s has no passwd entry): the credential "
            "cache is memory-only; set %s or cache_dir to share credentials between processes",
            os.getuid() if hasattr(os, "getuid") else "?",
            ENV_CACHE_DIR,
        )


def _cache_dir_origin(value: Any, environ: Mapping[str, str]) -> str:
    if value is None:
        return "argument (memory only)"
    if not isinstance(value, _Default):
        return "argument"
    if environ.get(ENV_CACHE_DIR):
        return f"env {ENV_CACHE_DIR}"
    return "default" if _home_directory() is not None else "default (no home: memory only)"
