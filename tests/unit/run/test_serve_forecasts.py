"""``foresight serve forecasts``: the command finds a scrape-mode task's store (by its YAML or by
store URI and identity) and serves the newest exposition its runs wrote; what it cannot serve it
refuses with exit code 2 and a reason."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests
import yaml
from foresight.artifacts import LocalArtifactStore
from foresight.cli import build_parser, main
from foresight.commands import SUBCOMMANDS
from foresight.run.localprom import free_port
from foresight.run.serve_forecasts import main_serve_forecasts

from tests.polling import wait_for
from tests.unit.forecast.scrape_runs import NOW, SPEC, run


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


def task_file(tmp_path: Path, store: LocalArtifactStore, mode: str = "scrape") -> Path:
    doc = {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ForecastTask",
        "metadata": {"name": "quota", "namespace": "team-a"},
        "spec": {
            **SPEC,
            "output": {**SPEC["output"], "mode": mode},
            "artifacts": {"uri": store.root.as_uri()},
        },
    }
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("how", ["file", "store"])
def test_the_command_serves_the_task_named_by_its_file_or_its_store(
    tmp_path: Path, store: LocalArtifactStore, how: str
) -> None:
    port = free_port()
    argv = ["serve", "forecasts", "--port", str(port), "--refresh", "0.1"]
    if how == "file":
        argv += ["-f", str(task_file(tmp_path, store))]
    else:
        argv += ["--store", store.root.as_uri(), "--namespace", "team-a", "--name", "quota"]
    args = build_parser(SUBCOMMANDS).parse_args(argv)
    stop = threading.Event()
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(main_serve_forecasts(args, environ={}, stop=stop)))
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        first = wait_for(lambda: requests.get(url, timeout=2).text, "the server to start", timeout=10,
                         interval=0.05, ignoring=(requests.ConnectionError,))  # fmt: skip
        assert first.startswith("# foresight: no run")
        result = run(store, now=NOW + 60)
        wait_for(lambda: requests.get(url, timeout=2).content == result.exposition,
                 "the new exposition to be picked up", timeout=10, interval=0.05)  # fmt: skip
    finally:
        stop.set()
        thread.join(timeout=10)
    assert codes == [0]


def test_the_command_refuses_what_it_cannot_serve(
    tmp_path: Path, store: LocalArtifactStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "forecasts", "-f", str(task_file(tmp_path, store, mode="pushgateway"))]) == 2
    assert "has output.mode pushgateway" in capsys.readouterr().err
    assert main(["serve", "forecasts", "--store", store.root.as_uri(), "--name", "quota"]) == 2
    assert "--store needs --namespace and --name" in capsys.readouterr().err
    assert main(["serve", "forecasts"]) == 2
    assert "say which task" in capsys.readouterr().err
    assert main(["serve", "forecasts", "-f", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err
