"""``webid-provider demo`` runs end to end on the emulator and shows what happened."""

from __future__ import annotations

import io
import re

import pytest

from webid_provider.testing.demo import run_demo

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_demo_shows_cache_sharing_rotation_and_refresh() -> None:
    out = io.StringIO()
    assert run_demo(out) == 0
    text = out.getvalue()
    assert "2. a second process got the same credentials" in text
    assert re.search(r"STS calls: 1\n", text)  # the second process made no call
    assert "the STS call used the rotated token" in text
    assert "requests signed with expired credentials: 0" in text
    assert "SecretAccessKey" not in text
    assert "eyJ" not in text
