"""The public surface: ``__all__`` is sorted and complete, and importing is cheap."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import types

import webid_provider


def public_names_defined_in_init() -> set[str]:
    """Every name ``webid_provider/__init__.py`` binds at top level without a leading ``_``."""
    tree = ast.parse(inspect.getsource(webid_provider))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names.add(target.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    names -= {"annotations", "__all__"}  # ``from __future__``, and the list itself
    return {name for name in names if not name.startswith("_") or name == "__version__"}


def test_all_is_sorted() -> None:
    assert webid_provider.__all__ == sorted(webid_provider.__all__)


def test_all_has_no_duplicates() -> None:
    assert len(set(webid_provider.__all__)) == len(webid_provider.__all__)


def test_all_is_complete() -> None:
    assert set(webid_provider.__all__) == public_names_defined_in_init()


def test_every_entry_exists_and_is_not_a_module() -> None:
    for name in webid_provider.__all__:
        assert hasattr(webid_provider, name), name
        assert not isinstance(getattr(webid_provider, name), types.ModuleType), name


def test_public_classes_claim_the_package() -> None:
    for name in webid_provider.__all__:
        value = getattr(webid_provider, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__.startswith("webid_provider."), name


def test_version_is_a_string() -> None:
    assert isinstance(webid_provider.__version__, str)
    assert webid_provider.__version__.count(".") >= 2


def test_import_does_not_pull_in_test_dependencies() -> None:
    code = (
        "import sys, webid_provider\n"
        "heavy = sorted(name for name in sys.modules\n"
        "               if name.split('.')[0] in {'moto', 'pytest', '_pytest', 'werkzeug',"
        " 'flask'} or name.startswith('webid_provider.testing'))\n"
        "print(','.join(heavy))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == ""
