"""The records the STS emulator keeps: one per AssumeRoleWithWebIdentity call, one per signed
request, and the emulated expiry of every access key it issued (:class:`CallLog`).

Tests assert on these instead of on logs: how many STS calls a code path made, with which
parameters, what each was answered, and whether any request was signed with credentials the
emulator had already declared expired.

Security: a call record holds the SHA-256 hex of the token, never the token; the records hold
no secret key or session token.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Dict, List, Optional, Tuple

from webid_provider.testing._token import unverified_subject
from webid_provider.testing._validate import WebIdentityRequest

__all__ = ["DROPPED", "CallLog", "SignedRequest", "StsCall", "call_record"]

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


class CallLog:
    """The emulator's records. Thread-safe (one lock of its own)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: List[StsCall] = []
        self._signed: List[SignedRequest] = []
        self._issued: Dict[str, datetime] = {}

    def add_call(self, call: StsCall) -> None:
        """Record one AssumeRoleWithWebIdentity call; remember the expiry of a key it issued."""
        with self._lock:
            self._calls.append(call)
            if call.access_key_id is not None and call.expiration is not None:
                self._issued[call.access_key_id] = call.expiration

    def add_signed(self, access_key_id: str, now: datetime) -> bool:
        """Record a signed request; ``True`` when its key was issued here and has expired."""
        with self._lock:
            expiration = self._issued.get(access_key_id)
            expired = expiration is not None and now >= expiration
            self._signed.append(SignedRequest(access_key_id=access_key_id, at=now, expired=expired))
        return expired

    def calls(self) -> List[StsCall]:
        """Every call, by arrival time."""
        with self._lock:
            return sorted(self._calls, key=lambda call: call.at)

    def signed_requests(self) -> List[SignedRequest]:
        """Every signed request, in the order they were recorded."""
        with self._lock:
            return list(self._signed)

    def clear(self) -> None:
        """Forget calls and signed requests; issued keys stay known so expiry is still enforced."""
        with self._lock:
            self._calls.clear()
            self._signed.clear()
