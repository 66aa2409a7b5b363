"""The entry points build and run whatever task and data the config names: no code of theirs asks what
type a task or a data module is, or sniffs their signatures (optional capabilities are declared methods
of ``src/tasks/base.py``, ``src/data/base.py`` and ``src/frontends/base.py``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

ENTRY_POINTS = ["train.py", "test.py", "src/training.py", "src/evaluation.py"]
REPORTING = sorted(
    str(path.relative_to(REPO_ROOT)) for path in (REPO_ROOT / "src" / "reporting").glob("*.py")
)
# Packages whose classes are the tasks and the data: a type check against one of them is dispatch.
DISPATCH_PACKAGES = ("src.tasks", "src.data")


def imported_names(tree: ast.Module) -> dict[str, str]:
    """Local name -> the module it was imported from, for ``from <module> import <name>``."""
    return {
        alias.asname or alias.name: node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }


def type_checked_names(node: ast.expr) -> list[str]:
    """The names in the class argument of ``isinstance``/``issubclass`` (``A``, ``(A, B)``, ``A | B``)."""
    return [child.id for child in ast.walk(node) if isinstance(child, ast.Name)]


def dispatch(path: str, *, attribute_sniffing: bool, root: Path = REPO_ROOT) -> list[str]:
    """Each type check of a task or data class, ``inspect`` use and (``attribute_sniffing``) ``getattr`` /
    ``hasattr`` call in ``path``, as ``path:line: code``."""
    source = (root / path).read_text()
    tree = ast.parse(source)
    origins = imported_names(tree)
    found = []
    for node in ast.walk(tree):
        bad = False
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module]
            bad = "inspect" in modules
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name = node.func.id
            if name in ("isinstance", "issubclass") and len(node.args) == 2:
                bad = any(
                    origins.get(checked, "").startswith(DISPATCH_PACKAGES)
                    or checked.endswith(("Task", "DataModule"))
                    for checked in type_checked_names(node.args[1])
                )
            bad = bad or (attribute_sniffing and name in ("getattr", "hasattr"))
        if bad:
            found.append(f"{path}:{node.lineno}: {ast.get_source_segment(source, node)}")
    return sorted(found, key=lambda line: int(line.split(":")[1]))


@pytest.mark.parametrize("path", ENTRY_POINTS)
def test_the_entry_points_never_ask_what_a_task_or_data_module_is(path: str) -> None:
    assert dispatch(path, attribute_sniffing=True) == []


@pytest.mark.parametrize("path", REPORTING)
def test_reporting_never_type_checks_a_task_or_data_module(path: str) -> None:
    assert dispatch(path, attribute_sniffing=False) == []


def test_the_check_sees_dispatch(tmp_path: Path) -> None:
    (tmp_path / "entry.py").write_text(
        "import inspect\n"
        "from src.tasks.phone_recognition import PhoneRecognitionTask\n"
        "from lightning.pytorch.loggers import TensorBoardLogger\n"
        "if isinstance(model, PhoneRecognitionTask | int): pass\n"
        "if isinstance(logger, TensorBoardLogger): pass\n"
        "if hasattr(datamodule, 'phones'): pass\n"
    )
    assert dispatch("entry.py", attribute_sniffing=True, root=tmp_path) == [
        "entry.py:1: import inspect",
        "entry.py:4: isinstance(model, PhoneRecognitionTask | int)",
        "entry.py:6: hasattr(datamodule, 'phones')",
    ]
    assert dispatch("entry.py", attribute_sniffing=False, root=tmp_path) == [
        "entry.py:1: import inspect",
        "entry.py:4: isinstance(model, PhoneRecognitionTask | int)",
    ]
