"""The emulator judges roles that exist in moto's IAM by their trust policy and maximum
duration, and applies AWS's defaults to the others (issue 16).

Roles and OIDC providers are created the way a user's test creates them: a boto3 IAM client
on the emulator's endpoint. Every answer is parsed by botocore.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any, Dict, List, Optional, Tuple

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from webid_provider.testing import OidcIssuer, StsEmulator

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

Client = Any
PROD = "system:serviceaccount:prod:app"
DEV = "system:serviceaccount:dev:app"
DENIED = ("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403)
KEY = "oidc.webid.test"  # the issuer's host and path: the prefix of the condition keys


def _sts(emulator: StsEmulator) -> Client:
    config = Config(signature_version=UNSIGNED, retries={"total_max_attempts": 1})
    return boto3.client(
        "sts", endpoint_url=emulator.endpoint_url, region_name="us-east-1", config=config
    )


def _iam(emulator: StsEmulator) -> Client:
    return boto3.client(
        "iam",
        endpoint_url=emulator.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def sts(sts_emulator: StsEmulator) -> Iterator[Client]:
    client = _sts(sts_emulator)
    yield client
    client.close()


@pytest.fixture
def iam(sts_emulator: StsEmulator) -> Iterator[Client]:
    client = _iam(sts_emulator)
    yield client
    client.close()


def _provider(iam: Client, issuer: OidcIssuer, client_ids: Tuple[str, ...]) -> str:
    arn: str = iam.create_open_id_connect_provider(
        Url=issuer.issuer, ClientIDList=list(client_ids), ThumbprintList=["0" * 40]
    )["OpenIDConnectProviderArn"]
    return arn


def _statement(
    provider_arn: str, condition: Dict[str, Any], effect: str = "Allow"
) -> Dict[str, Any]:
    return {
        "Effect": effect,
        "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition,
    }


def _role(
    iam: Client, name: str, statements: List[Dict[str, Any]], max_session_duration: int = 3600
) -> str:
    document = json.dumps({"Version": "2012-10-17", "Statement": statements})
    arn: str = iam.create_role(
        RoleName=name, AssumeRolePolicyDocument=document, MaxSessionDuration=max_session_duration
    )["Role"]["Arn"]
    return arn


def _irsa_role(
    iam: Client, issuer: OidcIssuer, client_ids: Tuple[str, ...] = ("sts.amazonaws.com",)
) -> str:
    """A role trusting exactly prod:app with audience sts.amazonaws.com, as eksctl writes it."""
    provider_arn = _provider(iam, issuer, client_ids)
    condition = {"StringEquals": {f"{KEY}:sub": PROD, f"{KEY}:aud": "sts.amazonaws.com"}}
    return _role(iam, "irsa-app", [_statement(provider_arn, condition)])


def _assume(client: Client, role_arn: str, token: str, **params: Any) -> Dict[str, Any]:
    response: Dict[str, Any] = client.assume_role_with_web_identity(
        RoleArn=role_arn, RoleSessionName="app", WebIdentityToken=token, **params
    )
    return response


def _error(client: Client, role_arn: str, token: str, **params: Any) -> Tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        _assume(client, role_arn, token, **params)
    response = info.value.response
    return (
        response["Error"]["Code"],
        response["Error"]["Message"],
        response["ResponseMetadata"]["HTTPStatusCode"],
    )


# -- trust policies ---------------------------------------------------------------------


def test_trust_policy_admits_the_named_service_account_only(
    sts: Client, iam: Client, oidc_issuer: OidcIssuer, sts_emulator: StsEmulator
) -> None:
    role_arn = _irsa_role(iam, oidc_issuer)

    response = _assume(sts, role_arn, oidc_issuer.mint(sub=PROD))

    assert response["SubjectFromWebIdentityToken"] == PROD
    assert response["AssumedRoleUser"]["Arn"] == (
        "arn:aws:sts::123456789012:assumed-role/irsa-app/app"
    )
    assert _error(sts, role_arn, oidc_issuer.mint(sub=DEV)) == DENIED
    assert [c.error_code for c in sts_emulator.calls] == [None, "AccessDenied"]


def test_audience_registered_but_not_trusted_is_access_denied(
    sts: Client, iam: Client, oidc_issuer: OidcIssuer
) -> None:
    role_arn = _irsa_role(iam, oidc_issuer, client_ids=("sts.amazonaws.com", "other-client"))

    assert _error(sts, role_arn, oidc_issuer.mint(sub=PROD, aud="other-client")) == DENIED


def test_audience_not_registered_with_the_provider_is_an_invalid_token(
    sts: Client, iam: Client, oidc_issuer: OidcIssuer
) -> None:
    role_arn = _irsa_role(iam, oidc_issuer)

    assert _error(sts, role_arn, oidc_issuer.mint(sub=PROD, aud="someone-else")) == (
        "InvalidIdentityToken",
        "Incorrect token audience",
        400,
    )


def test_issuer_without_an_iam_provider_is_refused(
    sts: Client, iam: Client, oidc_issuer: OidcIssuer
) -> None:
    """As in AWS: the role exists, but no OIDC provider in the account matches ``iss``."""
    other_provider = "arn:aws:iam::123456789012:oidc-provider/oidc.elsewhere.test"
    condition = {"StringEquals": {f"{KEY}:sub": PROD}}
    role_arn = _role(iam, "no-provider", [_statement(other_provider, condition)])

    assert _error(sts, role_arn, oidc_issuer.mint(sub=PROD)) == (
        "InvalidIdentityToken",
        "No OpenIDConnect provider found in your account for https://oidc.webid.test",
        400,
    )


def test_policy_naming_another_registered_provider_is_access_denied(
    sts: Client, iam: Client, oidc_issuer: OidcIssuer
) -> None:
    _provider(iam, oidc_issuer, ("sts.amazonaws.com",))
    elsewhere = _provider(iam, OidcIssuer("https://oidc.elsewhere.test"), ("sts.amazonaws.com",))
    role_arn = _role(iam, "trusts-elsewhere", [_statement(elsewhere, {})])

    assert _error(sts, role_arn, oidc_issuer.mint(sub=PROD)) == DENIED


def test_deny_wins_over_allow(sts: Client, iam: Client, oidc_issuer: OidcIssuer) -> None:
    provider_arn = _provider(iam, oidc_issuer, ("sts.amazonaws.com",))
    allow = _statement(provider_arn, {"StringLike": {f"{KEY}:sub": "system:serviceaccount:prod:*"}})
    deny = _statement(
        provider_arn,
        {"StringEquals": {f"{KEY}:sub": "system:serviceaccount:prod:admin"}},
        effect="Deny",
    )
    role_arn = _role(iam, "prod-but-admin", [allow, deny])

    assert _assume(sts, role_arn, oidc_issuer.mint(sub=PROD))["Credentials"]
    admin = oidc_issuer.mint(sub="system:serviceaccount:prod:admin")
    assert _error(sts, role_arn, admin) == DENIED
    assert _error(sts, role_arn, oidc_issuer.mint(sub=DEV)) == DENIED


@pytest.mark.parametrize(
    ("amr", "admitted"),
    [(["pwd", "mfa"], True), (["pwd"], False), (None, False)],
)
def test_for_any_value_string_like_on_amr(
    sts: Client, iam: Client, oidc_issuer: OidcIssuer, amr: Optional[List[str]], admitted: bool
) -> None:
    provider_arn = _provider(iam, oidc_issuer, ("sts.amazonaws.com",))
    condition = {"ForAnyValue:StringLike": {f"{KEY}:amr": "mf*"}}
    role_arn = _role(iam, "mfa-only", [_statement(provider_arn, condition)])
    token = oidc_issuer.mint(sub=PROD, extra_claims={"amr": amr} if amr is not None else None)

    if admitted:
        assert _assume(sts, role_arn, token)["Credentials"]
    else:
        assert _error(sts, role_arn, token) == DENIED


def test_condition_keys_are_case_insensitive(
    sts: Client, iam: Client, oidc_issuer: OidcIssuer
) -> None:
    provider_arn = _provider(iam, oidc_issuer, ("sts.amazonaws.com",))
    condition = {"StringEquals": {f"{KEY.upper()}:SUB": PROD}}
    role_arn = _role(iam, "upper", [_statement(provider_arn, condition)])

    assert _assume(sts, role_arn, oidc_issuer.mint(sub=PROD))["Credentials"]


def test_unsupported_operator_refuses_with_a_warning(
    sts: Client, iam: Client, oidc_issuer: OidcIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    provider_arn = _provider(iam, oidc_issuer, ("sts.amazonaws.com",))
    condition = {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}
    role_arn = _role(iam, "dates", [_statement(provider_arn, condition)])

    with caplog.at_level(logging.WARNING, logger="webid_provider"):
        assert _error(sts, role_arn, oidc_issuer.mint(sub=PROD)) == DENIED

    assert (
        f"sts emulator: the trust policy of {role_arn} cannot be evaluated: "
        "condition operator DateGreaterThan is not supported"
    ) in caplog.text


# -- durations --------------------------------------------------------------------------


def test_max_session_duration_comes_from_iam(
    sts: Client, iam: Client, oidc_issuer: OidcIssuer
) -> None:
    provider_arn = _provider(iam, oidc_issuer, ("sts.amazonaws.com",))
    role_arn = _role(iam, "long", [_statement(provider_arn, {})], max_session_duration=7200)
    token = oidc_issuer.mint(sub=PROD)

    assert _assume(sts, role_arn, token, DurationSeconds=7200)["Credentials"]
    assert _error(sts, role_arn, token, DurationSeconds=7201)[:2] == (
        "ValidationError",
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
    )


def test_undeclared_role_allows_one_hour_like_aws(
    sts: Client, sts_emulator: StsEmulator, oidc_issuer: OidcIssuer
) -> None:
    role_arn = "arn:aws:iam::123456789012:role/nowhere-declared"
    token = oidc_issuer.mint()

    assert _error(sts, role_arn, token, DurationSeconds=7200) == (
        "ValidationError",
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        400,
    )
    assert _assume(sts, role_arn, token, DurationSeconds=3600)["Credentials"]
    sts_emulator.add_role(role_arn, max_session_duration=7200)
    assert _assume(sts, role_arn, token, DurationSeconds=7200)["Credentials"]


def test_webid_provider_duration_above_the_default_is_a_validation_error(
    sts_emulator: StsEmulator, oidc_issuer: OidcIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The case of issue 16: passes against moto, fails in AWS, must fail here."""
    import webid_provider
    from webid_provider._errors import StsError

    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts_emulator.endpoint_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    session = webid_provider.session(
        role_arn="arn:aws:iam::123456789012:role/undeclared",
        web_identity_token=oidc_issuer.mint(),
        duration_seconds=7200,
        cache_dir=None,
    )
    credentials = session.get_credentials()
    assert credentials is not None

    with pytest.raises(StsError) as info:
        credentials.get_frozen_credentials()

    assert info.value.code == "ValidationError"
    assert "MaxSessionDuration" in str(info.value)


