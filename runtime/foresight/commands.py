"""Registration of the subcommands beyond the API tools (operator, run, serve, train, models, library).

Each subcommand lives next to the code it runs, in a module that exposes
``add_parser(subparsers) -> None``. That module must be cheap to import (no torch, kopf, fastapi
at module level): the function it sets with ``set_defaults(func=...)`` imports what it needs when
it runs, so ``foresight version`` stays instant and the operator image needs no torch.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

SubParsers = argparse._SubParsersAction

#: Modules that each add one subcommand, in the order ``foresight --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "foresight_operator.command",  # foresight operator
    "foresight.run.command",  # foresight run -f FILE --local
    "foresight.serving.command",  # foresight serve classifier
    "foresight.training.command",  # foresight train
    "foresight.registry.command",  # foresight models ...
    "foresight.library.command",  # foresight library ..., foresight recommend
)


def _adders() -> list[Callable[[SubParsers], None]]:
    adders: list[Callable[[SubParsers], None]] = []
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # A module not written yet (or left out of a slim install) just adds no command;
            # a missing dependency *inside* an existing module is a real error and propagates.
            if exc.name is not None and name.startswith(exc.name):
                continue
            raise
        adders.append(module.add_parser)
    return adders


SUBCOMMANDS: list[Callable[[SubParsers], None]] = _adders()
