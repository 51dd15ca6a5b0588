"""Adversarial pass over token commands: what real helper scripts do.

The defect this test found is fixed; it stays as a guard.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from webid_provider._tokens import CommandTokenSource

TOKEN = "opaque-token-for-a-test-0123456789"


@pytest.mark.timeout(30)
def test_a_command_that_exits_leaving_a_background_job_returns_its_token(
    tmp_path: Path,
) -> None:
    script = tmp_path / "get-token"
    # e.g. a helper that starts a caching agent in the background without redirecting it
    script.write_text(f"#!/bin/sh\necho {TOKEN}\nsleep 5 &\nexit 0\n")
    script.chmod(0o700)
    source = CommandTokenSource((str(script),), timeout_seconds=2)
    assert source.read_token() == TOKEN
