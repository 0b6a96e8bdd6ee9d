"""An artifact store as a runtime pod sees it: the volume, the environment, and URIs back in the user's words.

Every kind whose pods read or write a store (a ForecastTask's runs and forecast server, a
ModelLibrary's fetch Job) reaches it the same way:

- ``pvc://<claim>/<path>`` mounts the claim at ``/var/lib/foresight/pvc/<claim>`` and points the
  runtime's ``FORESIGHT_PVC_ROOT`` at its parent, spelled through the mount (``<mount>/..``) so that a
  test kubelet that maps mount paths to local directories maps it too; the runtime then resolves
  ``pvc://`` URIs under that root;
- ``s3://`` passes the endpoint and the credentials Secret as env
  (:func:`foresight.contract.s3.s3_pod_env`);
- ``file://`` exists only in local mode: refused with what to write instead.

Inside the pod a PVC is a local directory, so the runtime reports ``file://`` URIs of its mount;
:func:`public_uri` turns them back into the ``pvc://`` form the user wrote. Pure: no client calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from foresight.api.meta import Reason, SecretKeyRef, StoreRef
from foresight.contract import env as pod_env
from foresight.contract.s3 import s3_pod_env

from ..reconcile.errors import SpecError
from .pod import Volume

__all__ = ["PVC_ROOT", "StoreMount", "public_uri", "store_mount"]

PVC_ROOT = pod_env.DEFAULT_PVC_ROOT


@dataclass(frozen=True)
class StoreMount:
    """What a pod needs to reach one store."""

    volumes: tuple[Volume, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, SecretKeyRef] = field(default_factory=dict)


def store_mount(
    store: StoreRef, *, field: str, volume: str = "artifacts", read_only: bool = False
) -> StoreMount:
    """The volume and environment for ``store``; :class:`SpecError` naming ``field`` for ``file://``."""
    uri = store.uri
    if uri.startswith("pvc://"):
        claim = uri[len("pvc://") :].partition("/")[0]
        mount = f"{PVC_ROOT}/{claim}"
        return StoreMount(
            volumes=(Volume(name=volume, mount_path=mount, claim=claim, read_only=read_only),),
            env={pod_env.PVC_ROOT: f"{mount}/.."},
        )
    if uri.startswith("s3://"):
        s3 = s3_pod_env(store)
        return StoreMount(env=s3.env, secret_env=s3.secret_env)
    raise SpecError(
        f"{uri!r}: file:// locations exist only in local mode (`foresight run --local`); in a cluster use "
        "pvc://<claim>/<path> or s3://<bucket>/<prefix>",
        reason=Reason.UNSUPPORTED_URI,
        field=field,
    )


def public_uri(store_uri: str, runtime_uri: str | None, marker: str) -> str | None:
    """``runtime_uri`` as the user wrote the store: ``pvc://claim/path/<marker>/...`` for a PVC.

    ``marker`` is the first key segment the runtime writes under the store's root (``forecasttasks``,
    ``modellibraries``): what precedes it in a ``file://`` URI is the pod's mount. ``s3://`` URIs are
    already what the user wants.
    """
    if not runtime_uri:
        return None
    if runtime_uri.startswith("s3://") or not store_uri.startswith("pvc://"):
        return runtime_uri
    at = runtime_uri.find(f"/{marker}/")
    if at < 0:
        return runtime_uri
    return store_uri.rstrip("/") + runtime_uri[at:]
