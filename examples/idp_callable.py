"""A token from an identity provider's SDK, handed to webid_provider as a callable.

Apps that sign users or workloads in through Okta, Auth0, Cognito or Google already hold an
SDK client that can produce an OpenID Connect ID token and refreshes it itself. botocore has
no public way to take a token from a function; ``web_identity_token=<callable>`` does:

    idp = YourIdpSdkClient(...)
    webid_provider.register(role_arn=ROLE_ARN, web_identity_token=lambda: idp.id_token())

``webid_provider`` calls the function once per STS call (and never caches what it returns),
so the SDK's own caching and refresh decide which token is sent. The function may return
``str`` or ``bytes``; an exception from it is reported as a ``TokenSourceError`` naming the
callable, and while credentials that are still valid exist they keep being served.

``StandInIdpClient`` below plays the SDK. ``python examples/idp_callable.py`` runs the whole
flow on this machine: it starts the package's local OIDC issuer and STS emulator (needs
``pip install 'webid-provider[testing]'``) and prints the assumed role.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Callable, Optional

import boto3

import webid_provider

ROLE_ARN = "arn:aws:iam::123456789012:role/idp-example"


class StandInIdpClient:
    """Plays an IdP SDK client: caches its ID token and fetches a new one near expiry.

    :param fetch: returns ``(token, lifetime_seconds)``; a real SDK does a network call here
    :param refresh_margin_seconds: fetch anew when the cached token has less left than this
    """

    def __init__(
        self, fetch: Callable[[], tuple[str, float]], refresh_margin_seconds: float = 60.0
    ) -> None:
        self._fetch = fetch
        self._margin = refresh_margin_seconds
        self._lock = threading.Lock()
        self._token: Optional[str] = None
        self._expires_at = 0.0
        self.fetches = 0

    def id_token(self) -> str:
        """The current ID token (thread-safe: our refresher may call from any thread)."""
        with self._lock:
            if self._token is None or time.monotonic() > self._expires_at - self._margin:
                self._token, lifetime = self._fetch()
                self._expires_at = time.monotonic() + lifetime
                self.fetches += 1
            return self._token


def session_for(idp: StandInIdpClient, role_arn: str) -> boto3.Session:
    """A boto3 session whose credentials come from ``idp``'s tokens."""
    session: boto3.Session = webid_provider.session(
        role_arn=role_arn,
        web_identity_token=idp.id_token,  # the bound method is the callable
        role_session_name="idp-example",
    )
    return session


def run(idp: StandInIdpClient, role_arn: str = ROLE_ARN) -> dict[str, object]:
    identity = session_for(idp, role_arn).client("sts").get_caller_identity()
    return {"arn": identity["Arn"], "idp_fetches": idp.fetches}


def _demo() -> dict[str, object]:
    """The whole flow against the local emulator, nothing leaves 127.0.0.1."""
    from webid_provider.testing import OidcIssuer, StsEmulator

    # This process only: static keys or a profile in the environment would win over web
    # identity in botocore's chain, and the demo must talk to the emulator alone.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        os.environ.pop(name, None)
    issuer = OidcIssuer()
    with StsEmulator(issuer) as sts:
        os.environ["AWS_ENDPOINT_URL_STS"] = sts.endpoint_url
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        idp = StandInIdpClient(lambda: (issuer.mint(sub="user-42", ttl=600), 600.0))
        # Memory only: a demo should not leave credentials in ~/.aws.
        session = webid_provider.session(
            role_arn=ROLE_ARN,
            web_identity_token=idp.id_token,
            role_session_name="idp-example",
            cache_dir=None,
        )
        identity = session.client("sts").get_caller_identity()
        return {"arn": identity["Arn"], "idp_fetches": idp.fetches, "sts_calls": sts.assume_count}


def main() -> int:
    print(json.dumps(_demo()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
