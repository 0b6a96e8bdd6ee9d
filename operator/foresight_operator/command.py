"""``foresight operator``: run the operator (kopf) in this process.

Cheap to import (no kopf here): :func:`_run` reads the settings once, from the flags and the
``FORESIGHT_*`` environment, and imports the operator only then.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "operator",
        help="run the Foresight operator (watches foresight.dev resources)",
        description="Run the Foresight operator. Flags override the FORESIGHT_* environment variables "
        "(FORESIGHT_NAMESPACE_SCOPE, FORESIGHT_RUNTIME_IMAGE, FORESIGHT_METRICS_PORT, "
        "FORESIGHT_LIVENESS_ENDPOINT, FORESIGHT_LOG_FORMAT).",
    )
    scope = p.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="serve this namespace (repeatable)",
    )
    scope.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        default=None,
        help="serve every namespace (the default)",
    )
    p.add_argument("--metrics-port", type=int, default=None, help="port of /metrics and /readyz (0 = off)")
    p.add_argument("--metrics-host", default=None, help="address of the metrics server (default 0.0.0.0)")
    p.add_argument(
        "--liveness",
        default=None,
        metavar="URL",
        help="kopf liveness endpoint, e.g. http://0.0.0.0:8081/healthz",
    )
    p.add_argument("--runtime-image", default=None, help="default image of runtime pods")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from .main import run
    from .settings import OperatorSettings, SettingsError

    try:
        settings = OperatorSettings.from_sources(
            os.environ,
            namespaces=args.namespace,
            all_namespaces=args.all_namespaces,
            metrics_port=args.metrics_port,
            metrics_host=args.metrics_host,
            liveness=args.liveness,
            runtime_image=args.runtime_image,
            verbose=args.verbose,
        )
    except SettingsError as exc:
        print(f"foresight operator: {exc}")
        return 2
    return run(settings)
