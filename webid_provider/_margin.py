"""How much lifetime credentials must have left when handed to a consumer that refreshes itself.

botocore refreshes ``credential_process`` and container credentials once fewer than 15
minutes are left (the JavaScript SDK: 5). Credentials handed over with less are refreshed on
the consumer's very next request: a ``credential_process`` consumer respawns us on every
request (issue 13 measured 26 spawns for 25 requests). So ``credential-process`` and the
container endpoint hand out credentials with at least the *margin* left, refreshing first when
the cached entry has less, plus a random jitter (7-20 % of the margin) so that a fleet's
hosts do not refresh in the same second and a consumer gets at least a minute from each hand-out.

The margin cannot help when sessions are too short to outlive it: with ``duration_seconds``
at most twice the margin, every refresh would cost an STS call for little gain, so the
credentials in hand are handed out as they are (README: the consumer then respawns per
request; use ``register()`` or longer sessions). Unset ``duration_seconds`` means STS's
default of one hour.

Standard library only: the fast ``credential-process`` path uses it without botocore.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    import random

#: botocore's advisory refresh window for ``credential_process`` and container credentials
DEFAULT_MIN_REMAINING_SECONDS = 900.0
#: STS's session length when ``DurationSeconds`` is not sent
STS_DEFAULT_DURATION_SECONDS = 3600
#: the jitter added to the margin, as fractions of the margin
JITTER_FRACTIONS = (1 / 15, 1 / 5)
#: sessions at most this many margins long are handed out without a margin refresh
MIN_SESSION_MARGINS = 2.0


def effective_margin(duration_seconds: Optional[int], min_remaining_seconds: float) -> float:
    """The margin to apply for sessions of ``duration_seconds`` (0: hand out what we have)."""
    session = duration_seconds if duration_seconds is not None else STS_DEFAULT_DURATION_SECONDS
    if min_remaining_seconds <= 0 or session <= MIN_SESSION_MARGINS * min_remaining_seconds:
        return 0.0
    return float(min_remaining_seconds)


def jittered(margin_seconds: float, rng: Optional[random.Random] = None) -> float:
    """The margin for one hand-out: ``margin_seconds`` plus 7-20 % of it, drawn each time.

    Without ``rng`` the draw comes from ``os.urandom``: the fast path skips importing
    ``random``, and the jitter needs no reproducibility there.
    """
    if margin_seconds <= 0:
        return 0.0
    low, high = JITTER_FRACTIONS
    unit = rng.random() if rng is not None else int.from_bytes(os.urandom(7), "big") / 2**56
    return margin_seconds * (1.0 + low + (high - low) * unit)


def parse_min_remaining(value: str) -> float:
    """``--min-remaining`` as seconds; raises ``ValueError`` naming the problem."""
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number of seconds") from None
    if not 0 <= seconds <= 43200 or seconds != seconds:
        raise ValueError(f"{value!r} is outside 0-43200 seconds")
    return seconds
