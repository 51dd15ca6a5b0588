"""The parameter checks real STS makes on an AssumeRoleWithWebIdentity request.

moto accepts any role ARN, any session name and durations up to 50000 seconds (see the
research notes, section H), so the emulator makes these checks itself before it lets moto
mint credentials; ``_token`` checks the token and ``_trust`` the role's trust policy.

Member constraints come from botocore's own STS service model (the ``min``, ``max`` and
``pattern`` of each input member, and which members are required), so they follow the model
botocore ships instead of a hand-kept copy. They answer ``ValidationError`` with AWS's
"N validation error(s) detected: Value '...' at 'member' failed to satisfy constraint: ..."
text. A sensitive member's value (the token) is never echoed.

Rules the model does not carry, from the STS documentation:

- at most 10 ``PolicyArns`` (reported with the member constraints);
- a role ARN that is not ``arn:<partition>:iam::<12 digits>:role/<path/name>`` answers
  ``ValidationError`` "Request ARN is invalid", a policy ARN without ``arn:`` and five colons
  "ARN ... is not valid.";
- a duration above the role's maximum answers ``ValidationError`` "The requested
  DurationSeconds exceeds the MaxSessionDuration set for this role.";
- an inline policy that is not a JSON object with a ``Statement`` answers
  ``MalformedPolicyDocument``; policy plus policy ARN text above 2048 characters answers
  ``PackedPolicyTooLarge`` (see :func:`packed_policy_size`).

Security: the token travels in :class:`WebIdentityRequest` for the duration of one request
only, is excluded from its ``repr``, and is never part of an error message.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Pattern, Tuple, Union

__all__ = [
    "DEFAULT_MAX_SESSION_DURATION",
    "StsFault",
    "WebIdentityRequest",
    "check_parameters",
    "packed_policy_size",
    "parse_request",
]

_OPERATION = "AssumeRoleWithWebIdentity"
_ROLE_ARN = re.compile(
    r"^arn:(aws[a-z-]*):iam::(\d{12}):role/((?:[\x21-\x7e]+/)*)([\w+=,.@-]{1,64})$"
)
# List limits the STS documentation states but botocore's model does not carry.
_LIST_MAXIMUMS = {"PolicyArns": 10}
_PACKED_LIMIT = 2048

#: Role maximum session duration when the role is neither in IAM nor added to the emulator:
#: IAM's default ``MaxSessionDuration``, so a request that AWS would refuse is refused here.
DEFAULT_MAX_SESSION_DURATION = 3600

# A member value as sent: a string, or for a list of structures one dict per item.
MemberValue = Union[str, Tuple[Dict[str, str], ...]]


class StsFault(Exception):
    """An STS error answer: code, message and HTTP status (``Sender`` below 500)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class WebIdentityRequest:
    """The members of one AssumeRoleWithWebIdentity request as sent (not yet valid).

    ``members`` holds the model's member names; the properties read the ones the emulator
    uses. The ``repr`` shows every member but the token.
    """

    members: Mapping[str, MemberValue]

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.members.items() if k != "WebIdentityToken"}
        return f"WebIdentityRequest({shown!r})"

    def _text(self, name: str) -> Optional[str]:
        value = self.members.get(name)
        return value if isinstance(value, str) else None

    @property
    def role_arn(self) -> Optional[str]:
        return self._text("RoleArn")

    @property
    def role_session_name(self) -> Optional[str]:
        return self._text("RoleSessionName")

    @property
    def token(self) -> Optional[str]:
        return self._text("WebIdentityToken")

    @property
    def duration_text(self) -> Optional[str]:
        return self._text("DurationSeconds")

    @property
    def policy(self) -> Optional[str]:
        return self._text("Policy")

    @property
    def provider_id(self) -> Optional[str]:
        return self._text("ProviderId")

    @property
    def policy_arns(self) -> Tuple[str, ...]:
        items = self.members.get("PolicyArns", ())
        return tuple(item.get("arn", "") for item in items if isinstance(item, dict))

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


@functools.lru_cache(maxsize=1)
def _input_shape() -> Any:
    """The operation's input shape from the STS model botocore ships."""
    import botocore.loaders
    import botocore.model

    loader = botocore.loaders.create_loader()
    model = botocore.model.ServiceModel(loader.load_service_model("sts", "service-2"), "sts")
    return model.operation_model(_OPERATION).input_shape


def parse_request(params: Mapping[str, Sequence[str]]) -> WebIdentityRequest:
    """Read the query-protocol form members the model defines.

    Lists of structures arrive as ``PolicyArns.member.N.arn``; they are read in order of N.
    """
    members: Dict[str, MemberValue] = {}
    for name, shape in _input_shape().members.items():
        if shape.type_name == "list":
            items = _list_items(params, name)
            if items:
                members[name] = items
        elif params.get(name):
            members[name] = params[name][0]
    return WebIdentityRequest(members=members)


