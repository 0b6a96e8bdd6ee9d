"""Turning a dataset URI into local files a task can read.

``file:///path`` and plain paths are used in place (a PVC mount in a pod, a directory in local
mode); ``s3://bucket/key`` is downloaded through ``foresight.artifacts`` into a work directory
(a single object, or every object under a prefix for a folder of images).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .errors import DatasetError, TrainingConfigError

__all__ = ["resolve_dataset"]


def resolve_dataset(uri: str, workdir: Path, s3: Any | None = None) -> Path:
    """A local path holding the dataset at ``uri``; raises :class:`DatasetError` when it is absent."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme else uri)
        if not path.exists():
            raise DatasetError(f"dataset {uri} does not exist: check dataset.uri and the volume mount")
        return path
    if parsed.scheme != "s3":
        raise TrainingConfigError(
            f"unsupported dataset URI {uri!r}: use a path, file:///path or s3://bucket/key"
        )
    try:
        from foresight import artifacts
    except ImportError as exc:
        raise TrainingConfigError(f"{uri}: s3:// datasets need foresight.artifacts (foresight[s3])") from exc
    store = artifacts.open_store(f"s3://{parsed.netloc}", s3=s3)
    key = parsed.path.lstrip("/")
    target = workdir / "dataset" / (Path(key).name or "data")
    try:
        if store.exists(key):
            store.get_file(key, target)
        else:
            # A prefix: download every object under it (a folder of labelled images).
            prefix = key.rstrip("/") + "/"
            listed = store.list(prefix)
            if not listed:
                raise DatasetError(f"dataset {uri} not found: no object or prefix with that key")
            for info in listed:
                store.get_file(info.key, target / info.key[len(prefix) :])
    except DatasetError:
        raise
    except Exception as exc:
        # Artifact errors already say what to do (credentials, bucket); keep them attached.
        raise DatasetError(f"cannot fetch dataset {uri}: {exc}") from exc
    return target
