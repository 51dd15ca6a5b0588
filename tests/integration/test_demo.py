"""``webid-provider demo`` runs end to end on the emulator and shows what happened."""

from __future__ import annotations

import io
import re
import subprocess
import sys

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


@pytest.mark.parametrize("missing", ["moto", "cryptography"])
def test_demo_without_the_testing_extra_prints_the_install_command(missing: str) -> None:
    code = (
        f"import sys\nsys.modules[{missing!r}] = None\n"
        "from webid_provider._cli import main\nsys.exit(main(['demo']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=100, check=False
    )

    assert result.returncode == 2
    assert result.stderr == (
        "webid-provider: error: the demo command needs the testing extra: "
        "pip install 'webid-provider[testing]' (from a checkout: pip install '.[testing]')\n"
    )
    assert result.stdout == ""
