"""Fixtures for the async tests, which run only in the ``aio`` environment (``.ci/aio``).

They live outside ``tests/`` because aiobotocore pins its botocore: the main environment keeps
the newest botocore and has no aiobotocore, and these tests must fail loudly, not skip, when
aiobotocore is missing. The autouse fixture repeats ``tests/conftest.py``'s (a separate
``conftest.py`` tree cannot import that one reliably).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import webid_provider
from webid_provider._refresh_state import clear_memory_state

_AWS_VARIABLES_TO_CLEAR = [name for name in os.environ if name.startswith("AWS_")] + [
    "WEBID_PROVIDER_CACHE_DIR",
]


@pytest.fixture(autouse=True)
def _clean_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's AWS settings, HOME or cache, or another test's memory or
    registration."""
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
