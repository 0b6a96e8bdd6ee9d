"""Pure builders: API models in, child manifests (plain dicts) out; no client calls, no kopf."""

from __future__ import annotations

from .configmap import build_configmap
from .deployment import build_deployment, build_service
from .job import build_job
from .pod import GPU_RESOURCE, TERMINATION_LOG, Volume, resource_requirements
from .training import TrainingPlan, plan_training

__all__ = [
    "GPU_RESOURCE",
    "TERMINATION_LOG",
    "TrainingPlan",
    "Volume",
    "build_configmap",
    "build_deployment",
    "build_job",
    "build_service",
    "plan_training",
    "resource_requirements",
]
