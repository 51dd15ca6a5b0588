"""AWS credentials in a GitHub Actions job from the job's own OIDC token, with no secrets.

GitHub gives a job that has ``permissions: id-token: write`` two variables:
``ACTIONS_ID_TOKEN_REQUEST_URL`` and ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``. A GET to the URL with
``audience=sts.amazonaws.com`` and ``Authorization: bearer <request token>`` answers
``{"value": "<JWT>"}``, a token signed by ``https://token.actions.githubusercontent.com``
whose ``sub`` names the repository and ref (``repo:octo-org/octo-repo:ref:refs/heads/main``).

botocore has no way to take a token from a URL, so this passes a callable as
``web_identity_token``: ``webid_provider`` calls it before every STS call (tokens live only
minutes; this one is never cached by us) and exchanges the token for credentials.

Security: the request token and the JWT are secrets. They are never printed or logged, and
they are only ever sent over HTTPS (plain HTTP is accepted for 127.0.0.1, which the test suite
uses). The role's trust policy must pin ``token.actions.githubusercontent.com:sub`` to your
repository, or any repository's workflow could assume it.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.parse
import urllib.request

import webid_provider

AUDIENCE = "sts.amazonaws.com"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def actions_id_token(audience: str = AUDIENCE, timeout_seconds: float = 10.0) -> str:
    """Fetch a fresh OIDC token for this job from the Actions token endpoint.

    :raises RuntimeError: when the job has no ``id-token: write`` permission or the endpoint
        answers without a token
    """
    url = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL")
    request_token = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if not url or not request_token:
        raise RuntimeError(
            "ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN are not set: give the job "
            "'permissions: id-token: write'"
        )
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        raise RuntimeError("refusing to send the request token over a non-HTTPS URL")
    # The URL already carries a query string (api-version=...); add the audience to it.
    query = [*urllib.parse.parse_qsl(parts.query), ("audience", audience)]
    full_url = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    request = urllib.request.Request(
        full_url,
        headers={"Authorization": f"bearer {request_token}", "Accept": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
        body = json.load(response)
    token = body.get("value") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise RuntimeError("the Actions token endpoint answered without a token")
    return token


def main() -> int:
    run_id = os.environ.get("GITHUB_RUN_ID", "local")
    session = webid_provider.session(
        role_arn=os.environ["AWS_ROLE_ARN"],
        web_identity_token=actions_id_token,  # called for each STS call, never cached
        role_session_name=f"gha-{run_id}"[:64],
        duration_seconds=900,  # a CI job rarely needs more; refreshes scale with it
    )
    identity = session.client("sts").get_caller_identity()
    print(json.dumps({"arn": identity["Arn"], "account": identity["Account"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
