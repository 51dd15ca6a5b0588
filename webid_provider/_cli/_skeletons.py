"""The skeletons ``assume-role-with-web-identity --generate-cli-skeleton`` prints.

``input`` is what ``aws sts assume-role-with-web-identity --generate-cli-skeleton`` prints:
the operation's input members in the service model's order, with botocore's
``ArgumentGenerator`` placeholders. ``yaml-input`` is the same document as YAML with a short
comment per member (an aws CLI v2 choice; v2's comments quote the full documentation).
``output`` is the operation's output shape with member names as values, printed through the
chosen ``--output`` format after the input is validated, as aws CLI v2 does. They are spelled
out rather than generated from botocore's model so that a newer model (with members this
command does not take) does not change them.

Security: placeholders only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

#: input keys in the service model's order (what ``--generate-cli-skeleton`` prints)
INPUT_KEYS = (
    "RoleArn",
    "RoleSessionName",
    "WebIdentityToken",
    "ProviderId",
    "PolicyArns",
    "Policy",
    "DurationSeconds",
)
INPUT_SKELETON: dict[str, Any] = {
    "RoleArn": "",
    "RoleSessionName": "",
    "WebIdentityToken": "",
    "ProviderId": "",
    "PolicyArns": [{"arn": ""}],
    "Policy": "",
    "DurationSeconds": 0,
}
YAML_INPUT_SKELETON = """\
RoleArn: ''  # [REQUIRED] The Amazon Resource Name (ARN) of the role that the caller is assuming.
RoleSessionName: ''  # [REQUIRED] An identifier for the assumed role session.
WebIdentityToken: ''  # [REQUIRED] The OAuth 2.0 access token or OpenID Connect ID token.
ProviderId: ''  # The host name of the OAuth 2.0 identity provider (not for OpenID Connect).
PolicyArns:  # The ARNs of the IAM managed policies to use as managed session policies.
- arn: ''  # The ARN of the IAM managed policy to use as a session policy for the role.
Policy: ''  # An IAM policy in JSON format to use as an inline session policy.
DurationSeconds: 0  # The duration, in seconds, of the role session.
"""
OUTPUT_SKELETON: dict[str, Any] = {
    "Credentials": {
        "AccessKeyId": "AccessKeyId",
        "SecretAccessKey": "SecretAccessKey",
        "SessionToken": "SessionToken",
        "Expiration": datetime(1970, 1, 1, 0, 0, 0),
    },
    "SubjectFromWebIdentityToken": "SubjectFromWebIdentityToken",
    "AssumedRoleUser": {"AssumedRoleId": "AssumedRoleId", "Arn": "Arn"},
    "PackedPolicySize": 0,
    "Provider": "Provider",
    "Audience": "Audience",
    "SourceIdentity": "SourceIdentity",
}
