"""``foresight run -f examples/abexperiment.yaml --local`` / ``foresight ab simulate``: an experiment on
synthetic traffic through the operator's analysis, its decisions printed and its traffic plotted.

The example (progressive 10% -> 25% -> 50%, guards on error rate and latency) steps forward and
is promoted when its candidate is 2 points more accurate, rolls back at the first analysis when
the candidate fails 5% of its requests (beyond 2x the 1% limit), and the plot is a PNG. A metric
on custom counters cannot be simulated, and an invalid file is refused; both say why.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from foresight.run.ab_simulate import SimulationError, parse_truths

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "abexperiment.yaml"


def foresight(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "foresight.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_run_local_steps_forward_promotes_and_plots_the_traffic(tmp_path: Path) -> None:
    out = foresight("run", "-f", str(EXAMPLE), "--local", "--seed", "0", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "on SYNTHETIC traffic" in text and "truth candidate: accuracy 0.820" in text
    lines = [line for line in text.splitlines() if line.startswith("+")]
    actions = [line.split()[2] for line in lines]  # "+", the time, the action, the split, the message
    assert "StepForward" in actions and actions[-1] == "Promote", text
    assert actions.index("StepForward") < actions.index("Promote")
    assert "candidate 10% -> 25%" in text
    assert "phase Promoted; weights control=0,candidate=100" in text
    plot = tmp_path / ".cache" / "foresight" / "ab" / "photos_photo-classifier-v2-vs-v1.png"
    assert f"plot: {plot.relative_to(tmp_path)}" in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 20_000


def test_a_candidate_that_breaks_a_guard_is_rolled_back_at_the_first_analysis(tmp_path: Path) -> None:
    png = tmp_path / "rollback.png"
    out = foresight(
        "ab",
        "simulate",
        "-f",
        str(EXAMPLE),
        "--truth",
        "candidate=errorRate:0.05",
        "--plot",
        str(png),
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    first = next(line for line in out.stdout.splitlines() if line.startswith("+"))
    assert first.split()[:4] == ["+", "5m0s", "Rollback", "control=100,candidate=0"], out.stdout
    assert "guard error-rate on candidate" in out.stdout and "beyond 2x the limit 0.01" in out.stdout
    assert "phase RolledBack" in out.stdout and png.is_file()


def test_what_cannot_be_simulated_says_why(tmp_path: Path) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    custom = copy.deepcopy(doc)
    custom["spec"]["guardMetrics"] = [
        {
            "name": "timeouts",
            "rate": {"successes": {"metric": "t_total"}, "trials": {"metric": "r_total"}},
            "max": 0.1,
        }
    ]
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(custom))
    out = foresight("ab", "simulate", "-f", str(path), cwd=tmp_path)
    assert out.returncode == 2
    assert "metric 'timeouts' reads its own counters" in out.stderr

    bad = copy.deepcopy(doc)
    bad["spec"]["variants"][1]["weight"] = 20
    path.write_text(yaml.safe_dump(bad))
    out = foresight("ab", "simulate", "-f", str(path), cwd=tmp_path)
    assert out.returncode == 2 and "spec.variants" in out.stderr and "sum to 100" in out.stderr

    with pytest.raises(SimulationError, match="not one of"):
        parse_truths(["candidate=speed:1"], ["control", "candidate"])
    with pytest.raises(SimulationError, match="VARIANT one of"):
        parse_truths(["nobody=accuracy:1"], ["control", "candidate"])
    truths = parse_truths(["candidate=accuracy:0.9,latency:0.2"], ["control", "candidate"])
    assert (truths["control"].accuracy, truths["candidate"].accuracy, truths["candidate"].latency_mean) == (
        0.8,
        0.9,
        0.2,
    )
