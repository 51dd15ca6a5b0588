"""Helpers shared by the async tests."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on a new event loop, as an application's ``asyncio.run`` would."""
    return asyncio.run(coroutine)
