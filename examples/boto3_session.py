"""Two ways to give one boto3 session web identity credentials, with every STS parameter.

1. ``webid_provider.session(...)``: a new ``boto3.Session`` whose credentials come from
   AssumeRoleWithWebIdentity with a session policy, managed policy ARNs, a session name and a
   duration (botocore's own provider sends none of these).
2. ``webid_provider.install(session, web_identity_token=<callable>)``: an existing session,
   with the token from a Python callable instead of a file. The callable is called for every
   STS call and its result is never cached by us, so it may return a fresh token each time.

Run it where ``AWS_ROLE_ARN`` and ``AWS_WEB_IDENTITY_TOKEN_FILE`` are set (an EKS pod, or the
test suite's emulator)::

    python examples/boto3_session.py

The policy below narrows what the role may do for this session only: the effective
permissions are the intersection of the role's policies and these.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import boto3

import webid_provider

READ_ONLY_S3 = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": ["arn:aws:s3:::example-bucket", "arn:aws:s3:::example-bucket/*"],
        }
    ],
}


def scoped_session(role_arn: str, token_file: str) -> boto3.Session:
    """A session limited by an inline policy and a managed policy, for 15 minutes."""
    session: boto3.Session = webid_provider.session(
        role_arn=role_arn,
        web_identity_token_file=token_file,
        role_session_name="examples-scoped",
        duration_seconds=900,  # the STS minimum; our refresh windows scale with it
        policy=READ_ONLY_S3,  # a dict or a JSON string, at most 2048 characters
        policy_arns=["arn:aws:iam::aws:policy/ReadOnlyAccess"],  # at most 10
    )
    return session


def session_from_callable(role_arn: str, token_file: str) -> boto3.Session:
    """An existing session, its token supplied by a callable (here: read a file ourselves)."""

    def read_token() -> str:
        # Stands in for any token source: a secrets manager, a sidecar, an SDK call.
        return Path(token_file).read_text(encoding="utf-8").strip()

    session = boto3.Session()
    webid_provider.install(
        session,
        role_arn=role_arn,
        web_identity_token=read_token,
        role_session_name="examples-callable",
    )
    return session


def main() -> int:
    missing = [
        name for name in ("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE") if not os.environ.get(name)
    ]
    if missing:
        print(
            f"{sys.argv[0]}: set {' and '.join(missing)}: run it in a pod with IRSA, or start "
            "the local emulator\n"
            "  webid-provider emulator --token-file /tmp/webid/token "
            "--role-arn arn:aws:iam::123456789012:role/app\n"
            "and export the variables it prints, with AWS_DEFAULT_REGION.",
            file=sys.stderr,
        )
        return 2
    role_arn = os.environ["AWS_ROLE_ARN"]
    token_file = os.environ["AWS_WEB_IDENTITY_TOKEN_FILE"]

    scoped = scoped_session(role_arn, token_file)
    identity = scoped.client("sts").get_caller_identity()
    credentials = scoped.get_credentials()
    assert isinstance(credentials, webid_provider.WebIdentityCredentials)
    result = credentials.web_identity  # every output field of the STS call
    print(
        json.dumps(
            {
                "scoped": {
                    "arn": identity["Arn"],
                    "expiration": result.expiration.isoformat(),
                    "lifetime_seconds": result.lifetime_seconds,
                    "packed_policy_size": result.packed_policy_size,
                    "subject": result.subject_from_web_identity_token,
                }
            }
        )
    )

    from_callable = session_from_callable(role_arn, token_file)
    identity = from_callable.client("sts").get_caller_identity()
    print(json.dumps({"callable": {"arn": identity["Arn"]}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
