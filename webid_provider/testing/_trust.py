"""Evaluating a role's trust policy for ``sts:AssumeRoleWithWebIdentity``, as IAM does.

The most common IRSA failure is "Not authorized to perform sts:AssumeRoleWithWebIdentity": the
role's trust policy names another service account (``sub``), another audience or another
identity provider. To reproduce it, the emulator evaluates the ``AssumeRolePolicyDocument`` of
roles that exist in moto's IAM:

- a statement applies when its ``Action`` (or ``NotAction``) covers
  ``sts:AssumeRoleWithWebIdentity`` (``*`` and ``?`` wildcards), its ``Principal`` is ``"*"``
  or its ``Principal.Federated`` names the caller's provider (the ARN of the IAM OIDC provider
  registered for the token's ``iss``; for an OAuth 2.0 token, the ``ProviderId``), and every
  ``Condition`` holds;
- a ``Deny`` that applies refuses; otherwise an ``Allow`` that applies is needed.

Conditions: ``StringEquals``, ``StringNotEquals``, ``StringEqualsIgnoreCase``,
``StringNotEqualsIgnoreCase``, ``StringLike``, ``StringNotLike``, each optionally with an
``IfExists`` suffix and a ``ForAnyValue:`` or ``ForAllValues:`` prefix, with IAM's rules for
missing keys (a missing key fails a positive operator, satisfies a negated one, fails
``ForAnyValue`` and satisfies ``ForAllValues``). Condition keys are case-insensitive; the
context offers ``<issuer host/path>:sub``, ``:aud`` and ``:amr`` (the token's ``amr`` claim,
multi-valued). Any other operator makes the policy unusable: :class:`UnsupportedPolicy`, which
the emulator answers as a refusal with a warning in its log, so a test never passes because a
condition was skipped. Policy variables (``${...}``) are not expanded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Dict, List, Tuple

__all__ = ["ACTION", "UnsupportedPolicy", "allows"]

#: The action a web identity exchange needs.
ACTION = "sts:AssumeRoleWithWebIdentity"

_MATCHERS: Dict[str, Tuple[Callable[[str, str], bool], bool]] = {
    # operator -> (does a value match one expected entry, is the operator negated)
    "StringEquals": (lambda value, expected: value == expected, False),
    "StringNotEquals": (lambda value, expected: value == expected, True),
    "StringEqualsIgnoreCase": (lambda v, e: v.casefold() == e.casefold(), False),
    "StringNotEqualsIgnoreCase": (lambda v, e: v.casefold() == e.casefold(), True),
    "StringLike": (lambda value, expected: _glob(expected).fullmatch(value) is not None, False),
    "StringNotLike": (lambda value, expected: _glob(expected).fullmatch(value) is not None, True),
}


class UnsupportedPolicy(Exception):
    """The trust policy is not JSON, or uses something this evaluator does not implement."""


def allows(document: str, principal: str, context: Mapping[str, Sequence[str]]) -> bool:
    """Whether the trust policy lets ``principal`` call AssumeRoleWithWebIdentity.

    :param document: the role's ``AssumeRolePolicyDocument`` (JSON text)
    :param principal: the federated principal of the caller (provider ARN or provider id)
    :param context: condition key (any case) -> the request's values for it
    :raises UnsupportedPolicy: for a document that is not a JSON policy, or an operator outside
        the supported set
    """
    try:
        policy = json.loads(document)
    except ValueError:
        raise UnsupportedPolicy("the trust policy is not valid JSON") from None
    statements = policy.get("Statement", []) if isinstance(policy, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        raise UnsupportedPolicy("the trust policy has no Statement list")
    keys = {key.lower(): list(values) for key, values in context.items()}
    effects = [
        statement.get("Effect")
        for statement in statements
        if isinstance(statement, dict) and _applies(statement, principal, keys)
    ]
    return "Deny" not in effects and "Allow" in effects


def _applies(statement: Mapping[str, Any], principal: str, keys: Mapping[str, List[str]]) -> bool:
    return (
        _action_applies(statement)
        and _principal_applies(statement.get("Principal"), principal)
        and _conditions_hold(statement.get("Condition", {}), keys)
    )


def _strings(value: Any) -> List[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise UnsupportedPolicy(f"expected a string or a list of strings, got {value!r}")


def _action_applies(statement: Mapping[str, Any]) -> bool:
    if "Action" in statement:
        return _names_action(statement["Action"])
    if "NotAction" in statement:
        return not _names_action(statement["NotAction"])
    return False


def _names_action(patterns: Any) -> bool:
    return any(_glob(p, ignore_case=True).fullmatch(ACTION) for p in _strings(patterns))


def _principal_applies(value: Any, principal: str) -> bool:
    if value == "*":
        return True
    if not isinstance(value, dict):
        return False
    federated = value.get("Federated")
    return federated is not None and (
        principal in _strings(federated) or "*" in _strings(federated)
    )


def _conditions_hold(conditions: Any, keys: Mapping[str, List[str]]) -> bool:
    if not isinstance(conditions, dict):
        raise UnsupportedPolicy("Condition must be an object")
    for operator, tests in conditions.items():
        if not isinstance(tests, dict):
            raise UnsupportedPolicy(f"condition {operator} must map keys to values")
        for key, expected in tests.items():
            if not _condition_holds(operator, keys.get(key.lower(), []), _strings(expected)):
                return False
    return True


def _condition_holds(operator: str, values: Sequence[str], expected: Sequence[str]) -> bool:
    qualifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    name = name[: -len("IfExists")] if if_exists else name
    if name not in _MATCHERS or qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise UnsupportedPolicy(f"condition operator {operator} is not supported")
    matches, negated = _MATCHERS[name]

    def satisfied(value: str) -> bool:
        return any(matches(value, entry) for entry in expected) != negated

    if not values:
        if qualifier:
            return qualifier == "ForAllValues"
        return if_exists or negated
    if qualifier == "ForAllValues" or (not qualifier and negated):
        return all(satisfied(value) for value in values)
    return any(satisfied(value) for value in values)


def _glob(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    """IAM's wildcards: ``*`` any run of characters, ``?`` one character, nothing else."""
    text = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(text, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)
