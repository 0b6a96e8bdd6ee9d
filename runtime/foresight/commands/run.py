"""``foresight run -f FILE [--local]`` and ``foresight demo``: run resources on this machine.

Cheap to import (argparse only): what the subcommands need is imported when they run, so
``foresight --help`` stays instant. ``foresight run`` is what a ForecastTask's Job pod runs (one
run, a JSON termination message, an exit code); with ``--local`` the same code path prints a
kubectl-like status instead. ``foresight demo`` is what ``make run`` calls.
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a resource once (what its Job pod runs; --local: on this machine, with a readable status)",
        description="Run a ForecastTask from a YAML file once, through the same code path as the Job. "
        "Without --local the result is written as a JSON termination message "
        "($FORESIGHT_TERMINATION_MESSAGE_PATH, default /dev/termination-log) and the exit code is 0 (Ready), "
        "2 (bad input: fix the spec), 3 (temporary: retry) or 1 (other failure).",
    )
    p.add_argument("-f", "--filename", required=True, metavar="FILE", help="resource YAML (- for stdin)")
    p.add_argument("--local", action="store_true", help="run on this machine and print a kubectl-like status")
    p.add_argument(
        "--mode",
        choices=("train", "predict", "auto"),
        default=None,
        help="train (backtest + fit + predict), predict (with the saved model) or auto (train when the "
        "saved model is missing, stale or for another spec). Default: train with --local, else auto",
    )
    p.add_argument("--prometheus-url", metavar="URL", help="override spec.source.url")
    p.add_argument("--pushgateway-url", metavar="URL", help="override spec.output.pushgatewayUrl")
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help="local mode: where models and forecasts are kept (pvc:// and file:// artifact URIs resolve "
        "under it); default .cache/foresight",
    )
    p.add_argument("--namespace", default=None, help="namespace when the YAML has none (default: default)")
    p.add_argument(
        "--port", type=int, help="local mode, ClassifierService: port on 127.0.0.1 (default spec.port)"
    )
    p.add_argument(
        "--onnx-model", metavar="PATH", help="local mode, ClassifierService with backend onnx: the .onnx file"
    )
    p.add_argument(
        "--dashscope-base-url",
        metavar="URL",
        help="local mode, ClassifierService with backend dashscope: override spec.backend.dashscope.baseUrl "
        "(another region's endpoint, or a local stand-in such as http://127.0.0.1:8080/api/v1)",
    )
    p.set_defaults(func=_run)

    d = subparsers.add_parser(
        "demo",
        help="the main job on the built-in SYNTHETIC storage-quota data (what `make run` calls)",
        description="Generate the SYNTHETIC storage-quota data set, load it into a local Prometheus + "
        "Pushgateway (or keep it in memory when they cannot be started), run the storage ForecastTask "
        "locally, print status, forecasts with time-to-threshold and the backtest, and plot forecast vs "
        "actual.",
    )
    d.add_argument(
        "--out", default=".cache/demo", metavar="DIR", help="output directory (default .cache/demo)"
    )
    d.add_argument(
        "--no-prometheus",
        action="store_true",
        help="do not install / start Prometheus; use the in-memory source",
    )
    d.add_argument("--series", type=int, default=48, help="number of synthetic quotas (default 48)")
    d.add_argument(
        "-f", "--filename", metavar="FILE", help="the ForecastTask to run (default: "
        "examples/forecasttask-storage.yaml when present, else the built-in task with the same values)",
    )  # fmt: skip
    d.add_argument("--quick", action="store_true", help="fewer epochs and candidates (a smoke test, ~1 min)")
    d.set_defaults(func=_demo)


def _run(args: argparse.Namespace) -> int:
    if args.local:
        from foresight.serving.local import is_classifier_service_file, main_serve_local

        if is_classifier_service_file(args.filename):
            return main_serve_local(args)
    from foresight.run.local import main_run

    return main_run(args)


def _demo(args: argparse.Namespace) -> int:
    from foresight.run.demo import main_demo

    return main_demo(args)
