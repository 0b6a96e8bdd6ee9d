"""The package's import contract: torch- and pandas-free for the operator, and a router the
serving pods load without numpy or scipy (it runs on every request)."""

from __future__ import annotations

import subprocess
import sys


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return set(out.stdout.split())


def test_the_analysis_imports_no_torch_and_no_pandas() -> None:
    loaded = _loaded_after(
        "import foresight.experiment.policy, foresight.experiment.counters, foresight.experiment.simulation"
    )
    assert "scipy" in loaded and "numpy" in loaded
    assert not loaded & {"torch", "pandas", "kubernetes", "kopf", "requests"}


def test_the_router_imports_only_the_standard_library() -> None:
    loaded = _loaded_after("import foresight.experiment.routing")
    assert not loaded & {"numpy", "scipy", "pydantic", "torch"}
