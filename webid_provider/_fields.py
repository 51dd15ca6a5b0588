"""Reading and writing the fields of an STS response as JSON holds them: one set of rules.

A cache entry stores the AssumeRoleWithWebIdentity response with ISO 8601 timestamps. Two
readers must agree on what they accept: :meth:`webid_provider._result.WebIdentityResult.
from_response` (every path that loads an entry) and the fast ``credential-process`` path
(:mod:`webid_provider._cli._fast`), which must not import ``dataclasses`` or botocore. Both take
these rules from here. Timestamps are aware: a naive or unparsable one is an error, never a
guess.

Standard library only (``re``, ``datetime``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Optional

_ACCOUNT_IN_ARN = re.compile(r"^arn:[^:]+:(?:sts|iam)::(\d{12}):")
#: the optional text fields of the response
OPTIONAL_TEXT_FIELDS = ("SubjectFromWebIdentityToken", "Audience", "Provider", "SourceIdentity")


def format_timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with an explicit offset, the form botocore and the aws CLI print."""
    return value.astimezone(timezone.utc).isoformat()


def parse_timestamp(value: object) -> datetime:
    """Parse an aware timestamp (a ``datetime``, or ISO 8601 text, ``Z`` allowed).

    :raises ValueError: for naive, missing or malformed timestamps
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
    else:
        raise ValueError("timestamp is missing")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("timestamp has no timezone")
    return parsed.astimezone(timezone.utc)


def required_text(data: Mapping[str, Any], key: str) -> str:
    """A non-empty string field. :raises ValueError: when missing, empty or not a string"""
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} is missing")
    return value


def optional_text(data: Mapping[str, Any], key: str) -> Optional[str]:
    """A string field that may be absent. :raises ValueError: when present but not a string"""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string")
    return value


def packed_policy_size(response: Mapping[str, Any]) -> Optional[int]:
    """``PackedPolicySize``, when present. :raises ValueError: when not an integer"""
    size = response.get("PackedPolicySize")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool)):
        raise ValueError("PackedPolicySize is not an integer")
    return size


def account_in_arn(arn: str) -> Optional[str]:
    """The AWS account of an assumed-role (or IAM) ARN, ``None`` when it names none."""
    match = _ACCOUNT_IN_ARN.match(arn)
    return match.group(1) if match else None
