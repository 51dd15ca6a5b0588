"""The limits AssumeRoleWithWebIdentity enforces that can be checked locally, and their checks.

From the operation's reference (DESIGN.md, "Limits checked before any network call"): the role
ARN is an IAM role ARN, the session name 2-64 of ``[\\w+=,.@-]``, the duration 900-43200 s,
the inline policy valid JSON of at most 2048 characters, at most 10 policy ARNs, and the
provider id a host name. Each check raises :class:`~webid_provider._errors.ConfigurationError`
naming the field and the value's problem, so bad input fails before any network call; the
settings (:mod:`webid_provider._settings`) and ``assume-role-with-web-identity`` use them.

Security: values are quoted in messages only where they cannot be a token (ARNs, names).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional

from webid_provider._errors import ConfigurationError

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
    return _matching(
        value,
        SESSION_NAME_PATTERN,
        "role_session_name",
        "2-64 characters of letters, digits and _+=,.@-",
    )


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
    """Accept a JSON object as text or as a dict, as the text STS will get.

    A dict is written as compact JSON with sorted keys; a string is returned stripped of
    surrounding whitespace but otherwise as given (STS counts its characters as sent). The
    cache key compares policies parsed, so equal policies share an entry either way.

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
    return _matching(
        value,
        PROVIDER_ID_PATTERN,
        "provider_id",
        "the host name of an OAuth 2.0 provider (such as www.amazon.com), without scheme or port",
    )


def _matching(value: Any, pattern: re.Pattern[str], field: str, expected: str) -> Optional[str]:
    """``value`` stripped, when it matches ``pattern``; ``None`` stays ``None``.

    :raises ConfigurationError: ``<field> '<value>' must be <expected>``
    """
    if value is None:
        return None
    text = str(value).strip()
    if not pattern.match(text):
        raise ConfigurationError(f"{field} {text!r} must be {expected}", field=field)
    return text


#: option name -> its check, in the order the settings judge values
VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "role_arn": validate_role_arn,
    "role_session_name": validate_session_name,
    "duration_seconds": validate_duration,
    "policy": validate_policy,
    "policy_arns": validate_policy_arns,
    "provider_id": validate_provider_id,
}
