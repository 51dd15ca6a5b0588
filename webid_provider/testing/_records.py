"""The records the STS emulator keeps: one per AssumeRoleWithWebIdentity call, one per signed
request.

Tests assert on these instead of on logs: how many STS calls a code path made, with which
parameters, what each was answered, and whether any request was signed with credentials the
emulator had already declared expired.

Security: a call record holds the SHA-256 hex of the token, never the token; the records hold
no secret key or session token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional, Tuple

from webid_provider.testing._token import unverified_subject
from webid_provider.testing._validate import WebIdentityRequest

__all__ = ["DROPPED", "SignedRequest", "StsCall", "call_record"]

#: ``StsCall.error_code`` of a call whose connection the emulator closed without answering.
DROPPED = "ConnectionDropped"


@dataclass(frozen=True)
class StsCall:
    """One AssumeRoleWithWebIdentity request that reached the emulator, whatever its fate.

    ``error_code`` is ``None`` on success, the STS code of the answer otherwise, or
    ``"ConnectionDropped"`` when the emulator closed the connection without answering.
    """

    at: datetime
    role_arn: Optional[str]
    role_session_name: Optional[str]
    duration_seconds: Optional[int]
    policy: Optional[str]
    policy_arns: Tuple[str, ...]
    provider_id: Optional[str]
    token_sha256: str
    token_subject: Optional[str]
    error_code: Optional[str]
    access_key_id: Optional[str]
    expiration: Optional[datetime]


@dataclass(frozen=True)
class SignedRequest:
    """A signed request (any API but AssumeRoleWithWebIdentity) that reached the front."""

    access_key_id: str
    at: datetime
    expired: bool


def call_record(
    arrived: datetime,
    request: WebIdentityRequest,
    error_code: Optional[str],
    access_key_id: Optional[str] = None,
    expiration: Optional[datetime] = None,
) -> StsCall:
    """The record of one call: the request's parameters, the token's hash and ``sub``."""
    return StsCall(
        at=arrived,
        role_arn=request.role_arn,
        role_session_name=request.role_session_name,
        duration_seconds=request.duration_seconds,
        policy=request.policy,
        policy_arns=request.policy_arns,
        provider_id=request.provider_id,
        token_sha256=request.token_sha256,
        token_subject=unverified_subject(request),
        error_code=error_code,
        access_key_id=access_key_id,
        expiration=expiration,
    )
