"""Resolve and validate the settings of one web identity exchange.

Every option is resolved from, in order: call arguments, the IRSA environment variables
(``AWS_ROLE_ARN``, ``AWS_WEB_IDENTITY_TOKEN_FILE``, ``AWS_ROLE_SESSION_NAME``), then the active
profile of ``~/.aws/config``. Like botocore, the environment is skipped when the session was
given a profile explicitly (``boto3.Session(profile_name=...)``): an explicit profile is a
stronger statement than the ambient pod environment.

Every value is checked against the limits AssumeRoleWithWebIdentity enforces
(:mod:`webid_provider._validation`), so bad input fails with a message naming the field (and the
profile key it came from) before any network call; :func:`check_options` judges the options
passed in code as soon as ``register()``/``install()``/``session()`` get them.

Security: profile files are configuration written by the user; values are validated but never
executed here (a ``web_identity_token_command`` runs only in :mod:`webid_provider._tokens`,
without a shell). Messages never quote a token.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from webid_provider._cache_dir import ENV_CACHE_DIR, choose_cache_dir
from webid_provider._errors import ConfigurationError
from webid_provider._token_spec import TokenSpec, is_text_path, token_spec
from webid_provider._validation import VALIDATORS

logger = logging.getLogger(__name__)


ENV_ROLE_ARN = "AWS_ROLE_ARN"
ENV_TOKEN_FILE = "AWS_WEB_IDENTITY_TOKEN_FILE"
ENV_SESSION_NAME = "AWS_ROLE_SESSION_NAME"

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


def check_options(options: Mapping[str, Any]) -> None:
    """Judge the options passed in code now, as :func:`resolve_settings` will, so that
    ``register(duration_seconds=5)`` fails at once rather than at the first credential request.

    Only what the caller passed is judged: unset values may still come from the environment or
    a profile later.

    :raises ConfigurationError: for unknown options, conflicting token sources, or a value of the
        wrong type or outside the operation's limits
    """
    given = {name: value for name, value in options.items() if value is not None}
    _check_option_names(given)
    _token_spec_of_arguments(given)
    if "cache_dir" in given:
        _cache_dir_argument(given["cache_dir"])
    for name, validate in VALIDATORS.items():
        if name in given:
            validate(given[name])


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
    _check_option_names(options)
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
    values = {name: pick(name) for name in VALIDATORS}
    if values["role_arn"] is None:
        raise ConfigurationError(
            f"role_arn is required with the {token.describe()} (set the role_arn option, "
            f"{ENV_ROLE_ARN}, or role_arn in the profile)",
            field="role_arn",
        )
    cache_dir, origins["cache_dir"] = cache_dir_and_origin(
        options.get("cache_dir", DEFAULT_CACHE_DIR), environ
    )

    def valid(name: str, validate: Callable[[Any], Any]) -> Any:
        try:
            return validate(values[name])
        except ConfigurationError as exc:  # name the profile and key the value came from
            origin = origins.get(name, "")
            if not origin.startswith("profile "):
                raise
            raise ConfigurationError(f"{origin}: {exc}", field=exc.field) from exc

    return WebIdentitySettings(
        token=token,
        cache_dir=cache_dir,
        profile_name=profile_name,
        origins=origins,
        **{name: valid(name, validate) for name, validate in VALIDATORS.items()},
    )


def _check_option_names(options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - OPTION_NAMES)
    if unknown:
        raise ConfigurationError(
            f"unknown option {unknown[0]!r}; valid options: {', '.join(sorted(OPTION_NAMES))}",
            field=unknown[0],
        )


def _token_spec_of_arguments(options: Mapping[str, Any]) -> Optional[TokenSpec]:
    """The token source the call arguments name, if any.

    :raises ConfigurationError: for more than one, or one of the wrong type
    """
    given = [name for name in TOKEN_OPTIONS if options.get(name) is not None]
    if len(given) > 1:
        raise ConfigurationError(
            f"give one token source, not {' and '.join(given)}", field=given[1]
        )
    return token_spec(given[0], options[given[0]]) if given else None


def _resolve_token_spec(
    options: Mapping[str, Any],
    env: Mapping[str, str],
    profile: Mapping[str, Any],
    profile_origin: str,
    origins: dict[str, str],
) -> Optional[TokenSpec]:
    from_arguments = _token_spec_of_arguments(options)
    if from_arguments is not None:
        origins["token"] = "argument"
        return from_arguments
    if env.get(ENV_TOKEN_FILE):
        origins["token"] = f"env {ENV_TOKEN_FILE}"
        return token_spec("web_identity_token_file", env[ENV_TOKEN_FILE])
    in_profile = [name for name in PROFILE_TOKEN_OPTIONS if profile.get(PROFILE_KEYS[name] or "")]
    if len(in_profile) > 1:
        raise ConfigurationError(
            f"{profile_origin} sets both web_identity_token_file and web_identity_token_command;"
            " keep one",
            field="web_identity_token_command",
        )
    if in_profile:
        origins["token"] = f"{profile_origin} key {in_profile[0]}"
        return token_spec(in_profile[0], profile[PROFILE_KEYS[in_profile[0]] or ""])
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
        close = [] if key in ours else _closest(key, ours)
        if close:
            raise ConfigurationError(
                f"{profile_origin} has an unknown key {key!r}; did you mean {close[0]!r}?",
                field=key,
            )


def cache_dir_and_origin(value: Any, environ: Mapping[str, str]) -> tuple[Optional[Path], str]:
    """The cache directory and where it came from: ``None`` means memory only (the argument
    ``None``, or no home directory for the default, which logs one warning per process).

    The choice itself is :func:`webid_provider._cache_dir.choose_cache_dir`'s, which the
    botocore-free ``credential-process`` path shares.

    :param value: the ``cache_dir`` argument, or :data:`DEFAULT_CACHE_DIR` when not given
    :raises ConfigurationError: for an argument that is not a path
    """
    if value is None:
        return None, "argument (memory only)"
    argument = None if isinstance(value, _Default) else _cache_dir_argument(value)
    chosen, origin = choose_cache_dir(argument, environ)
    if chosen is None:
        _warn_memory_only_once()
        return None, origin
    return Path(chosen), origin


def resolve_cache_dir(value: Any, environ: Mapping[str, str]) -> Optional[Path]:
    """The cache directory alone (see :func:`cache_dir_and_origin`)."""
    return cache_dir_and_origin(value, environ)[0]


def _cache_dir_argument(value: Any) -> str:
    if not is_text_path(value):
        raise ConfigurationError(
            f"cache_dir must be a path (str or os.PathLike) or None, not {type(value).__name__}",
            field="cache_dir",
        )
    text: str = os.fspath(value)
    return text


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


def _closest(key: str, known: Any) -> list[str]:
    """The known key closest to a misspelled one.

    difflib loads on the first profile key that is not ours (``region`` is enough), so a
    process configured by environment variables alone never loads it.
    """
    import difflib

    return difflib.get_close_matches(key, known, n=1, cutoff=0.8)
