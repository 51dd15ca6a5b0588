"""Shared fixtures: a clean AWS environment for every test, and an injectable clock."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import webid_provider
from webid_provider._refresh_state import clear_memory_state

_AWS_VARIABLES_TO_CLEAR = [name for name in os.environ if name.startswith("AWS_")] + [
    "WEBID_PROVIDER_CACHE_DIR",
]


class FakeClock:
    """A clock tests move forward by hand; aware UTC like the package's own clock."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture(autouse=True)
def _clean_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's AWS settings, HOME or cache, or another test's memory or
    registration (``register()`` is undone here even when the test failed half-way)."""
    for name in _AWS_VARIABLES_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "aws-config"
    config.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    clear_memory_state()
    yield
    webid_provider.unregister()
    clear_memory_state()


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at a fixed instant; ``clock.advance(seconds)`` moves it."""
    return FakeClock(datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc))