def _list_items(params: Mapping[str, Sequence[str]], name: str) -> Tuple[Dict[str, str], ...]:
    pattern = re.compile(rf"{re.escape(name)}\.member\.(\d+)\.(\w+)")
    items: Dict[int, Dict[str, str]] = {}
    for key, values in params.items():
        match = pattern.fullmatch(key)
        if match and values:
            items.setdefault(int(match.group(1)), {})[match.group(2)] = values[0]
    return tuple(items[index] for index in sorted(items))


def check_parameters(request: WebIdentityRequest, max_session_duration: int) -> None:
    """Check every member against the STS model, the documented rules and the role's maximum.

    :raises StsFault: ``ValidationError`` or ``MalformedPolicyDocument``
    """
    problems = _constraint_problems(request)
    if problems:
        noun = "error" if len(problems) == 1 else "errors"
        raise StsFault(
            "ValidationError",
            f"{len(problems)} validation {noun} detected: " + "; ".join(problems),
        )
    if not _ROLE_ARN.match(request.role_arn or ""):
        raise StsFault("ValidationError", "Request ARN is invalid")
    for policy_arn in request.policy_arns:
        if not policy_arn.startswith("arn:") or policy_arn.count(":") < 5:
            raise StsFault("ValidationError", f"ARN {policy_arn} is not valid.")
    duration = request.duration_seconds
    if duration is not None and duration > max_session_duration:
        raise StsFault(
            "ValidationError",
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        )
    if request.policy is not None:
        _check_policy_json(request.policy)


def _constraint_problems(request: WebIdentityRequest) -> List[str]:
    """One "Value ... at ... failed to satisfy constraint" text per broken model constraint."""
    shape = _input_shape()
    problems: List[str] = []
    for name, member in shape.members.items():
        value = request.members.get(name)
        path = name[0].lower() + name[1:]
        if value is None:
            if name in shape.required_members:
                problems.append(_constraint(None, path, "Member must not be null"))
        elif isinstance(value, tuple):
            problems.extend(_list_problems(value, name, path, member))
        else:
            problems.extend(_scalar_problems(value, path, member))
    return problems


def _list_problems(
    items: Tuple[Dict[str, str], ...], name: str, path: str, shape: Any
) -> List[str]:
    problems: List[str] = []
    maximum = _LIST_MAXIMUMS.get(name, shape.metadata.get("max"))
    if maximum is not None and len(items) > maximum:
        listing = "[" + ", ".join(f"{shape.member.name}({_fields(i)})" for i in items) + "]"
        constraint = f"Member must have length less than or equal to {maximum}"
        problems.append(_constraint(listing, path, constraint))
    for index, item in enumerate(items, start=1):
        for field_name, field_shape in shape.member.members.items():
            if field_name in item:
                field_path = f"{path}.{index}.member.{field_name}"
                problems.extend(_scalar_problems(item[field_name], field_path, field_shape))
    return problems


def _fields(item: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in item.items())


def _scalar_problems(text: str, path: str, shape: Any) -> List[str]:
    if shape.type_name in ("integer", "long"):
        return _number_problems(text, path, shape)
    rules = shape.metadata
    constraints = []
    if "min" in rules and len(text) < rules["min"]:
        constraints.append(f"Member must have length greater than or equal to {rules['min']}")
    if "max" in rules and len(text) > rules["max"]:
        constraints.append(f"Member must have length less than or equal to {rules['max']}")
    if "pattern" in rules and not _compiled(rules["pattern"]).fullmatch(text):
        constraints.append(f"Member must satisfy regular expression pattern: {rules['pattern']}")
    hidden = bool(rules.get("sensitive"))
    return [_constraint(text, path, constraint, hidden=hidden) for constraint in constraints]


def _number_problems(text: str, path: str, shape: Any) -> List[str]:
    try:
        number = int(text)
    except ValueError:
        raise StsFault("ValidationError", f"Invalid value for {shape.name}: {text}") from None
    rules = shape.metadata
    if "min" in rules and number < rules["min"]:
        bound = f"greater than or equal to {rules['min']}"
    elif "max" in rules and number > rules["max"]:
        bound = f"less than or equal to {rules['max']}"
    else:
        return []
    return [_constraint(str(number), path, f"Member must have value {bound}")]


@functools.cache
def _compiled(java_pattern: str) -> Pattern[str]:
    """The model's (Java) pattern as a Python regex.

    ``\\uXXXX`` means the same in both; the models write code points above U+FFFF as
    ``\\u10000``..``\\u10FFFF`` (5-6 hex digits), which Python spells ``\\U00010000``. ``\\w``
    is ASCII in Java, hence ``re.ASCII``.
    """
    python = re.sub(
        r"\\u([0-9A-Fa-f]{5,6})", lambda m: f"\\U{int(m.group(1), 16):08X}", java_pattern
    )
    return re.compile(python, re.ASCII)


def _constraint(value: Optional[str], member: str, constraint: str, *, hidden: bool = False) -> str:
    shown = "" if hidden else " null" if value is None else f" '{value}'"
    return f"Value{shown} at '{member}' failed to satisfy constraint: {constraint}"


def _check_policy_json(policy: str) -> None:
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
