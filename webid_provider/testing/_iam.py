"""Roles and OIDC identity providers from moto's IAM, read in-process.

The emulator serves moto's application from its own process, so the IAM a test writes to with
``boto3.client("iam", endpoint_url=sts.endpoint_url)`` (``create_role``,
``create_open_id_connect_provider``) is moto's in-memory IAM backend, which this module reads
directly: no HTTP round trip, and no credentials needed. A role is looked up in the account
and partition its ARN names, as STS does.

moto's backends are process-wide: two emulators in one process share one IAM. The emulator's
``reset()`` therefore empties IAM (:func:`reset_iam`), so one test's roles never decide
another test's calls.

Only what the emulator needs is read: a role's trust policy and ``MaxSessionDuration``, and an
OIDC provider's client IDs. Imported when the first request arrives (moto is test-only).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Optional, Tuple
from urllib.parse import urlsplit

__all__ = ["IamRole", "OidcProvider", "find_oidc_provider", "find_role", "issuer_key", "reset_iam"]

_ROLE_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/")


@dataclass(frozen=True)
class IamRole:
    """A role as IAM holds it."""

    arn: str
    partition: str
    account_id: str
    trust_policy: str
    max_session_duration: int


@dataclass(frozen=True)
class OidcProvider:
    """An IAM OpenID Connect provider: its ARN and the audiences (client IDs) it accepts."""

    arn: str
    client_ids: Tuple[str, ...]


def issuer_key(issuer: str) -> str:
    """The issuer as IAM names it: host and path, no scheme, no trailing slash.

    It is both the end of the provider's ARN and the prefix of the trust policy's condition
    keys (``oidc.example.com/id/ABC:sub``).
    """
    parts = urlsplit(issuer)
    return (parts.netloc + parts.path).rstrip("/") if parts.netloc else issuer.rstrip("/")


def _backend(account_id: str, partition: str) -> Optional[Any]:
    from moto.iam.models import iam_backends

    # Look without creating: moto builds a backend on first subscript.
    if account_id not in iam_backends:
        return None
    per_account = iam_backends[account_id]
    # per_account's own "in" also answers True for regions it would create on access.
    if partition not in per_account.keys():  # noqa: SIM118
        return None
    return per_account[partition]


def find_role(role_arn: str) -> Optional[IamRole]:
    """The role with exactly this ARN in moto's IAM, ``None`` when IAM has no such role."""
    match = _ROLE_ARN.match(role_arn)
    if match is None:
        return None
    partition, account_id = match.group("partition"), match.group("account")
    backend = _backend(account_id, partition)
    if backend is None:
        return None
    roles: Iterable[Any] = list(backend.get_roles())
    for role in roles:
        if role.arn == role_arn:
            return IamRole(
                arn=role_arn,
                partition=partition,
                account_id=account_id,
                trust_policy=str(role.assume_role_policy_document or ""),
                max_session_duration=int(role.max_session_duration or 3600),
            )
    return None


def find_oidc_provider(role: IamRole, issuer: str) -> Optional[OidcProvider]:
    """The OIDC provider registered for ``issuer`` in the role's account, if any."""
    backend = _backend(role.account_id, role.partition)
    if backend is None:
        return None
    from moto.iam.exceptions import NotFoundException

    arn = f"arn:{role.partition}:iam::{role.account_id}:oidc-provider/{issuer_key(issuer)}"
    try:
        provider = backend.get_open_id_connect_provider(arn)
    except NotFoundException:
        return None
    return OidcProvider(arn=arn, client_ids=tuple(provider.client_id_list or ()))


def reset_iam() -> None:
    """Forget every role, policy and provider of moto's IAM (every account and partition).

    Does nothing when moto's IAM was never used in this process.
    """
    import sys

    models = sys.modules.get("moto.iam.models")
    if models is None:
        return
    for per_account in list(models.iam_backends.values()):
        per_account.reset()
