"""Trust policy evaluation (``webid_provider.testing._trust``): IAM's rules, pure logic."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import pytest

from webid_provider.testing._trust import UnsupportedPolicy, allows

PROVIDER = "arn:aws:iam::123456789012:oidc-provider/oidc.webid.test"
CONTEXT = {
    "oidc.webid.test:sub": ["system:serviceaccount:prod:app"],
    "oidc.webid.test:aud": ["sts.amazonaws.com"],
    "oidc.webid.test:amr": ["pwd", "mfa"],
}


def _policy(condition: Optional[Dict[str, Any]] = None, **statement: Any) -> str:
    body: Dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Federated": PROVIDER},
        "Action": "sts:AssumeRoleWithWebIdentity",
    }
    if condition is not None:
        body["Condition"] = condition
    body.update(statement)
    return json.dumps({"Version": "2012-10-17", "Statement": [body]})


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"StringEquals": {"oidc.webid.test:sub": "system:serviceaccount:prod:app"}}, True),
        ({"StringEquals": {"oidc.webid.test:sub": ["x", "system:serviceaccount:prod:app"]}}, True),
        ({"StringEquals": {"oidc.webid.test:sub": "system:serviceaccount:dev:app"}}, False),
        ({"StringLike": {"oidc.webid.test:sub": "system:serviceaccount:prod:*"}}, True),
        ({"StringLike": {"oidc.webid.test:sub": "system:serviceaccount:pro?:app"}}, True),
        ({"StringLike": {"oidc.webid.test:sub": "system:serviceaccount:[p]rod:app"}}, False),
        ({"StringEquals": {"oidc.webid.test:sub": "SYSTEM:serviceaccount:prod:app"}}, False),
        (
            {"StringEqualsIgnoreCase": {"oidc.webid.test:sub": "SYSTEM:serviceaccount:prod:app"}},
            True,
        ),
        ({"StringNotEquals": {"oidc.webid.test:sub": "system:serviceaccount:dev:app"}}, True),
        ({"StringNotLike": {"oidc.webid.test:sub": "system:serviceaccount:prod:*"}}, False),
        # Every operator and key must hold (AND); values are alternatives (OR).
        (
            {
                "StringEquals": {"oidc.webid.test:aud": "sts.amazonaws.com"},
                "StringLike": {"oidc.webid.test:sub": "*:dev:*"},
            },
            False,
        ),
        # Missing keys: positive fails, negated holds, IfExists holds.
        ({"StringEquals": {"oidc.webid.test:email": "a@b"}}, False),
        ({"StringNotEquals": {"oidc.webid.test:email": "a@b"}}, True),
        ({"StringEqualsIfExists": {"oidc.webid.test:email": "a@b"}}, True),
        # Multi-valued keys.
        ({"ForAnyValue:StringLike": {"oidc.webid.test:amr": "mf*"}}, True),
        ({"ForAnyValue:StringEquals": {"oidc.webid.test:amr": "otp"}}, False),
        ({"ForAllValues:StringEquals": {"oidc.webid.test:amr": ["pwd", "mfa", "otp"]}}, True),
        ({"ForAllValues:StringEquals": {"oidc.webid.test:amr": ["pwd"]}}, False),
        ({"ForAnyValue:StringLike": {"oidc.webid.test:email": "*"}}, False),
        ({"ForAllValues:StringLike": {"oidc.webid.test:email": "x"}}, True),
    ],
)
def test_conditions(condition: Dict[str, Any], expected: bool) -> None:
    assert allows(_policy(condition), PROVIDER, CONTEXT) is expected


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ({"Principal": "*"}, True),
        ({"Principal": {"Federated": [PROVIDER, "accounts.google.com"]}}, True),
        ({"Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/other"}}, False),
        ({"Principal": {"AWS": "arn:aws:iam::123456789012:root"}}, False),
        ({"Action": "sts:*"}, True),
        ({"Action": ["sts:AssumeRole", "STS:assumerolewithwebidentity"]}, True),
        ({"Action": "sts:AssumeRole"}, False),
        ({"Action": None, "NotAction": "sts:AssumeRole"}, True),
        ({"Effect": "Deny"}, False),
    ],
)
def test_principal_action_effect(statement: Dict[str, Any], expected: bool) -> None:
    document = json.loads(_policy())
    document["Statement"][0].update(statement)
    if statement.get("Action", "") is None:
        del document["Statement"][0]["Action"]
    assert allows(json.dumps(document), PROVIDER, CONTEXT) is expected


def test_deny_wins_and_allow_is_required() -> None:
    allow = json.loads(_policy())["Statement"][0]
    deny = dict(allow, Effect="Deny")
    unrelated = dict(allow, Action="sts:AssumeRole")

    assert not allows(json.dumps({"Statement": [allow, deny]}), PROVIDER, CONTEXT)
    assert not allows(json.dumps({"Statement": [unrelated]}), PROVIDER, CONTEXT)
    assert allows(json.dumps({"Statement": allow}), PROVIDER, CONTEXT)  # one statement, no list


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"Statement": 3}', "no Statement list"),
        (_policy({"NumericLessThan": {"x": "1"}}), "condition operator NumericLessThan"),
        (_policy({"ForSomeValues:StringEquals": {"x": "1"}}), "ForSomeValues:StringEquals"),
        (_policy({"StringEquals": {"x": 1}}), "expected a string or a list of strings"),
    ],
)
def test_what_cannot_be_evaluated_says_so(document: str, message: str) -> None:
    with pytest.raises(UnsupportedPolicy, match=message):
        allows(document, PROVIDER, CONTEXT)


def test_context_keys_are_case_insensitive() -> None:
    upper: Dict[str, List[str]] = {key.upper(): values for key, values in CONTEXT.items()}
    condition = {"StringEquals": {"oidc.webid.test:sub": "system:serviceaccount:prod:app"}}

    assert allows(_policy(condition), PROVIDER, upper)
