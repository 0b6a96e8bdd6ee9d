"""``foresight run -f FILE [--local]`` and ``foresight demo``: run resources on this machine.

Cheap to import (argparse only): what the subcommands need is imported when they run, so
``foresight --help`` stays instant. ``foresight run`` is what a ForecastTask's Job pod runs (one
run, a JSON termination message, an exit code); with ``--local`` the same code path prints a
kubectl-like status instead. ``foresight demo`` is what ``make run`` calls.
"""

from __future__ import annotations

import argparse
import sys

from .ab import add_simulation_options

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a resource once (what its Job pod runs; --local: on this machine, with a readable status; "
        "--hosts: a TrainingJob on SSH hosts)",
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
    p.add_argument(
        "--stage",
        choices=("plan",),
        default=None,
        help="a sharded ForecastTask's plan pod (spec.parallelism > 1): list the series, store the plan, "
        "train the networks when the run trains; a shard pod is told by FORESIGHT_SHARD_PLAN and "
        "JOB_COMPLETION_INDEX instead",
    )
    p.add_argument(
        "--run-id", metavar="ID", help="with --stage plan: the plan's id (default: task name + time)"
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
        "--set", action="append", metavar="PATH=VALUE",
        help="override a spec field for this run (ForecastTask, TrainingJob), e.g. --set "
        "model.hyperparameters.epochs=10 or, for a TrainingJob, --set epochs=2 --set "
        "dataset.uri=file:///data/panel.npz (repeatable)",
    )  # fmt: skip
    _add_classifierservice_options(p)
    _add_trainingjob_options(p)
    add_simulation_options(p)
    p.set_defaults(func=_run)
    _add_demo_parser(subparsers)


def _add_demo_parser(subparsers: argparse._SubParsersAction) -> None:
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


def _add_classifierservice_options(p: argparse.ArgumentParser) -> None:
    """``foresight run --local`` options of a ClassifierService."""
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
    p.add_argument(
        "--variant",
        action="append",
        metavar="NAME=MODEL",
        help="local mode, ClassifierService: serve this variant too (repeat; the first is the control); "
        "MODEL is an .onnx file or dashscope:<model> (the spec's DashScope settings with that model)",
    )
    p.add_argument(
        "--routing-file",
        metavar="PATH",
        help="local mode, ClassifierService with --variant: the traffic split (the JSON an ABExperiment "
        "writes), re-read when it changes; default <state-dir>/classifier/<ns>/<name>/routing.json",
    )


def _add_trainingjob_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "TrainingJob",
        "a TrainingJob runs with --local (processes on this machine; DDP ranks for distributed.backend "
        "torch) or on SSH hosts with --hosts / --hosts-file (one rank per host x GPU, keys from your "
        "ssh-agent or --identity-file, checkpoints on the spec's S3 store)",
    )
    g.add_argument("--hosts", metavar="HOST[,HOST...]", help="SSH hosts: host, user@host or user@host:port")
    g.add_argument(
        "--hosts-file", metavar="FILE",
        help="SSH hosts as YAML: hosts: [{host, user, port, gpus, python, env, address}], defaults: {...}",
    )  # fmt: skip
    g.add_argument("-i", "--identity-file", metavar="KEY", help="SSH private key (default: your ssh-agent)")
    g.add_argument(
        "--ssh-option", action="append", metavar="KEY=VALUE", help="an extra ssh -o option (repeatable)"
    )
    g.add_argument(
        "--remote-python", metavar="PATH", help="the Python with the foresight runtime on the hosts"
    )
    g.add_argument(
        "--remote-env", action="append", metavar="NAME=VALUE",
        help="non-secret environment for the remote ranks, e.g. PYTHONPATH (repeatable)",
    )  # fmt: skip
    g.add_argument(
        "--on-host-failure", choices=("resume", "wait", "fail"), default="resume",
        help="when a host drops: resume on the remaining hosts from the newest checkpoint (default), wait "
        "for it to answer again, or fail",
    )  # fmt: skip
    g.add_argument(
        "--host-wait-timeout", type=float, default=600.0, metavar="SECONDS",
        help="--on-host-failure wait: how long to wait for a dropped host (default 600)",
    )  # fmt: skip


def _run(args: argparse.Namespace) -> int:
    from foresight.run.trainingjob import is_trainingjob_file

    if is_trainingjob_file(args.filename):
        if not (args.local or args.hosts or args.hosts_file):
            print(
                f"{args.filename}: a TrainingJob runs with --local (this machine) or --hosts / --hosts-file "
                "(SSH hosts); in a cluster, kubectl apply it",
                file=sys.stderr,
            )
            return 2
        from foresight.run.trainingjob import main_trainingjob

        return main_trainingjob(args)
    if args.hosts or args.hosts_file:
        print(f"{args.filename}: --hosts runs TrainingJobs only", file=sys.stderr)
        return 2
    from foresight.run.library import is_model_library_file

    if is_model_library_file(args.filename):
        if not args.local:
            print(
                f"{args.filename}: a ModelLibrary runs with --local (fetched, verified and activated under "
                "--state-dir); in a cluster, kubectl apply it",
                file=sys.stderr,
            )
            return 2
        from foresight.run.library import main_library_local

        return main_library_local(args)
    if args.local:
        from foresight.serving.local import is_classifier_service_file, main_serve_local

        if is_classifier_service_file(args.filename):
            return main_serve_local(args)
        if _is_kind(args.filename, "ABExperiment"):
            from foresight.run.ab_simulate import main_simulate

            return main_simulate(args)
    from foresight.run.local import main_run

    return main_run(args)


def _is_kind(path: str, kind: str) -> bool:
    """Whether the first ``foresight.dev`` resource of ``path`` is a ``kind`` (False when unreadable:
    the runner it falls through to says why)."""
    if path == "-":
        return False
    from foresight.api.documents import DocumentError, load_documents

    try:
        docs = load_documents(path)
    except DocumentError:
        return False
    ours = [
        d for d in docs if isinstance(d, dict) and str(d.get("apiVersion", "")).startswith("foresight.dev/")
    ]
    return bool(ours) and ours[0].get("kind") == kind


def _demo(args: argparse.Namespace) -> int:
    from foresight.run.demo import main_demo

    return main_demo(args)
