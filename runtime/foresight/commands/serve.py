"""``foresight serve classifier --config FILE`` and ``foresight serve forecasts``: the long-running services.

``classifier`` is what a ClassifierService's pods run; ``forecasts`` is what the Deployment of a
ForecastTask with ``output.mode: scrape`` runs (:mod:`foresight.forecast.scrape`).
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="run a Foresight service", description="Run a Foresight service.")
    services = p.add_subparsers(dest="service", required=True, metavar="SERVICE")
    c = services.add_parser(
        "classifier",
        help="the image classifier (DashScope or ONNX backend, cached)",
        description="Serve the image classifier HTTP API (OpenAPI at /docs) from a config file.",
    )
    c.add_argument("--config", required=True, help="classifier config (YAML or JSON)")
    c.add_argument("--host", help="override the config's bind address")
    c.add_argument("--port", type=int, help="override the config's port")
    c.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    c.set_defaults(func=_serve_classifier)

    f = services.add_parser(
        "forecasts",
        help="a scrape-mode ForecastTask's forecasts at /metrics, read from its artifact store",
        description="Serve /metrics (and /healthz) from the exposition the runs of a ForecastTask with "
        "output.mode scrape keep in its artifact store, re-read when a run writes a new one; an empty "
        "exposition until the first run has written one. Name the task by its YAML (-f) or by its store "
        "and identity (--store, --namespace, --name). S3 endpoint and credentials come from "
        "FORESIGHT_S3_ENDPOINT / FORESIGHT_S3_SECURE / FORESIGHT_S3_REGION / AWS_ACCESS_KEY_ID / "
        "AWS_SECRET_ACCESS_KEY, pvc:// stores resolve under FORESIGHT_PVC_ROOT (as for `foresight run`).",
    )
    f.add_argument("-f", "--filename", "--task", metavar="FILE", help="the ForecastTask YAML (- for stdin)")
    f.add_argument("--store", metavar="URI", help="the task's spec.artifacts.uri (instead of -f)")
    f.add_argument("--namespace", help="the task's namespace (with --store; default for -f: the YAML's)")
    f.add_argument("--name", help="the task's name (with --store)")
    f.add_argument(
        "--shard",
        metavar="INDEX|POD",
        help="serve one shard of a sharded task (spec.parallelism > 1): its index, or the name of a "
        "StatefulSet pod, whose ordinal (the number after the last '-') is the shard",
    )
    f.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1; 0.0.0.0 in a pod)")
    f.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    f.add_argument(
        "--refresh", type=float, default=5.0, metavar="SECONDS", help="how often the store is checked (5)"
    )
    f.add_argument(
        "--state-dir",
        metavar="DIR",
        help="local mode: pvc:// stores resolve under DIR/pvc (as `foresight run --local --state-dir DIR`)",
    )
    f.set_defaults(func=_serve_forecasts)


def _serve_classifier(args: argparse.Namespace) -> int:
    from foresight.serving.classifier.config import load_config
    from foresight.serving.classifier.server import run

    config = load_config(args.config)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if overrides:
        config = config.model_copy(update=overrides)
    run(config, log_level=args.log_level)
    return 0


def _serve_forecasts(args: argparse.Namespace) -> int:
    from foresight.run.serve_forecasts import main_serve_forecasts

    return main_serve_forecasts(args)
