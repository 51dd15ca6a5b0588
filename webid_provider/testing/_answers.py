"""What the STS emulator sends and reads: its success document and the glue to moto.

moto mints the keys (so they work with moto's other APIs), but its AssumeRoleWithWebIdentity
answer lacks ``SubjectFromWebIdentityToken``, ``Audience``, ``Provider`` and
``SourceIdentity``, hard-codes ``AssumedRoleId`` and ``PackedPolicySize``, and follows the
requested duration only. So the emulator calls moto's WSGI application in-process (the
same application its server serves), reads the three credential values from moto's XML and
writes its own document around them.

Security: moto's answer is parsed only from the in-process application. The success document
carries the secret key and session token (it is the STS answer); nothing here logs.
"""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ElementTree
from datetime import datetime
from typing import Any, Optional, Tuple
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from webid_provider.testing._token import Identity
from webid_provider.testing._validate import WebIdentityRequest
from webid_provider.testing._wire import STS_NAMESPACE

_PLACEHOLDER_TOKEN = "webid-emulator-placeholder"


def mint_with_moto(
    moto_app: Any, request: WebIdentityRequest, duration_seconds: int
) -> Tuple[int, Optional[Tuple[str, str, str]]]:
    """Have moto mint keys for a validated request.

    moto gets a placeholder instead of the token: it never reads it, and this way the token
    cannot end up in moto's state or logs.

    :param moto_app: moto's WSGI application
    :returns: moto's HTTP status and (access key id, secret key, session token), or ``None``
        when moto's answer holds no credentials
    """
    from werkzeug.test import Client

    assert request.role_arn is not None
    assert request.role_session_name is not None
    form = {
        "Action": "AssumeRoleWithWebIdentity",
        "Version": "2011-06-15",
        "RoleArn": request.role_arn,
        "RoleSessionName": request.role_session_name,
        "WebIdentityToken": _PLACEHOLDER_TOKEN,
        "DurationSeconds": str(duration_seconds),
    }
    answer = Client(moto_app).post(
        "/",
        data=urlencode(form),
        content_type="application/x-www-form-urlencoded; charset=utf-8",
    )
    body = answer.get_data()
    return answer.status_code, moto_credentials(body) if answer.status_code == 200 else None


def moto_credentials(body: bytes) -> Optional[Tuple[str, str, str]]:
    """The three credential values of moto's answer, ``None`` when one is missing."""
    # Parsing the in-process moto server's own answer over loopback: trusted input.
    root = ElementTree.fromstring(body)  # noqa: S314
    ns = {"sts": STS_NAMESPACE}
    values = [
        root.findtext(f".//sts:Credentials/sts:{name}", namespaces=ns)
        for name in ("AccessKeyId", "SecretAccessKey", "SessionToken")
    ]
    if not all(values):
        return None
    return (str(values[0]), str(values[1]), str(values[2]))


def _assumed_role_user(role_arn: str, session_name: str) -> Tuple[str, str]:
    """The assumed-role ARN (role name without path) and a stable ``AROA...:<session>`` id."""
    parts = role_arn.split(":", 5)
    partition, account, resource = parts[1], parts[4], parts[5]
    role_name = resource.rsplit("/", 1)[-1]
    digest = base64.b32encode(hashlib.sha256(role_arn.encode("utf-8")).digest()).decode("ascii")
    role_id = "AROA" + digest[:17]
    arn = f"arn:{partition}:sts::{account}:assumed-role/{role_name}/{session_name}"
    return arn, f"{role_id}:{session_name}"


def render_success(
    request: WebIdentityRequest,
    identity: Identity,
    packed: Optional[int],
    rid: str,
    access_key_id: str,
    secret_access_key: str,
    session_token: str,
    expiration: datetime,
) -> str:
    """The AssumeRoleWithWebIdentityResponse document real STS sends, every field filled."""
    assert request.role_arn is not None
    assert request.role_session_name is not None
    arn, role_id = _assumed_role_user(request.role_arn, request.role_session_name)
    stamp = expiration.strftime("%Y-%m-%dT%H:%M:%SZ")
    parts = [
        f'<AssumeRoleWithWebIdentityResponse xmlns="{STS_NAMESPACE}">',
        "<AssumeRoleWithWebIdentityResult>",
        "<Credentials>",
        f"<AccessKeyId>{escape(access_key_id)}</AccessKeyId>",
        f"<SecretAccessKey>{escape(secret_access_key)}</SecretAccessKey>",
        f"<SessionToken>{escape(session_token)}</SessionToken>",
        f"<Expiration>{stamp}</Expiration>",
        "</Credentials>",
        f"<SubjectFromWebIdentityToken>{escape(identity.subject)}</SubjectFromWebIdentityToken>",
        f"<AssumedRoleUser><Arn>{escape(arn)}</Arn>"
        f"<AssumedRoleId>{escape(role_id)}</AssumedRoleId></AssumedRoleUser>",
    ]
    if packed is not None:
        parts.append(f"<PackedPolicySize>{packed}</PackedPolicySize>")
    parts.append(f"<Provider>{escape(identity.provider)}</Provider>")
    parts.append(f"<Audience>{escape(identity.audience)}</Audience>")
    if identity.source_identity is not None:
        parts.append(f"<SourceIdentity>{escape(identity.source_identity)}</SourceIdentity>")
    parts.append("</AssumeRoleWithWebIdentityResult>")
    parts.append(f"<ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata>")
    parts.append("</AssumeRoleWithWebIdentityResponse>")
    return "".join(parts)
