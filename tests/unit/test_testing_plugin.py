"""The pytest plugin loads with the runtime dependencies only (issue 11, item 21).

pytest imports ``webid_provider.testing.plugin`` (and so its package) in every environment
where webid-provider is installed. These tests run fresh interpreters in which the testing
extra's modules are blocked (``sys.modules[name] = None`` makes their import fail the way a
missing package does) and check that the plugin still loads, that a project's own tests still
run, and that using a fixture says how to install the extra. ``.ci/plugin-check`` does the same
in a real virtualenv without the extra.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

_BLOCK = "import sys\nfor _name in {names!r}:\n    sys.modules[_name] = None\n"
_EXTRA = ("cryptography", "moto", "yaml", "awscli", "werkzeug", "flask")


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )


def test_importing_the_plugin_imports_nothing_from_the_testing_extra(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        import webid_provider.testing.plugin
        import webid_provider.testing
        heavy = ("cryptography", "moto", "yaml", "awscli", "werkzeug", "jwt.algorithms", "boto3")
        print(sorted(name for name in heavy if name in sys.modules))
        """
    )
    result = _python(code, tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_public_names_load_on_first_use(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import webid_provider.testing as testing
        assert "StsEmulator" in dir(testing)
        from webid_provider.testing import KubeletTokenFile, OidcIssuer, StsEmulator
        print(StsEmulator.__module__, OidcIssuer.__module__, KubeletTokenFile.__module__)
        try:
            testing.NoSuchThing
        except AttributeError as exc:
            print(exc)
        """
    )
    result = _python(code, tmp_path)

    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first == (
        "webid_provider.testing.emulator webid_provider.testing.issuer "
        "webid_provider.testing.kubelet"
    )
    assert second == "module 'webid_provider.testing' has no attribute 'NoSuchThing'"


def _run_pytest_without_extra(project: Path) -> subprocess.CompletedProcess[str]:
    code = _BLOCK.format(names=_EXTRA) + textwrap.dedent(
        """
        import pytest
        sys.exit(pytest.main(["-p", "no:cacheprovider", "-p", "no:randomly", "-q", "--tb=short", "."]))
        """
    )
    return _python(code, project)


def test_a_project_without_the_extra_still_runs_its_tests(tmp_path: Path) -> None:
    (tmp_path / "test_mine.py").write_text(
        "def test_plugin_loaded(pytestconfig):\n"
        "    assert pytestconfig.pluginmanager.hasplugin('webid_provider')\n"
    )

    result = _run_pytest_without_extra(tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert "Error while loading plugin" not in result.stdout + result.stderr


def test_a_fixture_without_the_extra_fails_with_the_install_command(tmp_path: Path) -> None:
    (tmp_path / "test_mine.py").write_text(
        "def test_needs_issuer(oidc_issuer):\n    pass\n\n\ndef test_other():\n    pass\n"
    )

    result = _run_pytest_without_extra(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert (
        "the webid_provider fixtures need the testing extra (cryptography is missing): "
        "pip install 'webid-provider[testing]' (from a checkout: pip install '.[testing]')"
    ) in result.stdout
    assert "Traceback" not in result.stdout
    assert "ModuleNotFoundError" not in result.stdout
