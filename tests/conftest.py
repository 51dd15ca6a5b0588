"""Shared fixtures: a clean AWS environment for every test, and an injectable clock."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import botocore.loaders
import botocore.session
import pytest

import webid_provider
from webid_provider._refresh_state import clear_memory_state

_AWS_VARIABLES_TO_CLEAR = [name for name in os.environ if name.startswith("AWS_")] + [
    "WEBID_PROVIDER_CACHE_DIR",
]


_SHARED_LOADER = botocore.loaders.create_loader()


def _register_shared_data_loader(self: botocore.session.Session) -> None:
    """Every in-process botocore session of the test run reads botocore's data files once.

    A new session otherwise parses the service model and endpoint files again for its first
    client (about a quarter of the suite's CPU on a 2-core CI host). The files are read-only
    data, so sharing them changes no behaviour under test; botocore's own functional tests
    share a loader the same way. A session with its own ``data_path`` keeps its own loader.
    Subprocesses are not affected.
    """

    def loader() -> botocore.loaders.Loader:
        data_path = self.get_config_variable("data_path")
        return botocore.loaders.create_loader(data_path) if data_path else _SHARED_LOADER

    self._components.lazy_register_component("data_loader", loader)  # type: ignore[attr-defined]


setattr(botocore.session.Session, "_register_data_loader", _register_shared_data_loader)


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