# -- strict roles and isolation ---------------------------------------------------------


def test_strict_emulator_refuses_roles_not_in_iam(oidc_issuer: OidcIssuer) -> None:
    with StsEmulator(oidc_issuer, strict_roles=True) as strict:
        sts, iam = _sts(strict), _iam(strict)
        try:
            role_arn = _irsa_role(iam, oidc_issuer)
            unknown = "arn:aws:iam::123456789012:role/not-in-iam"

            assert strict.strict_roles
            assert _error(sts, unknown, oidc_issuer.mint(sub=PROD)) == DENIED
            assert _assume(sts, role_arn, oidc_issuer.mint(sub=PROD))["Credentials"]
        finally:
            sts.close()
            iam.close()
            strict.reset(iam=True)


def test_reset_with_iam_forgets_roles_and_providers(
    sts: Client, iam: Client, oidc_issuer: OidcIssuer, sts_emulator: StsEmulator
) -> None:
    role_arn = _irsa_role(iam, oidc_issuer)
    assert _error(sts, role_arn, oidc_issuer.mint(sub=DEV)) == DENIED

    sts_emulator.reset(iam=True)

    assert iam.list_roles()["Roles"] == []
    assert iam.list_open_id_connect_providers()["OpenIDConnectProviderList"] == []
    assert _assume(sts, role_arn, oidc_issuer.mint(sub=DEV))["Credentials"]  # permissive again
