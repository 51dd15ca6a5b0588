"""The result of one AssumeRoleWithWebIdentity call, as a plain value.

Every output field of the operation is kept (botocore keeps only the keys), because users
need ``SubjectFromWebIdentityToken``, ``Audience``, ``Provider``, ``SourceIdentity`` and
``PackedPolicySize`` to see who they are and how close their session policy is to the limit.

The same shape is written to the disk cache and printed by the CLI, so this module also owns
the conversion to and from the JSON form of an STS response. ``obtained_at`` is ours, not
STS's: it is when the credentials were received, which gives their lifetime.

Security: ``repr`` never shows the secret key or the session token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional

from webid_provider._fields import (
    account_in_arn,
    format_timestamp,
    optional_text,
    packed_policy_size,
    parse_timestamp,
    required_text,
)


@dataclass(frozen=True)
class AssumedRoleUser:
    """Who the credentials act as: ``arn:aws:sts::<account>:assumed-role/<role>/<session>``."""

    arn: str
    assumed_role_id: str


@dataclass(frozen=True)
class WebIdentityResult:
    """Temporary credentials plus every other output field of AssumeRoleWithWebIdentity."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime
    obtained_at: datetime
    assumed_role_user: Optional[AssumedRoleUser] = None
    subject_from_web_identity_token: Optional[str] = None
    audience: Optional[str] = None
    provider: Optional[str] = None
    source_identity: Optional[str] = None
    packed_policy_size: Optional[int] = None

    def __post_init__(self) -> None:
        for name in ("expiration", "obtained_at"):
            value = getattr(self, name)
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise ValueError(f"{name} must be a timezone-aware datetime")

    @property
    def account_id(self) -> Optional[str]:
        """The AWS account of the assumed role, parsed from the assumed-role ARN."""
        if self.assumed_role_user is None:
            return None
        return account_in_arn(self.assumed_role_user.arn)

    @property
    def lifetime_seconds(self) -> float:
        """Seconds between receiving the credentials and their expiration."""
        return (self.expiration - self.obtained_at).total_seconds()

    def seconds_left(self, now: datetime) -> float:
        """Seconds until expiration, negative once expired."""
        return (self.expiration - now).total_seconds()

    @classmethod
    def from_response(
        cls, response: Mapping[str, Any], *, obtained_at: datetime
    ) -> WebIdentityResult:
        """Build from a botocore-parsed (``Expiration`` a datetime) or JSON (ISO string) response.

        :raises ValueError: when a required field is missing or malformed
        """
        creds = response.get("Credentials")
        if not isinstance(creds, Mapping):
            raise ValueError("response has no Credentials")
        user = response.get("AssumedRoleUser")
        assumed = None
        if isinstance(user, Mapping):
            assumed = AssumedRoleUser(
                arn=required_text(user, "Arn"), assumed_role_id=required_text(user, "AssumedRoleId")
            )
        return cls(
            access_key_id=required_text(creds, "AccessKeyId"),
            secret_access_key=required_text(creds, "SecretAccessKey"),
            session_token=required_text(creds, "SessionToken"),
            expiration=parse_timestamp(creds.get("Expiration")),
            obtained_at=obtained_at,
            assumed_role_user=assumed,
            subject_from_web_identity_token=optional_text(response, "SubjectFromWebIdentityToken"),
            audience=optional_text(response, "Audience"),
            provider=optional_text(response, "Provider"),
            source_identity=optional_text(response, "SourceIdentity"),
            packed_policy_size=packed_policy_size(response),
        )

    def to_response(self) -> dict[str, Any]:
        """The STS response shape with ISO-8601 timestamps (what the aws CLI prints)."""
        out: dict[str, Any] = {
            "Credentials": {
                "AccessKeyId": self.access_key_id,
                "SecretAccessKey": self.secret_access_key,
                "SessionToken": self.session_token,
                "Expiration": format_timestamp(self.expiration),
            }
        }
        if self.subject_from_web_identity_token is not None:
            out["SubjectFromWebIdentityToken"] = self.subject_from_web_identity_token
        if self.assumed_role_user is not None:
            out["AssumedRoleUser"] = {
                "AssumedRoleId": self.assumed_role_user.assumed_role_id,
                "Arn": self.assumed_role_user.arn,
            }
        if self.packed_policy_size is not None:
            out["PackedPolicySize"] = self.packed_policy_size
        for key, value in (
            ("Provider", self.provider),
            ("Audience", self.audience),
            ("SourceIdentity", self.source_identity),
        ):
            if value is not None:
                out[key] = value
        return out

    def to_botocore_metadata(self, *, expiry_time: Optional[datetime] = None) -> dict[str, Any]:
        """The dict ``RefreshableCredentials`` expects from ``refresh_using``.

        :param expiry_time: the expiry botocore should act on, when it differs from the real one
        """
        return {
            "access_key": self.access_key_id,
            "secret_key": self.secret_access_key,
            "token": self.session_token,
            "expiry_time": format_timestamp(expiry_time or self.expiration),
            "account_id": self.account_id,
        }
