"""README's Installation and "Testing your own code" sections do what they say: the install
commands work from a checkout, the trust-policy example passes under pytest, and the shell
harness for other languages' tests runs a plain SDK against ``webid-provider emulator``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(title)
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEBID_PROVIDER_"))}
    env["HOME"] = str(tmp_path)
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _extras() -> set[str]:
    pyproject = (ROOT / "pyproject.toml").read_text()
    block = pyproject.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^([a-z]+) = \[", block, re.M))


def test_installation_installs_from_the_checkout() -> None:
    block = re.search(r"```sh\n(.*?)```", _section("## Installation"), re.S)
    assert block is not None
    installs = [line for line in block.group(1).splitlines() if line.startswith("pip install")]

    assert len(installs) >= 3
    targets = [line.split("#")[0].split()[-1].strip("'") for line in installs]
    assert all(target == "." or target.startswith(".[") for target in targets), targets
    named = {extra for target in targets for extra in re.findall(r"\[(\w+)\]", target)}
    assert named <= _extras()
    assert {"testing", "cli", "dev"} <= _extras()


def test_trust_policy_example_passes(tmp_path: Path) -> None:
    section = _section("### Trust policies and AWS's defaults")
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    test_file = tmp_path / "test_trust_example.py"
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


def test_shell_harness_runs_a_plain_sdk_against_the_emulator(tmp_path: Path) -> None:
    section = _section("### Any language: `webid-provider emulator`")
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    assert "go test ./...\n" in block.group(1)
    # The test runner of the recipe, replaced by a program whose SDK knows nothing of us.
    plain_sdk = (
        f"{sys.executable} -c 'import boto3; "
        'print(boto3.client("sts").get_caller_identity()["Arn"])\''
    )
    script = block.group(1).replace("go test ./...\n", plain_sdk + "\n")
    config = tmp_path / "config"
    config.write_text("")
    env = {**_clean_env(tmp_path), "AWS_CONFIG_FILE": str(config)}
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(config)
    env["TMPDIR"] = str(tmp_path)  # the recipe's mktemp -d

    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=90, check=False
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().startswith("arn:aws:sts::123456789012:assumed-role/app/")
