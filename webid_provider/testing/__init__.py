"""Test helpers for code that uses ``webid_provider``: an OIDC issuer and a strict STS emulator.

``OidcIssuer`` mints signed web identity tokens (and broken ones); ``StsEmulator`` answers
AssumeRoleWithWebIdentity on a loopback port the way real STS does, on top of moto's server,
with faults, short lifetimes and a record of every call; ``KubeletTokenFile`` writes and
rotates a token file the way the kubelet does. The pytest fixtures built on them
(``oidc_issuer``, ``sts_emulator``, ``irsa_env``) live in ``webid_provider.testing.plugin``,
which pytest loads through the ``pytest11`` entry point.

pytest imports this package (the plugin's parent) in every environment where
``webid_provider`` is installed, including ones with the runtime dependencies only. So the
names below are loaded on first use (PEP 562 ``__getattr__``), and the test-only dependencies
(``moto``, ``cryptography``) are imported where they are used; they come with the
``webid-provider[testing]`` extra. Importing this package imports nothing beyond the standard
library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from webid_provider import _lazy

if TYPE_CHECKING:
    from webid_provider.testing.emulator import SignedRequest, StsCall, StsEmulator
    from webid_provider.testing.issuer import OidcIssuer
    from webid_provider.testing.kubelet import KubeletTokenFile

__all__ = ["KubeletTokenFile", "OidcIssuer", "SignedRequest", "StsCall", "StsEmulator"]

# public name -> the module that defines it
_HOMES = {
    "KubeletTokenFile": "webid_provider.testing.kubelet",
    "OidcIssuer": "webid_provider.testing.issuer",
    "SignedRequest": "webid_provider.testing.emulator",
    "StsCall": "webid_provider.testing.emulator",
    "StsEmulator": "webid_provider.testing.emulator",
}


def __getattr__(name: str) -> Any:
    return _lazy.load(globals(), _HOMES, name)


def __dir__() -> list[str]:
    return _lazy.names(globals(), __all__)
