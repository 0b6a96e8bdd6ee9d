"""An ABExperiment's traffic split: what the operator writes and a ClassifierService's pods read.

The ABExperiment controller computes the *effective* weights (the spec's start weights, then the
progressive steps, the bandit's allocation, a promotion or a rollback) and writes them, as the
JSON of :class:`Routing`, under :data:`ROUTING_FILE` into the service's routing ConfigMap
(:func:`routing_configmap_name`). The service's pods mount that ConfigMap at
:data:`ROUTING_DIR` and re-read the file when it changes (the kubelet refreshes a mounted
ConfigMap within about a minute), so a new split needs no restart and no spec is ever written:
Argo CD keeps owning the specs. Which models the pods load (one per variant) is part of the
service's own config, because loading a model is a change worth a rollout; a weight is not.

A request's variant is chosen by consistent hashing of its stickiness key (the header
:attr:`Routing.stickiness_header`, or the client address when absent) salted with
:attr:`Routing.salt` (:mod:`foresight.experiment.routing`). The chosen variant's name comes back
in the :data:`VARIANT_HEADER` response header and the ``variant`` field of the JSON answer, and is
the ``variant`` label of every request metric. Without a routing file, or with one the pods cannot
read, a pod serves :attr:`Routing.control` (or its only model) and says so in its log: a broken
split never takes the service down.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "ROUTING_DIR",
    "ROUTING_FILE",
    "VARIANT_HEADER",
    "RoutedVariant",
    "Routing",
    "routing_configmap_name",
]

ROUTING_DIR = "/etc/foresight/routing"
"""Where a ClassifierService's pods mount their routing ConfigMap."""
ROUTING_FILE = "routing.json"
"""The routing ConfigMap's key (and the file's name under :data:`ROUTING_DIR`)."""
VARIANT_HEADER = "X-Foresight-Variant"
"""The response header naming the variant that served a request."""


def routing_configmap_name(service: str) -> str:
    """The routing ConfigMap of ClassifierService ``service`` (owned by the service, written by the
    ABExperiment controller)."""
    return f"{service}-routing"


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class RoutedVariant(_Wire):
    name: str = Field(min_length=1, max_length=63)
    weight: int = Field(ge=0, le=100, description="Percent of requests routed to this variant.")


class Routing(_Wire):
    """The effective traffic split of one experiment over one service."""

    experiment: str = Field(description="``<namespace>/<name>`` of the ABExperiment that wrote it.")
    generation: int = Field(ge=0, description="The experiment generation the split was computed for.")
    salt: str = Field(
        min_length=1,
        description="Hashing salt (the experiment's uid): a new experiment reshuffles clients, a new "
        "split of the same experiment moves as few as possible.",
    )
    stickiness_header: str | None = Field(
        default=None,
        description="Request header whose value keeps a client on one variant; none: the client address.",
    )
    control: str = Field(min_length=1, description="The variant served when no split applies.")
    variants: list[RoutedVariant] = Field(min_length=1)
    updated: str = Field(description="When the split was computed (RFC 3339).")

    @model_validator(mode="after")
    def _sums_to_100(self) -> Routing:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        if sum(v.weight for v in self.variants) != 100:
            raise ValueError(f"weights must sum to 100, got {[v.weight for v in self.variants]}")
        if self.control not in names:
            raise ValueError(f"control {self.control!r} is not one of the variants {names}")
        return self

    def weights(self) -> dict[str, int]:
        return {v.name: v.weight for v in self.variants}
