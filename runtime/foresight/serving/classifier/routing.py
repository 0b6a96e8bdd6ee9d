"""Which variant serves a request: the routing file's split, applied per request, reloaded on change.

The ABExperiment controller writes the effective split as JSON into the service's routing
ConfigMap, mounted at :data:`~foresight.contract.experiment.ROUTING_DIR` (the contract's
:class:`~foresight.contract.experiment.Routing`). A watcher thread checks the file's modification
time, size and inode every ``routing.pollSeconds`` (one ``stat``: cheap beside serving) and swaps
in a new split when they change, without a restart. Each request is routed by
:class:`~foresight.experiment.routing.VariantRouter` on its stickiness key (the header the split
names, else the client address, else the request id), so a client stays on its variant.

Whenever the split cannot be applied (no file, unreadable or invalid JSON, a variant with weight
that this pod does not serve, a control it does not serve) every request goes to the control (the
config's first variant) and the reason is logged once; a broken split never takes the service down.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from foresight.contract.experiment import Routing
from foresight.experiment.routing import VariantRouter, routing_key

from .telemetry import ClassifierMetrics

__all__ = ["RoutingTable", "Split"]

log = logging.getLogger(__name__)

_Signature = tuple[int, int, int] | None


@dataclass(frozen=True)
class Split:
    """The split one pod applies: a router over the served variants, or one variant for all."""

    source: str
    """``file``: the routing file's split; ``default``: every request to the control."""
    weights: dict[str, int]
    router: VariantRouter | None = None
    header: bytes | None = None
    """The stickiness header, lower-cased (ASGI header names are)."""
    only: str | None = None
    routing: Routing | None = field(default=None, repr=False)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "weights": self.weights}
        if self.routing is not None:
            out |= {
                "experiment": self.routing.experiment,
                "generation": self.routing.generation,
                "stickiness_header": self.routing.stickiness_header,
            }
        return out


class RoutingTable:
    """The current split of one process, and the watcher that keeps it current.

    ``variants``: the variants this pod serves, the control first.
    """

    def __init__(
        self,
        variants: Sequence[str],
        path: str,
        *,
        poll_seconds: float,
        metrics: ClassifierMetrics | None = None,
    ) -> None:
        if not variants:
            raise ValueError("a routing table needs at least one variant")
        self.variants = list(variants)
        self.control = self.variants[0]
        self.path = path
        self.poll_seconds = poll_seconds
        self.metrics = metrics
        self._signature: _Signature | object = object()  # never equal: the first check loads
        self._logged: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.split = self._default("start")
        self.check()

    # -- per request -----------------------------------------------------------------------------

    def choose(self, headers: Sequence[tuple[bytes, bytes]], client_ip: str | None, request_id: str) -> str:
        """The variant for a request with these (ASGI) headers from ``client_ip``."""
        split = self.split
        if split.only is not None:
            return split.only
        assert split.router is not None  # a split without `only` has a router
        value: str | None = None
        if split.header is not None:
            for name, raw in headers:
                if name == split.header:
                    value = raw.decode("latin-1")
                    break
        return split.router.choose(routing_key(value, client_ip) or f"request:{request_id}")

    # -- the watcher -----------------------------------------------------------------------------

    def start(self) -> None:
        """Check the file every ``poll_seconds`` in a daemon thread, until :meth:`stop`."""
        if self._thread is None and len(self.variants) > 1:
            self._thread = threading.Thread(target=self._watch, name="classifier-routing", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.check()
            except Exception:  # the watcher must outlive any surprise; serving goes on with the split
                log.exception("checking the routing file %s failed", self.path)

    def _stat(self) -> _Signature:
        try:
            st = os.stat(self.path)  # follows the ConfigMap mount's ..data symlink
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def check(self) -> bool:
        """Reload the split when the file changed; returns whether it did."""
        signature = self._stat()
        if signature == self._signature:
            return False
        self._signature = signature
        self._apply(self._load(signature))
        return True

    def _load(self, signature: _Signature) -> Split:
        if len(self.variants) == 1:
            if signature is not None:
                self._once(f"the routing file {self.path} is ignored: this pod serves one variant")
            return self._default("one variant")
        if signature is None:
            return self._default(f"no routing file at {self.path}")
        try:
            with open(self.path, encoding="utf-8") as f:
                routing = Routing.model_validate_json(f.read())
        except (OSError, UnicodeDecodeError) as exc:
            return self._default(f"cannot read the routing file {self.path}: {exc}")
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(the file)"
            return self._default(f"the routing file {self.path} is invalid at {where}: {first['msg']}")
        weights = routing.weights()
        unknown = sorted(name for name, w in weights.items() if w > 0 and name not in self.variants)
        if unknown or routing.control not in self.variants:
            missing = unknown or [routing.control]
            return self._default(
                f"the routing file {self.path} routes to {missing}, which this pod does not serve "
                f"(it serves {self.variants}); the service's config must list them as variants"
            )
        served = {name: weights.get(name, 0) for name in self.variants}
        header = routing.stickiness_header.lower().encode("latin-1") if routing.stickiness_header else None
        router = VariantRouter(served, salt=routing.salt)
        live = [name for name, w in served.items() if w > 0]
        only = live[0] if len(live) == 1 else None
        return Split("file", served, router=router, header=header, only=only, routing=routing)

    def _default(self, reason: str) -> Split:
        if reason not in ("start", "one variant"):
            self._once(f"{reason}: every request goes to the control variant {self.control!r}")
        return Split("default", {name: 100 if name == self.control else 0 for name in self.variants},
                     only=self.control)  # fmt: skip

    def _once(self, message: str) -> None:
        if message not in self._logged:
            self._logged.add(message)
            log.warning("%s", message)

    def _apply(self, split: Split) -> None:
        if split.source == "file" and split.describe() != self.split.describe():
            assert split.routing is not None
            log.info(
                "routing: experiment %s generation %d, weights %s",
                split.routing.experiment, split.routing.generation, split.weights,
            )  # fmt: skip
        self.split = split
        if split.source == "file":
            self._logged.clear()  # a later breakage is news again
        if self.metrics is not None:
            for name, weight in split.weights.items():
                self.metrics.variant_weight.labels(name).set(weight)
