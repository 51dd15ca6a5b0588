"""Test helpers for code that uses ``webid_provider``: an OIDC issuer and a strict STS emulator.

``OidcIssuer`` mints signed web identity tokens (and broken ones); ``StsEmulator`` answers
AssumeRoleWithWebIdentity on a loopback port the way real STS does, on top of moto's server,
with faults, short lifetimes and a record of every call; ``KubeletTokenFile`` writes and
rotates a token file the way the kubelet does. The pytest fixtures built on them
(``oidc_issuer``, ``sts_emulator``, ``irsa_env``) live in ``webid_provider.testing.plugin``,
which pytest loads through the ``pytest11`` entry point.

This package imports neither ``moto`` nor ``pytest``: pytest loads the plugin in every
environment where ``webid_provider`` is installed, so test-only dependencies are imported
where they are used. They come with the ``webid-provider[testing]`` extra.
"""

from __future__ import annotations

from webid_provider.testing.emulator import SignedRequest, StsCall, StsEmulator
from webid_provider.testing.issuer import OidcIssuer
from webid_provider.testing.kubelet import KubeletTokenFile

__all__ = ["KubeletTokenFile", "OidcIssuer", "SignedRequest", "StsCall", "StsEmulator"]
