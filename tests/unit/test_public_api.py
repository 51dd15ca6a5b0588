"""The public surface: ``__all__`` is sorted and complete, and importing is cheap.

``webid_provider/__init__.py`` imports its public names lazily (PEP 562): they are bound by
``if TYPE_CHECKING:`` imports for type checkers and by the ``_LAZY`` map at run time, and the
tests below check that both agree with ``__all__``.
"""

from __future__ import annotations

import ast
import inspect
import pkgutil
import re
import subprocess
import sys
import types
from importlib import metadata
from pathlib import Path

import webid_provider

_PLUMBING = {"TYPE_CHECKING", "importlib", "Any"}


def _body_with_type_checking_blocks(tree: ast.Module) -> list[ast.stmt]:
    nodes: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            nodes.extend(node.body)
        else:
            nodes.append(node)
    return nodes


def public_names_defined_in_init() -> set[str]:
    """Every name ``webid_provider/__init__.py`` binds at top level without a leading ``_``
    (including the ``if TYPE_CHECKING:`` imports), minus the laziness plumbing."""
    tree = ast.parse(inspect.getsource(webid_provider))
    names: set[str] = set()
    for node in _body_with_type_checking_blocks(tree):
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
    names -= _PLUMBING
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


def test_public_names_are_defined_in_private_modules_named_by_the_lazy_map() -> None:
    """Each public class and function is defined (not re-exported) in the module ``_LAZY``
    names, and that module is private: the layout says the public API is ``__all__``."""
    lazy: dict[str, str] = webid_provider._LAZY
    for name in webid_provider.__all__:
        value = getattr(webid_provider, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__ == lazy[name], name
            package, module = value.__module__.split(".", 1)
            assert package == "webid_provider", name
            assert module.startswith("_"), name
            assert "." not in module, name


def test_only_the_testing_package_is_a_public_submodule() -> None:
    """Every module and package of webid_provider but ``testing`` carries a leading underscore
    (the ``__main__`` of ``python -m`` aside)."""
    found = {module.name for module in pkgutil.iter_modules(webid_provider.__path__)}
    public = {name for name in found if not name.startswith("_")}
    assert public == {"testing"}
    assert "__main__" in found


def test_version_is_the_installed_distributions() -> None:
    assert webid_provider.__version__ == metadata.version("webid-provider")
    pyproject = (Path(webid_provider.__file__).parent.parent / "pyproject.toml").read_text()
    declared = re.search(r'^version = "([^"]+)"$', pyproject, re.MULTILINE)
    assert declared is not None
    assert webid_provider.__version__ == declared.group(1)


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


def _type_checking_imports() -> dict[str, str]:
    tree = ast.parse(inspect.getsource(webid_provider))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for child in node.body:
                assert isinstance(child, ast.ImportFrom)
                assert child.module is not None
                for alias in child.names:
                    found[alias.asname or alias.name] = child.module
    return found


def test_lazy_map_matches_the_type_checking_imports_and_all() -> None:
    lazy: dict[str, str] = webid_provider._LAZY
    assert lazy == _type_checking_imports()
    assert set(lazy) == set(webid_provider.__all__) - {"__version__"}


def test_star_import_and_dir_resolve_every_public_name() -> None:
    namespace: dict[str, object] = {}
    exec("from webid_provider import *", namespace)
    assert set(webid_provider.__all__) <= set(namespace)
    assert set(webid_provider.__all__) <= set(dir(webid_provider))


def test_unknown_attribute_raises_attribute_error() -> None:
    assert not hasattr(webid_provider, "no_such_name")


def _modules_after(code: str) -> list[str]:
    program = (
        "import sys\n"
        f"{code}\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'botocore', 'boto3', 'jwt', 'cryptography', 'filelock'})))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
    return [name for name in completed.stdout.strip().split(",") if name]


def test_import_alone_imports_no_botocore() -> None:
    assert _modules_after("import webid_provider; webid_provider.__version__") == []


def test_first_use_of_a_public_name_imports_it() -> None:
    loaded = _modules_after("import webid_provider; webid_provider.register")
    assert "botocore" in loaded
