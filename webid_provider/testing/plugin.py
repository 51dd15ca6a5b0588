"""pytest fixtures for testing code that gets AWS credentials through web identity.

Registered through the ``pytest11`` entry point, so any project that installs
``webid-provider`` gets them without a ``conftest.py``:

``oidc_issuer`` (session)
    an :class:`~webid_provider.testing.OidcIssuer`
``sts_emulator_server`` (session)
    a started :class:`~webid_provider.testing.StsEmulator`, stopped at session end
``sts_emulator`` (function)
    the same emulator after ``reset()``: no calls, no faults, default settings
``irsa_env`` (function)
    an :class:`IrsaEnv`: the environment of an EKS IRSA pod pointed at the emulator, with a
    kubelet-style token file in ``tmp_path`` and every other AWS credential source disabled

pytest imports this module in every environment where the package is installed, including
ones with the runtime dependencies only, so only ``pytest`` (present whenever this module is
loaded) and the standard library are imported at module level; ``moto`` is imported when the
emulator starts, ``cryptography`` when the issuer makes its keys, and the rest of
``webid_provider.testing`` when a fixture is first used. A fixture used without the
``testing`` extra fails its test with the install command instead of an import traceback
(``.ci/plugin-check`` runs pytest in such an environment).

Security: the token file is created 0600 under ``tmp_path``; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Optional, Union

import pytest

if TYPE_CHECKING:
    from webid_provider.testing import KubeletTokenFile, OidcIssuer, StsEmulator

__all__ = ["IRSA_ROLE_ARN", "IrsaEnv"]

#: The role ``irsa_env`` puts in ``AWS_ROLE_ARN``.
IRSA_ROLE_ARN = "arn:aws:iam::123456789012:role/webid-test"

# Variables that would let botocore find credentials some other way than web identity, or
# send STS calls somewhere else than the emulator.
_REMOVED = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
)


@dataclass
class IrsaEnv:
    """What ``irsa_env`` set up. ``env`` holds exactly the variables it set."""

    token_file: Path
    kubelet: KubeletTokenFile
    role_arn: str
    cache_dir: Path
    emulator: StsEmulator
    issuer: OidcIssuer
    env: Dict[str, str] = field(default_factory=dict)

    def rotate(
        self,
        sub: str = "system:serviceaccount:default:app",
        aud: Union[str, Sequence[str]] = "sts.amazonaws.com",
        ttl: int = 3600,
        alg: str = "RS256",
        *,
        token: Optional[str] = None,
        extra_claims: Optional[Mapping[str, object]] = None,
        **claims: object,
    ) -> str:
        """Mint a token (or take ``token`` as is) and rotate it into the token file.

        :param extra_claims: claims for :meth:`OidcIssuer.mint`
        :param token: write this exact content instead of minting (an expired or badly
            signed token from the issuer, an empty string, ...)
        :returns: the token now in the file
        """
        if token is None:
            token = self.issuer.mint(
                sub=sub, aud=aud, ttl=ttl, alg=alg, extra_claims=extra_claims, **claims
            )
        self.kubelet.rotate(token)
        return token


@contextlib.contextmanager
def _testing_extra() -> Iterator[None]:
    """Fail the test with the install command when the ``testing`` extra is missing."""
    from webid_provider.testing._extra import INSTALL_HINT, is_missing_extra

    try:
        yield
    except ImportError as exc:
        if not is_missing_extra(exc):
            raise
        package = (exc.name or "").split(".")[0]
        message = f"the webid_provider fixtures need the testing extra ({package} is missing): "
        raise pytest.fail.Exception(message + INSTALL_HINT, pytrace=False) from None


@pytest.fixture(scope="session")
def oidc_issuer() -> OidcIssuer:
    """A local OIDC identity provider (keys generated once per session)."""
    with _testing_extra():
        from webid_provider.testing import OidcIssuer

        return OidcIssuer()


@pytest.fixture(scope="session")
def sts_emulator_server(oidc_issuer: OidcIssuer) -> Iterator[StsEmulator]:
    """The session's STS emulator (moto on loopback behind a strict front)."""
    from webid_provider.testing import StsEmulator

    with _testing_extra():
        emulator = StsEmulator(oidc_issuer).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def sts_emulator(sts_emulator_server: StsEmulator) -> StsEmulator:
    """The session's STS emulator, reset: no recorded calls, no faults, default settings, and
    an empty IAM (no roles or OIDC providers from an earlier test)."""
    sts_emulator_server.reset(iam=True)
    return sts_emulator_server


@pytest.fixture
def irsa_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    oidc_issuer: OidcIssuer,
    sts_emulator: StsEmulator,
) -> IrsaEnv:
    """An IRSA pod's environment pointed at the emulator, in ``tmp_path``.

    Sets ``AWS_ROLE_ARN``, ``AWS_WEB_IDENTITY_TOKEN_FILE``, ``AWS_ENDPOINT_URL_STS``, the
    region, ``WEBID_PROVIDER_CACHE_DIR`` (not created), empty ``AWS_CONFIG_FILE`` and
    ``AWS_SHARED_CREDENTIALS_FILE``, and ``AWS_EC2_METADATA_DISABLED``; removes static keys,
    profiles, the session name and ``AWS_ENDPOINT_URL``.
    """
    from webid_provider.testing import KubeletTokenFile

    kubelet = KubeletTokenFile(tmp_path / "serviceaccount", oidc_issuer.mint())
    config_file = tmp_path / "aws-config"
    credentials_file = tmp_path / "aws-credentials"
    config_file.write_text("", encoding="utf-8")
    credentials_file.write_text("", encoding="utf-8")
    cache_dir = tmp_path / "cache"
    env = {
        "AWS_ROLE_ARN": IRSA_ROLE_ARN,
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(kubelet.path),
        "AWS_ENDPOINT_URL_STS": sts_emulator.endpoint_url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "WEBID_PROVIDER_CACHE_DIR": str(cache_dir),
        "AWS_CONFIG_FILE": str(config_file),
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials_file),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name in _REMOVED:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return IrsaEnv(
        token_file=kubelet.path,
        kubelet=kubelet,
        role_arn=IRSA_ROLE_ARN,
        cache_dir=cache_dir,
        emulator=sts_emulator,
        issuer=oidc_issuer,
        env=env,
    )
