"""Faults the STS emulator injects into AssumeRoleWithWebIdentity: errors, drops, outages.

Credential code must survive what real STS does under load or during an incident: throttling,
5xx answers, connections closed without an answer, whole minutes of unavailability. A
:class:`FaultPlan` holds what a test asked for and hands out one fault per call, in this order:
an ongoing outage, then queued connection drops, then queued error answers.

Not thread-safe by itself: the emulator calls it under its own lock.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Deque, Optional, Tuple

from webid_provider.testing._records import DROPPED

#: The message sent for a well-known code when the test gives none (STS's own wording).
DEFAULT_MESSAGES = {
    "Throttling": "Rate exceeded",
    "ServiceUnavailable": "Service Unavailable",
    "InternalFailure": "An internal error occurred.",
    "IDPCommunicationError": (
        "The request could not be fulfilled because the identity provider (IDP) that was "
        "asked to verify the incoming identity token could not be reached."
    ),
    "InvalidIdentityToken": (
        "The web identity token that was passed could not be validated by Amazon Web "
        "Services. Get a new identity token from the identity provider and then retry the "
        "request."
    ),
    "ExpiredTokenException": (
        "The web identity token that was passed is expired or is not valid. Get a new "
        "identity token from the identity provider and then retry the request."
    ),
    "IDPRejectedClaim": (
        "The identity provider (IdP) reported that authentication failed. This might be "
        "because the claim is invalid."
    ),
    "AccessDenied": "Not authorized to perform sts:AssumeRoleWithWebIdentity",
    "RegionDisabledException": "STS is not activated in this region for account.",
}


@dataclass(frozen=True)
class Fault:
    """One injected answer: an STS error (``code``, ``message``, ``status``) or a drop."""

    code: str
    message: str
    status: int
    drop: bool

    @classmethod
    def error(cls, code: str, message: Optional[str], status: int) -> Fault:
        """An error answer; ``message`` defaults to STS's text for well-known codes."""
        return cls(code, message or DEFAULT_MESSAGES.get(code, code), status, drop=False)

    @classmethod
    def for_mode(cls, mode: str, code: str, message: Optional[str], status: int) -> Fault:
        """An error answer (``mode="error"``) or a dropped connection (``mode="drop"``).

        :raises ValueError: on an unknown mode
        """
        if mode not in ("error", "drop"):
            raise ValueError("mode must be 'error' or 'drop'")
        return _DROP if mode == "drop" else cls.error(code, message, status)


_DROP = Fault(DROPPED, "", 0, drop=True)


class FaultPlan:
    """The faults still to inject."""

    def __init__(self) -> None:
        self._failures: Deque[Fault] = deque()
        self._drops = 0
        self._outage: Optional[Tuple[float, Fault]] = None

    def fail_next(self, fault: Fault, count: int) -> None:
        """Queue ``count`` error answers after those already queued."""
        self._failures.extend([fault] * count)

    def drop_next(self, count: int) -> None:
        """Queue ``count`` dropped connections."""
        self._drops += count

    def outage(self, seconds: float, fault: Fault) -> None:
        """Answer every call with ``fault`` for the next ``seconds`` (replaces any outage)."""
        self._outage = (time.monotonic() + seconds, fault)

    def take(self) -> Optional[Fault]:
        """The fault for the call arriving now, consuming it; ``None`` to answer normally."""
        if self._outage is not None:
            until, fault = self._outage
            if time.monotonic() < until:
                return fault
            self._outage = None
        if self._drops > 0:
            self._drops -= 1
            return _DROP
        if self._failures:
            return self._failures.popleft()
        return None

    def clear(self) -> None:
        """Forget every planned fault."""
        self._failures.clear()
        self._drops = 0
        self._outage = None
