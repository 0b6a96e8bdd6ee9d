"""``foresight run`` on files it must refuse: a clear reason, exit code 2, a termination message."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest
from foresight.run.local import main_run


def args(path: Path, local: bool = False) -> argparse.Namespace:
    return argparse.Namespace(
        filename=str(path), local=local, mode=None, prometheus_url=None, pushgateway_url=None,
        state_dir=None, namespace=None, set=None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "reason", "needle"),
    [
        (
            "apiVersion: foresight.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: t}\nspec: {}\n",
            "UnsupportedKind",
            "kind 'TrainingJob' is not supported by `foresight run` yet",
        ),
        (
            "apiVersion: foresight.dev/v1alpha1\nkind: ForecastTask\nmetadata: {name: t}\n"
            "spec: {source: {query: up}, horizon: 1000h}\n",
            "InvalidSpec",
            "horizon must be shorter than source.lookback",
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: t}\n",
            "InvalidSpec",
            "no foresight.dev resource",
        ),
        ("kind: [unclosed\n", "InvalidSpec", "not valid YAML"),
    ],
)
def test_refused_files_give_a_reason_exit_code_2_and_a_termination_message(
    tmp_path: Path, text: str, reason: str, needle: str
) -> None:
    path = tmp_path / "task.yaml"
    path.write_text(text)
    term = tmp_path / "term"
    out = io.StringIO()
    code = main_run(args(path), environ={"FORESIGHT_TERMINATION_MESSAGE_PATH": str(term)}, stdout=out)
    assert code == 2
    msg = json.loads(term.read_text())
    assert (msg["phase"], msg["reason"]) == ("Failed", reason)
    assert needle in msg["message"]
