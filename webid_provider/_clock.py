"""The clock every expiry computation takes, and its default.

Code that judges credentials against the time takes a :data:`Clock` argument instead of calling
``datetime.now()`` (STYLE.md, "inject the clock"), so tests move a fake clock rather than
sleeping for real credential lifetimes, and the benchmark runs hours of refreshes on a virtual
clock.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

#: Returns the current time as a timezone-aware UTC ``datetime``.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default :data:`Clock`: the system clock, aware UTC."""
    return datetime.now(timezone.utc)
