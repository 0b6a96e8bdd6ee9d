"""``foresight serve classifier --config FILE``: the classifier HTTP service.

What a ClassifierService's pods run.
"""

from __future__ import annotations

import argparse

from ..commands import SubParsers


def add_parser(subparsers: SubParsers) -> None:
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


def _serve_classifier(args: argparse.Namespace) -> int:
    from .classifier.config import load_config
    from .classifier.server import run

    config = load_config(args.config)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if overrides:
        config = config.model_copy(update=overrides)
    run(config, log_level=args.log_level)
    return 0
