"""The subcommands beyond the API tools: ``run`` / ``demo``, ``serve``, ``train``, ``models`` /
``model-job``, ``library`` / ``recommend``, ``ab``, and the operator's ``operator``.

One module per top-level command, named after it, each exposing ``add_parser(subparsers) -> None``.
This package is the layer between the CLI root (:mod:`foresight.cli`) and the packages that do
the work, so a command may use any of them (``serve forecasts`` the forecast package, ``serve
classifier`` the serving package) without one of those importing the other. Every module here
must stay cheap to import (argparse only at module level): the function it sets with
``set_defaults(func=...)`` imports what it needs when it runs, so ``foresight version`` stays
instant and the operator image needs no torch.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

from . import ab, library, models, run, serve, train

__all__ = ["OPERATOR_COMMAND_MODULE", "SUBCOMMANDS", "SubParsers"]

SubParsers = argparse._SubParsersAction
"""What ``add_parser`` receives (the modules here name it ``argparse._SubParsersAction`` themselves:
they are imported by this one)."""

OPERATOR_COMMAND_MODULE = "foresight_operator.command"
"""``foresight operator``. Found by name, not imported: the runtime never imports the operator
package (an import-linter contract), and a runtime-only install does not have it."""


def _operator_adder() -> Callable[[SubParsers], None] | None:
    try:
        module = importlib.import_module(OPERATOR_COMMAND_MODULE)
    except ModuleNotFoundError as exc:
        # Left out of this install: no `operator` command. A missing dependency *inside* the
        # operator package is a real error and propagates.
        if exc.name is not None and OPERATOR_COMMAND_MODULE.startswith(exc.name):
            return None
        raise
    adder: Callable[[SubParsers], None] = module.add_parser
    return adder


def _adders() -> list[Callable[[SubParsers], None]]:
    operator = _operator_adder()
    # The order `foresight --help` lists them in.
    return [
        *([operator] if operator is not None else []),
        run.add_parser,  # foresight run -f FILE [--local], foresight demo
        serve.add_parser,  # foresight serve classifier | forecasts
        train.add_parser,  # foresight train
        models.add_parser,  # foresight models ..., foresight model-job
        library.add_parser,  # foresight library ..., foresight recommend
        ab.add_parser,  # foresight ab status | promote | simulate
    ]


SUBCOMMANDS: list[Callable[[SubParsers], None]] = _adders()
