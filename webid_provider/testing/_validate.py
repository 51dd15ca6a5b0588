"""The parameter checks real STS makes on an AssumeRoleWithWebIdentity request.

moto accepts any role ARN, any session name and durations up to 50000 seconds (see the
research notes, section H), so the emulator's front makes these checks itself before it lets
moto mint credentials; ``_token`` checks the token. Codes and messages follow real STS:

- Member constraints (lengths, patterns, ranges, missing members) answer ``ValidationError``
  with AWS's "N validation error(s) detected: Value '...' at 'member' failed to satisfy
  constraint: ..." text. The token's value is never echoed (it is a sensitive member).
- A role ARN that is not ``arn:<partition>:iam::<12 digits>:role/<path/name>`` answers
  ``ValidationError`` "Request ARN is invalid"; a duration above the role's maximum answers
  ``ValidationError`` "The requested DurationSeconds exceeds the MaxSessionDuration set for
  this role.".
- An inline policy that is not a JSON object with a ``Statement`` answers
  ``MalformedPolicyDocument``; policy plus policy ARN text above 2048 characters answers
  ``PackedPolicyTooLarge`` (see :func:`packed_policy_size`).

Security: the token travels in :class:`WebIdentityRequest` for the duration of one request
only, is excluded from its ``repr``, and is never part of an error message.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

_ROLE_ARN = re.compile(
    r"^arn:(aws[a-z-]*):iam::(\d{12}):role/((?:[\x21-\x7e]+/)*)([\w+=,.@-]{1,64})$"
)
_SESSION_NAME = re.compile(r"^[\w+=,.@-]*$")
_POLICY_CHARS = re.compile(r"^[\t\n\r\x20-\xff]+$")
_MAX_POLICY_ARNS = 10
_PACKED_LIMIT = 2048

#: Role maximum session duration when the test did not add the role (the STS upper bound).
DEFAULT_MAX_SESSION_DURATION = 43200


class StsFault(Exception):
    """An STS error answer: code, message and HTTP status (``Sender`` below 500)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class WebIdentityRequest:
    """The parameters of one AssumeRoleWithWebIdentity request, as sent (not yet valid)."""

    role_arn: Optional[str]
    role_session_name: Optional[str]
    token: Optional[str] = field(repr=False)
    duration_text: Optional[str]
    policy: Optional[str]
    policy_arns: Tuple[str, ...]
    provider_id: Optional[str]

    @property
    def token_sha256(self) -> str:
        """SHA-256 hex of the token (of the empty string when absent)."""
        return hashlib.sha256((self.token or "").encode("utf-8")).hexdigest()

    @property
    def duration_seconds(self) -> Optional[int]:
        """``DurationSeconds`` as an integer, ``None`` when absent or not an integer."""
        try:
            return int(self.duration_text) if self.duration_text is not None else None
        except ValueError:
            return None


def parse_request(params: Mapping[str, Sequence[str]]) -> WebIdentityRequest:
    """Read the query-protocol form members (``PolicyArns.member.N.arn`` in order of N)."""

    def one(name: str) -> Optional[str]:
        values = params.get(name)
        return values[0] if values else None

    arns: List[Tuple[int, str]] = []
    for key, values in params.items():
        match = re.fullmatch(r"PolicyArns\.member\.(\d+)\.arn", key)
        if match and values:
            arns.append((int(match.group(1)), values[0]))
    return WebIdentityRequest(
        role_arn=one("RoleArn"),
        role_session_name=one("RoleSessionName"),
        token=one("WebIdentityToken"),
        duration_text=one("DurationSeconds"),
        policy=one("Policy"),
        policy_arns=tuple(arn for _, arn in sorted(arns)),
        provider_id=one("ProviderId"),
    )


def _constraint(value: Optional[str], member: str, constraint: str) -> str:
    shown = "null" if value is None else f"'{value}'"
    return f"Value {shown} at '{member}' failed to satisfy constraint: {constraint}"


