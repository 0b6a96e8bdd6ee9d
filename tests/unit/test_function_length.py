"""No function in the runtime or the operator is over 80 lines unless a comment right above it says why.

A function counts from its ``def`` to its last line, nested functions included; the reason is a
``# long: <why>`` comment on the line above the ``def`` (or above its decorators).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("runtime/foresight", "operator/foresight_operator")
LIMIT = 80


def long_functions(root: Path, limit: int = LIMIT) -> list[str]:
    """``path:line name (n lines)``, the path under ``root``, of every function or method longer
    than ``limit`` with no ``# long:`` comment above it."""
    found = []
    for path in sorted(root.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in _outermost_functions(ast.parse("\n".join(lines))):
            n = (node.end_lineno or node.lineno) - node.lineno + 1
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            said_why = first >= 2 and lines[first - 2].strip().startswith("# long:")
            if n > limit and not said_why:
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({n} lines)")
    return found


def _outermost_functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    out: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
    todo = [tree]
    while todo:
        for child in ast.iter_child_nodes(todo.pop()):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                out.append(child)  # what it nests counts within it
            else:
                todo.append(child)
    return out


@pytest.mark.parametrize("root", ROOTS)
def test_no_function_is_over_80_lines_without_saying_why(root: str) -> None:
    assert long_functions(REPO / root) == []


def test_a_long_function_is_found_and_a_reason_lets_it_pass(tmp_path: Path) -> None:
    body = "".join(f"        x{i} = {i}\n" for i in range(LIMIT))
    (tmp_path / "m.py").write_text("class C:\n    def f(self) -> None:\n" + body)
    reason = "# long: one table, split it and it reads worse\n"
    (tmp_path / "ok.py").write_text(reason + "def g() -> None:\n" + body.replace("        ", "    "))
    assert long_functions(tmp_path) == [f"m.py:2 f ({LIMIT + 1} lines)"]
