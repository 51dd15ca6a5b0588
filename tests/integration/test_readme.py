"""The README's runnable snippets run and print what the README says they print."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

README = Path(__file__).resolve().parents[2] / "README.md"


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEBID_PROVIDER_"))}
    env["HOME"] = str(tmp_path)
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def test_profile_walkthrough_prints_the_promised_lines(tmp_path: Path) -> None:
    block = re.search(r"python - <<'EOF'\n(.*?)\nEOF\n", _section("Using it"), re.S)
    assert block is not None
    done = subprocess.run(
        [sys.executable, "-c", block.group(1)],
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    arn, subject, parameters = done.stdout.strip().splitlines()[-3:]
    assert arn.startswith("arn:aws:sts::123456789012:assumed-role/ci/webid-")
    assert subject == "alice"
    assert parameters == "900 True"


def test_testing_your_own_code_example_passes(tmp_path: Path) -> None:
    block = re.search(r"```python\n(.*?)```", _section("Testing your own code"), re.S)
    assert block is not None
    test_file = tmp_path / "test_readme_example.py"
    test_file.write_text(block.group(1))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        cwd=tmp_path,
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
