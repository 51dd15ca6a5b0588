"""OidcIssuer mints tokens a JWKS verifier accepts (and the bad ones it must reject);
KubeletTokenFile lays out and rotates a token volume like the kubelet."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict

import jwt
import pytest

from webid_provider.testing import KubeletTokenFile, OidcIssuer
from webid_provider.testing.issuer import SIGNING_ALGORITHMS, SOURCE_IDENTITY_CLAIM

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _verify(issuer: OidcIssuer, token: str, *, verify_exp: bool = True) -> Dict[str, Any]:
    header = jwt.get_unverified_header(token)
    jwk = next(k for k in issuer.jwks()["keys"] if k["kid"] == header["kid"])
    claims: Dict[str, Any] = jwt.decode(
        token,
        jwt.PyJWK(jwk, algorithm=header["alg"]),
        algorithms=[header["alg"]],
        audience="sts.amazonaws.com",
        issuer=issuer.issuer,
        options={"verify_exp": verify_exp},
    )
    return claims


def test_jwks_publishes_four_public_keys_with_distinct_kids(oidc_issuer: OidcIssuer) -> None:
    keys = oidc_issuer.jwks()["keys"]

    assert sorted(k["kty"] for k in keys) == ["EC", "EC", "EC", "RSA"]
    assert sorted(k.get("crv", "") for k in keys) == ["", "P-256", "P-384", "P-521"]
    assert len({k["kid"] for k in keys}) == 4
    assert all(k["use"] == "sig" for k in keys)
    private_members = {"d", "p", "q", "dp", "dq", "qi"}
    assert not any(private_members & set(k) for k in keys)


def test_jwks_is_a_copy(oidc_issuer: OidcIssuer) -> None:
    oidc_issuer.jwks()["keys"][0]["kid"] = "tampered"

    assert "tampered" not in {k["kid"] for k in oidc_issuer.jwks()["keys"]}


@pytest.mark.parametrize("alg", SIGNING_ALGORITHMS)
def test_mint_signs_with_every_sts_algorithm(oidc_issuer: OidcIssuer, alg: str) -> None:
    before = int(time.time())

    token = oidc_issuer.mint(alg=alg)

    header = jwt.get_unverified_header(token)
    assert header["alg"] == alg
    assert header["kid"] == oidc_issuer.kid(alg)
    claims = _verify(oidc_issuer, token)
    assert claims["iss"] == "https://oidc.webid.test"
    assert claims["sub"] == "system:serviceaccount:default:app"
    assert claims["aud"] == "sts.amazonaws.com"
    assert before <= claims["iat"] == claims["nbf"] <= int(time.time())
    assert claims["exp"] == claims["iat"] + 3600
    assert all(isinstance(claims[name], int) for name in ("iat", "nbf", "exp"))


def test_mint_merges_extra_claims_and_lets_them_override(oidc_issuer: OidcIssuer) -> None:
    token = oidc_issuer.mint(
        sub="repo:org/app:ref:refs/heads/main",
        aud=["sts.amazonaws.com", "other"],
        ttl=600,
        extra_claims={SOURCE_IDENTITY_CLAIM: "alice", "iss": "https://elsewhere.test"},
        jti="abc",
    )

    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "repo:org/app:ref:refs/heads/main"
    assert claims["aud"] == ["sts.amazonaws.com", "other"]
    assert claims["exp"] - claims["iat"] == 600
    assert claims[SOURCE_IDENTITY_CLAIM] == "alice"
    assert claims["iss"] == "https://elsewhere.test"
    assert claims["jti"] == "abc"


def test_mint_expired_is_well_signed_but_past_exp(oidc_issuer: OidcIssuer) -> None:
    token = oidc_issuer.mint_expired(alg="ES256", expired_seconds_ago=120)

    with pytest.raises(jwt.ExpiredSignatureError):
        _verify(oidc_issuer, token)
    claims = _verify(oidc_issuer, token, verify_exp=False)
    assert int(time.time()) - 121 <= claims["exp"] <= int(time.time()) - 119


@pytest.mark.parametrize("alg", ["RS256", "ES384", "ES512"])
def test_mint_badly_signed_names_a_published_kid_but_fails_verification(
    oidc_issuer: OidcIssuer, alg: str
) -> None:
    token = oidc_issuer.mint_badly_signed(alg=alg)

    assert jwt.get_unverified_header(token)["kid"] == oidc_issuer.kid(alg)
    with pytest.raises(jwt.InvalidSignatureError):
        _verify(oidc_issuer, token)


@pytest.mark.parametrize("alg", ["HS256", "none", "EdDSA", "PS256"])
def test_unsupported_algorithm_is_refused(oidc_issuer: OidcIssuer, alg: str) -> None:
    with pytest.raises(ValueError, match="unsupported signing algorithm"):
        oidc_issuer.mint(alg=alg)


def test_two_issuers_have_different_keys() -> None:
    one, two = OidcIssuer(), OidcIssuer(issuer="https://two.test")

    assert {k["kid"] for k in one.jwks()["keys"]}.isdisjoint(k["kid"] for k in two.jwks()["keys"])
    assert two.issuer == "https://two.test"
    assert two.openid_configuration()["issuer"] == "https://two.test"
    assert repr(two) == "OidcIssuer(issuer='https://two.test')"


def test_importing_the_testing_package_loads_neither_moto_nor_pytest() -> None:
    code = (
        "import sys, webid_provider.testing; "
        "bad = [m for m in ('moto', 'pytest', '_pytest') if m in sys.modules]; "
        "sys.exit(str(bad) if bad else 0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- KubeletTokenFile -----------------------------------------------------------------


def test_kubelet_layout_matches_a_projected_volume(tmp_path: Path) -> None:
    ktf = KubeletTokenFile(tmp_path / "sa", "first-token")

    assert ktf.path == tmp_path / "sa" / "token"
    assert ktf.path.read_text() == "first-token"
    assert os.readlink(ktf.path) == os.path.join("..data", "token")
    data_target = os.readlink(tmp_path / "sa" / "..data")
    assert data_target.startswith("..")
    assert data_target == ktf.data_dir.name
    assert (tmp_path / "sa" / data_target / "token").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in (tmp_path / "sa").iterdir()) == sorted(
        ["..data", "token", data_target]
    )


def test_kubelet_rotation_swaps_atomically_and_removes_the_old_dir(tmp_path: Path) -> None:
    ktf = KubeletTokenFile(tmp_path / "sa", "first-token")
    old_dir = ktf.data_dir

    with ktf.path.open() as held_open:
        ktf.rotate("second-token")
        assert held_open.read() == "first-token"

    assert ktf.path.read_text() == "second-token"
    assert not old_dir.exists()
    assert ktf.data_dir != old_dir
    assert not (tmp_path / "sa" / "..data_tmp").exists()
    assert sorted(p.name for p in (tmp_path / "sa").iterdir()) == sorted(
        ["..data", "token", ktf.data_dir.name]
    )


def test_kubelet_rotation_can_publish_an_empty_token(tmp_path: Path) -> None:
    ktf = KubeletTokenFile(str(tmp_path), "first-token")

    ktf.rotate("")

    assert ktf.path.read_text() == ""
    assert repr(ktf) == f"KubeletTokenFile({str(tmp_path)!r})"


def test_kubelet_file_may_have_another_name(tmp_path: Path) -> None:
    ktf = KubeletTokenFile(tmp_path, "first-token", filename="web-identity")

    ktf.rotate("second-token")

    assert ktf.path == tmp_path / "web-identity"
    assert os.readlink(ktf.path) == os.path.join("..data", "web-identity")
    assert ktf.path.read_text() == "second-token"
    assert (ktf.data_dir / "web-identity").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("name", ["", ".", "..", "..data", "a/b"])
def test_kubelet_file_name_must_be_plain(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="filename must be a plain file name"):
        KubeletTokenFile(tmp_path / "sa", "token", filename=name)

    assert not (tmp_path / "sa").exists()
