"""The environment of a runtime pod: the variable names the operator sets and the runtime reads.

Values are never secrets in a manifest: a variable that holds one (an S3 key, an API token) is
filled from a Kubernetes Secret by ``valueFrom.secretKeyRef``; the variables that only *name* a
Secret (``FORESIGHT_S3_CREDENTIALS_SECRET``) carry its name, for error messages.
"""

from __future__ import annotations

__all__ = [
    "AWS_ACCESS_KEY_ID",
    "AWS_CREDENTIALS",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "DEFAULT_PVC_ROOT",
    "JOB_COMPLETION_INDEX",
    "PROGRESS_FILE",
    "PROMETHEUS_TOKEN",
    "PVC_MOUNTS",
    "PVC_ROOT",
    "S3_CREDENTIALS_SECRET",
    "S3_ENDPOINT",
    "S3_REGION",
    "S3_SECURE",
    "SHARD_PLAN",
    "TERMINATION_LOG",
    "TERMINATION_LOG_PATH",
    "TERMINATION_MESSAGE_PATH",
]

TERMINATION_LOG = "FORESIGHT_TERMINATION_LOG"
"""Where the runtime writes its termination message; the operator points it at the container's
``terminationMessagePath``."""
TERMINATION_MESSAGE_PATH = "FORESIGHT_TERMINATION_MESSAGE_PATH"
"""The same as :data:`TERMINATION_LOG`, under the name ``foresight run`` documents; wins when both are set."""
TERMINATION_LOG_PATH = "/dev/termination-log"
"""The kubelet's default ``terminationMessagePath``, and the runtime's default when neither is set."""

PVC_ROOT = "FORESIGHT_PVC_ROOT"
"""Directory under which ``pvc://<claim>/<path>`` resolves to ``<root>/<claim>/<path>`` (ForecastTask
runs and the forecast server)."""
DEFAULT_PVC_ROOT = "/var/lib/foresight/pvc"
"""Where the operator mounts a ForecastTask's claim (``<root>/<claim>``), and the runtime's default root."""
PVC_MOUNTS = "FORESIGHT_PVC_MOUNTS"
"""JSON ``{claim: mountPath}``: where a ModelVersion's verify pod sees each PersistentVolumeClaim."""

S3_ENDPOINT = "FORESIGHT_S3_ENDPOINT"
"""``host:port`` of the S3-compatible store."""
S3_REGION = "FORESIGHT_S3_REGION"
S3_SECURE = "FORESIGHT_S3_SECURE"
"""``false`` for plain HTTP; anything else (or unset) means HTTPS."""
S3_CREDENTIALS_SECRET = "FORESIGHT_S3_CREDENTIALS_SECRET"
"""The *name* of the Secret the S3 keys come from (never its content), so errors name what to fix."""
AWS_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
AWS_SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
AWS_SESSION_TOKEN = "AWS_SESSION_TOKEN"
AWS_CREDENTIALS = (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)
"""The variables that carry S3 credentials (values from a Secret, never from a manifest)."""

PROMETHEUS_TOKEN = "FORESIGHT_PROMETHEUS_TOKEN"
"""Bearer token for a ForecastTask's ``spec.source.url`` (from ``spec.source.bearerTokenSecret``)."""
PROGRESS_FILE = "FORESIGHT_PROGRESS_FILE"
"""Where a training run also writes its progress lines (optional)."""

SHARD_PLAN = "FORESIGHT_SHARD_PLAN"
"""In a sharded run's shard pods: the plan's key prefix in the task's artifact store
(``forecasttasks/<ns>/<name>/plans/<plan id>``); its presence makes ``foresight run`` a shard."""
JOB_COMPLETION_INDEX = "JOB_COMPLETION_INDEX"
"""What Kubernetes sets in each pod of an Indexed Job: the pod's index (a shard's index)."""
