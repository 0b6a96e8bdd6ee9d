"""Waiting for the Secrets a resource's pods read: no child is made before they exist.

A pod that references a missing Secret (or key) never starts (``CreateContainerConfigError``), so
every kind checks the references its pods will have first and waits with ``SecretNotFound``,
naming the Secret, the keys and the command that makes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from foresight.api.meta import Reason, SecretKeyRef
from foresight.kube import SECRETS, KubeClient

from .errors import WaitError

__all__ = ["require_secrets", "secret_keys"]


def secret_keys(secret: Mapping[str, Any]) -> set[str]:
    """The keys a Secret holds (``data`` and, before the API server merged it, ``stringData``)."""
    return set((secret.get("data") or {}).keys()) | set((secret.get("stringData") or {}).keys())


def require_secrets(
    kube: KubeClient, namespace: str, refs: Iterable[SecretKeyRef], *, waiting: str, delay: float
) -> None:
    """Every referenced Secret and key exists; a :class:`WaitError` naming the first missing one otherwise.

    ``waiting`` ends the message: what happens once it exists (``"the TrainingJob starts"``).
    """
    wanted: dict[str, list[str]] = {}
    for ref in refs:
        keys = wanted.setdefault(ref.name, [])
        if ref.key not in keys:
            keys.append(ref.key)
    for name, keys in wanted.items():
        secret = kube.get(SECRETS, name, namespace)
        if secret is None:
            literals = " ".join(f"--from-literal={key}=..." for key in keys)
            raise WaitError(
                f"Secret {namespace}/{name} not found: create it with {_keys(keys)} "
                f"(kubectl -n {namespace} create secret generic {name} {literals}); {waiting} once it exists",
                reason=Reason.SECRET_NOT_FOUND,
                delay=delay,
            )
        have = secret_keys(secret)
        missing = [key for key in keys if key not in have]
        if missing:
            raise WaitError(
                f"Secret {namespace}/{name} has no key {missing[0]} (it has: "
                f"{', '.join(sorted(have)) or 'none'}): add the key or fix the reference; {waiting} then",
                reason=Reason.SECRET_NOT_FOUND,
                delay=delay,
            )


def _keys(keys: list[str]) -> str:
    return f"key {keys[0]}" if len(keys) == 1 else f"keys {', '.join(keys)}"