def check_parameters(request: WebIdentityRequest, max_session_duration: int) -> None:
    """Check every member against the STS model and the role's MaxSessionDuration.

    :raises StsFault: ``ValidationError`` or ``MalformedPolicyDocument``
    """
    problems: List[str] = []
    arn = request.role_arn
    if arn is None:
        problems.append(_constraint(None, "roleArn", "Member must not be null"))
    elif not 20 <= len(arn) <= 2048:
        bound = "greater than or equal to 20" if len(arn) < 20 else "less than or equal to 2048"
        problems.append(_constraint(arn, "roleArn", f"Member must have length {bound}"))
    name = request.role_session_name
    if name is None:
        problems.append(_constraint(None, "roleSessionName", "Member must not be null"))
    else:
        if not 2 <= len(name) <= 64:
            bound = "greater than or equal to 2" if len(name) < 2 else "less than or equal to 64"
            problems.append(
                _constraint(name, "roleSessionName", f"Member must have length {bound}")
            )
        if not _SESSION_NAME.match(name):
            problems.append(
                _constraint(
                    name,
                    "roleSessionName",
                    "Member must satisfy regular expression pattern: [\\w+=,.@-]*",
                )
            )
    token = request.token
    if token is None:
        problems.append(
            "Value null at 'webIdentityToken' failed to satisfy constraint: Member must not be null"
        )
    elif not 4 <= len(token) <= 20000:
        bound = "greater than or equal to 4" if len(token) < 4 else "less than or equal to 20000"
        problems.append(
            "Value at 'webIdentityToken' failed to satisfy constraint: "
            f"Member must have length {bound}"
        )
    duration = request.duration_seconds
    if request.duration_text is not None:
        if duration is None:
            raise StsFault(
                "ValidationError", f"Invalid value for DurationSeconds: {request.duration_text}"
            )
        if not 900 <= duration <= 43200:
            bound = (
                "greater than or equal to 900" if duration < 900 else "less than or equal to 43200"
            )
            problems.append(
                _constraint(str(duration), "durationSeconds", f"Member must have value {bound}")
            )
    policy = request.policy
    if policy is not None:
        if len(policy) > 2048 or not policy:
            bound = "less than or equal to 2048" if policy else "greater than or equal to 1"
            problems.append(_constraint(policy, "policy", f"Member must have length {bound}"))
        elif not _POLICY_CHARS.match(policy):
            problems.append(
                _constraint(
                    policy,
                    "policy",
                    "Member must satisfy regular expression pattern: "
                    "[\\u0009\\u000A\\u000D\\u0020-\\u00FF]+",
                )
            )
    if len(request.policy_arns) > _MAX_POLICY_ARNS:
        listing = (
            "[" + ", ".join(f"PolicyDescriptorType(arn={a})" for a in request.policy_arns) + "]"
        )
        problems.append(
            _constraint(
                listing,
                "policyArns",
                f"Member must have length less than or equal to {_MAX_POLICY_ARNS}",
            )
        )
    for index, policy_arn in enumerate(request.policy_arns, start=1):
        if not 20 <= len(policy_arn) <= 2048:
            problems.append(
                _constraint(
                    policy_arn,
                    f"policyArns.{index}.member.arn",
                    "Member must have length greater than or equal to 20",
                )
            )
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        raise StsFault(
            "ValidationError", f"{count} validation {noun} detected: " + "; ".join(problems)
        )
    assert arn is not None
    if not _ROLE_ARN.match(arn):
        raise StsFault("ValidationError", "Request ARN is invalid")
    for policy_arn in request.policy_arns:
        if not policy_arn.startswith("arn:") or policy_arn.count(":") < 5:
            raise StsFault("ValidationError", f"ARN {policy_arn} is not valid.")
    if duration is not None and duration > max_session_duration:
        raise StsFault(
            "ValidationError",
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        )
    if policy is not None:
        try:
            document = json.loads(policy)
        except ValueError:
            raise StsFault(
                "MalformedPolicyDocument", "The policy is not in the valid JSON format."
            ) from None
        if not isinstance(document, dict) or "Statement" not in document:
            raise StsFault("MalformedPolicyDocument", "Syntax errors in policy.")


def packed_policy_size(request: WebIdentityRequest) -> Optional[int]:
    """An approximation of STS's ``PackedPolicySize``, or ``None`` when no policy was passed.

    STS reports, as a percentage, how much of its packed (compressed, binary) session-policy
    space the inline policy and policy ARNs use; the packing is not documented. The emulator
    uses the plaintext instead: ``ceil(100 * (len(policy) + sum(len(arn))) / 2048)``, at
    least 1. The documented plaintext limit is the same 2048 characters, so 100% here is a
    request the real service rejects too; real values are usually smaller.

    :raises StsFault: ``PackedPolicyTooLarge`` above 100%
    """
    if request.policy is None and not request.policy_arns:
        return None
    text = len(request.policy or "") + sum(len(arn) for arn in request.policy_arns)
    percent = max(1, math.ceil(100 * text / _PACKED_LIMIT))
    if percent > 100:
        raise StsFault(
            "PackedPolicyTooLarge",
            f"Packed policy consumes {percent}% of allotted space, please use smaller policy.",
        )
    return percent
