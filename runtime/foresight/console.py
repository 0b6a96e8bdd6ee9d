"""Plain-text output for the command line: the one kubectl-like table every command prints.

Pure (strings in, a string out) and dependency-free, so any layer's command can use it
(``foresight models``, ``foresight library``, ``foresight run`` and the demo).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["table"]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, gap: int = 3) -> str:
    """Left-aligned columns ``gap`` spaces apart (three, like ``kubectl get``); cells are ``str()``-ed,
    trailing blanks stripped, no final newline."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    sep = " " * gap
    return "\n".join(sep.join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)
