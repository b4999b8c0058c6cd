"""The import rules are executable: the layers and forbidden imports of pyproject.toml's import-linter
contracts hold, no module imports itself round a cycle (counting imports inside functions and under
TYPE_CHECKING), and both checks really fail when a wrong import is written (in a scratch copy of the
tree, so the real one is never touched)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.architecture.imports import PACKAGES, cycles, describe, edges

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=120, check=False
    )


def scratch_tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, root / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return root


def test_import_contracts_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"Contracts: [1-9]\d* kept, 0 broken", result.stdout), result.stdout


def test_no_import_cycles_anywhere() -> None:
    found = cycles(edges(ROOT))
    assert found == [], f"import cycles: {describe(found)}"


@pytest.mark.parametrize(
    ("where", "line", "contract"),
    [
        # The store is the bottom: it must never reach up into a stage.
        ("broadcast/store/scratch_wrong.py", "from broadcast.policy.desk import Desk\n", "layers"),
        # A stage never skips up: the pipeline importing the desk is a back edge.
        ("broadcast/pipeline/scratch_wrong.py", "def f() -> None:\n    import broadcast.policy.desk\n", "layers"),
        # The core never imports a concrete adapter.
        ("broadcast/dispatch/scratch_wrong.py", "import adapters.ip_speaker.adapter\n", "concrete adapter"),
        # Nothing but tests, benchmarks and the demo imports the simulators.
        ("terminals/scratch_wrong.py", "import sim.ip_terminal\n", "sim/"),
    ],
)
def test_a_wrong_import_breaks_a_contract(tmp_path: Path, where: str, line: str, contract: str) -> None:
    root = scratch_tree(tmp_path)
    assert lint_imports(root).returncode == 0  # the copy is as clean as the tree
    (root / where).write_text(line, encoding="utf-8")
    result = lint_imports(root)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts")[-1]
    assert contract in broken and "scratch_wrong" in broken, result.stdout


def test_a_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    root = scratch_tree(tmp_path)
    (root / "broadcast" / "retry.py").write_text(
        (ROOT / "broadcast" / "retry.py").read_text(encoding="utf-8")
        + "\n\ndef _late() -> None:\n    from broadcast.events import Events  # noqa: F401\n",
        encoding="utf-8",
    )
    (root / "broadcast" / "events.py").write_text(
        (ROOT / "broadcast" / "events.py").read_text(encoding="utf-8") + "\nfrom broadcast.retry import RetryPolicy  # noqa: E402,F401\n",
        encoding="utf-8",
    )
    assert ["broadcast.events", "broadcast.retry"] in cycles(edges(root))
    assert lint_imports(root).returncode != 0
