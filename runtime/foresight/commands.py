"""Registration of the subcommands beyond the API tools (operator, run, serve, train, models).

Each adder only declares arguments; the function it sets imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

SubParsers = argparse._SubParsersAction  # type: ignore[type-arg]

SUBCOMMANDS: list[Callable[[SubParsers], None]] = []
