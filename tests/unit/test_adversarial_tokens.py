"""Adversarial pass over token commands: what real helper scripts do.

``xfail(strict=True)`` marks a confirmed defect (fails on today's main).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from webid_provider.tokens import CommandTokenSource

TOKEN = "opaque-token-for-a-test-0123456789"


@pytest.mark.timeout(30)
@pytest.mark.xfail(
    strict=True,
    reason="a token command that printed its token and exited 0, leaving a background job "
    "(an agent, a cache warmer) holding its stdout, is waited on until the timeout and then "
    "reported as 'did not finish' (_command.run_bounded reads to EOF and never checks "
    "whether the command itself has exited)",
)
def test_a_command_that_exits_leaving_a_background_job_returns_its_token(
    tmp_path: Path,
) -> None:
    script = tmp_path / "get-token"
    # e.g. a helper that starts a caching agent in the background without redirecting it
    script.write_text(f"#!/bin/sh\necho {TOKEN}\nsleep 5 &\nexit 0\n")
    script.chmod(0o700)
    source = CommandTokenSource((str(script),), timeout_seconds=2)
    assert source.read_token() == TOKEN
