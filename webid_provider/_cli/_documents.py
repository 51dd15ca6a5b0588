"""The JSON documents consumers read: ``credential_process`` output and the container endpoint's.

``credential_process`` (botocore's ``ProcessProvider`` and every other SDK): ``Version`` 1,
``AccessKeyId``, ``SecretAccessKey``, ``SessionToken``, ``Expiration`` (ISO 8601, as
:func:`webid_provider._fields.format_timestamp` writes it) and ``AccountId`` when the
assumed-role ARN gives it.

Container credentials (``AWS_CONTAINER_CREDENTIALS_FULL_URI``; botocore's
``ContainerProvider``, the aws CLI, the Go, Java, JavaScript and other SDKs, as served by ECS
and EKS Pod Identity): ``AccessKeyId``, ``SecretAccessKey``, ``Token``, ``Expiration`` in the
``2026-01-01T13:00:00Z`` form every SDK parses, and ``AccountId`` where known. (ECS also
sends ``RoleArn``; SDKs do not read it, and the assumed-role ARN loses the role's path, so it
is left out rather than guessed.)

One formatter per document, taking plain values: the full path passes a
:class:`~webid_provider._result.WebIdentityResult`'s fields, the fast ``credential-process``
path the fields it read from the cache entry, so both print byte-identical documents. This
module imports nothing heavier than ``json`` at run time (the fast path must not import
``dataclasses``, which ``webid_provider._result`` does).

Security: these documents are the credentials; they go to stdout or to an authorized HTTP
client and nowhere else.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from webid_provider._result import WebIdentityResult


def credential_process_fields(
    access_key_id: str,
    secret_access_key: str,
    session_token: str,
    expiration: datetime,
    account_id: Optional[str],
) -> dict[str, Any]:
    """The ``credential_process`` JSON for these values."""
    document: dict[str, Any] = {
        "Version": 1,
        "AccessKeyId": access_key_id,
        "SecretAccessKey": secret_access_key,
        "SessionToken": session_token,
        "Expiration": expiration.astimezone(timezone.utc).isoformat(),
    }
    if account_id is not None:
        document["AccountId"] = account_id
    return document


def credential_process_document(result: WebIdentityResult) -> dict[str, Any]:
    """The ``credential_process`` JSON for ``result``."""
    return credential_process_fields(
        result.access_key_id,
        result.secret_access_key,
        result.session_token,
        result.expiration,
        result.account_id,
    )


def credential_process_text(document: dict[str, Any]) -> str:
    """What ``credential-process`` prints for ``document``."""
    return json.dumps(document, indent=2) + "\n"


def container_document(result: WebIdentityResult) -> dict[str, Any]:
    """The container-credentials JSON for ``result``."""
    expiration = result.expiration.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    document: dict[str, Any] = {
        "AccessKeyId": result.access_key_id,
        "SecretAccessKey": result.secret_access_key,
        "Token": result.session_token,
        "Expiration": expiration,
    }
    if result.account_id is not None:
        document["AccountId"] = result.account_id
    return document
