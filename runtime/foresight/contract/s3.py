"""The S3 environment of a runtime pod: built by the operator from a store reference, read by the runtime.

:func:`s3_pod_env` is the one place that turns a :class:`~foresight.api.meta.StoreRef` into the
pod's environment (endpoint, region, TLS, the credentials Secret's keys as ``secretKeyRef``s and
its name); :meth:`S3Environment.from_environ` is how the runtime reads the same variables back.
The credentials themselves stay in the Secret: they reach the pod through ``secretKeyRef`` and are
read by :class:`foresight.artifacts.s3.S3Credentials`, never by this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from foresight.api.meta import SecretKeyRef, StoreRef

from . import env as names

__all__ = [
    "AWS_ENDPOINT",
    "SECRET_ACCESS_KEY",
    "SECRET_SECRET_KEY",
    "S3Environment",
    "S3PodEnv",
    "s3_pod_env",
]

SECRET_ACCESS_KEY = "accessKey"
"""The key of a credentials Secret (``spec...credentialsSecret``) that holds the access key id."""
SECRET_SECRET_KEY = "secretKey"
"""The key of a credentials Secret that holds the secret access key."""
AWS_ENDPOINT = "s3.amazonaws.com"
"""The endpoint of a store that names none (the API documents "unset means AWS S3")."""


@dataclass(frozen=True)
class S3PodEnv:
    """What a pod needs to reach one S3 store: literal variables, Secret-backed ones, Secret names."""

    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, SecretKeyRef] = field(default_factory=dict)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The Secrets the pod reads (they must exist before it is created)."""
        return tuple(dict.fromkeys(ref.name for ref in self.secret_env.values()))


def s3_pod_env(store: StoreRef | None) -> S3PodEnv:
    """The environment of a pod that reads or writes ``store`` (``None``: AWS S3 with defaults).

    The endpoint is always set (AWS S3 when the store names none), so the runtime never has to
    guess; the credentials Secret, when named, becomes ``AWS_ACCESS_KEY_ID`` /
    ``AWS_SECRET_ACCESS_KEY`` from its keys ``accessKey`` / ``secretKey``, and its name goes into
    ``FORESIGHT_S3_CREDENTIALS_SECRET`` so a rejected key names the Secret to fix.
    """
    ref = store if store is not None else StoreRef()
    env = {
        names.S3_ENDPOINT: ref.endpoint or AWS_ENDPOINT,
        names.S3_REGION: ref.region,
        names.S3_SECURE: str(not ref.insecure).lower(),
    }
    secret_env: dict[str, SecretKeyRef] = {}
    if ref.credentials_secret:
        env[names.S3_CREDENTIALS_SECRET] = ref.credentials_secret
        secret_env = {
            names.AWS_ACCESS_KEY_ID: SecretKeyRef(name=ref.credentials_secret, key=SECRET_ACCESS_KEY),
            names.AWS_SECRET_ACCESS_KEY: SecretKeyRef(name=ref.credentials_secret, key=SECRET_SECRET_KEY),
        }
    return S3PodEnv(env=env, secret_env=secret_env)


@dataclass(frozen=True)
class S3Environment:
    """The S3 settings :func:`s3_pod_env` gave a pod, as the runtime reads them (``None`` = not set)."""

    endpoint: str | None = None
    region: str | None = None
    secure: bool | None = None
    credentials_secret: str | None = None
    """The name of the Secret the keys came from (for error messages)."""
    has_credentials: bool = False
    """Whether an access key is set (the runtime then reads the pair with ``S3Credentials.from_env``)."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> S3Environment:
        secure = environ.get(names.S3_SECURE)
        return cls(
            endpoint=environ.get(names.S3_ENDPOINT) or None,
            region=environ.get(names.S3_REGION) or None,
            secure=None if not secure else secure.lower() != "false",
            credentials_secret=environ.get(names.S3_CREDENTIALS_SECRET) or None,
            has_credentials=bool(environ.get(names.AWS_ACCESS_KEY_ID)),
        )

    def to_environ(self) -> dict[str, str]:
        """The plain variables for a process that reads them back with :meth:`from_environ` (a
        rank ``foresight run`` starts); unset fields are left out. The credentials themselves are
        never here: they travel in :data:`~foresight.contract.env.AWS_CREDENTIALS`, from a Secret."""
        env = {names.S3_ENDPOINT: self.endpoint, names.S3_REGION: self.region,
               names.S3_CREDENTIALS_SECRET: self.credentials_secret}  # fmt: skip
        out = {k: v for k, v in env.items() if v}
        if self.secure is not None:
            out[names.S3_SECURE] = str(self.secure).lower()
        return out
