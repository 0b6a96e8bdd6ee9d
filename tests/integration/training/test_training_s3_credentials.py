"""Wrong S3 credentials end a training run with reason BadCredentials, never with the secret.

Against moto's S3 with IAM checks on (:class:`~tests.servers.s3.AuthMotoS3Server`): a wrong secret
key is ``SignatureDoesNotMatch``, a user without a policy ``AccessDenied``. The pod environment is
the one ``plan_training`` gives a TrainingJob whose store names ``credentialsSecret``.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from foresight.api.trainingjob import TrainingJobSpec
from foresight.timeseries import Panel
from foresight.training import TrainConfig, run_training
from foresight.training.tasks.forecast import save_panel_npz
from foresight_operator.builders import plan_training
from minio import Minio

from tests.servers.s3 import REGION, AuthMotoS3Server, unique_bucket

pytestmark = pytest.mark.integration

SECRET_NAME = "train-s3"
WRONG_SECRET = "wrong-secret-Zq81vX"


@pytest.fixture(scope="module")
def auth_s3() -> Iterator[AuthMotoS3Server]:
    with AuthMotoS3Server() as server:
        yield server


@pytest.fixture
def bucket(auth_s3: AuthMotoS3Server, tmp_path: Path) -> str:
    """A bucket holding a real forecast panel at ``data/panel.npz`` (written with the admin keys)."""
    import numpy as np

    admin = Minio(
        auth_s3.endpoint, auth_s3.admin.access_key, auth_s3.admin.secret_key, secure=False, region=REGION
    )
    name = unique_bucket("train")
    admin.make_bucket(name)
    t = np.arange(96, dtype=np.float64)
    panel = Panel(start=0, step=3600, keys=[{"user": "a"}], values=(10 + np.sin(t / 4))[None, :])
    save_panel_npz(panel, tmp_path / "panel.npz")
    admin.fput_object(name, "data/panel.npz", str(tmp_path / "panel.npz"))
    return name


def _pod_environ(
    spec: TrainingJobSpec, access: str, secret: str, tmp: Path
) -> tuple[dict[str, Any], dict[str, str]]:
    """The TrainConfig and environment of the training pod: plain env plus the Secret's values."""
    plan = plan_training(spec, namespace="ml", name="creds", config_map="c", default_image="rt")
    values = {"accessKey": access, "secretKey": secret}
    environ = dict(plan.env)
    environ.update({var: values[ref.key] for var, ref in plan.secret_env.items()})
    environ["FORESIGHT_TERMINATION_LOG"] = str(tmp / "termination-log")
    return plan.config, environ


def _store(auth_s3: AuthMotoS3Server, bucket: str) -> dict[str, Any]:
    return {"uri": f"s3://{bucket}/runs/", "endpoint": auth_s3.endpoint, "insecure": True,
            "credentialsSecret": SECRET_NAME}  # fmt: skip


def _check(
    code: int, doc: dict[str, Any], out: str, tmp: Path, caplog: pytest.LogCaptureFixture, secret: str
) -> dict[str, Any]:
    term: dict[str, Any] = json.loads((tmp / "termination-log").read_text())
    assert (code, term["reason"], term["retryable"]) == (7, "BadCredentials", False), term
    assert term == {k: doc[k] for k in ("reason", "message", "retryable")}
    # Never the secret, anywhere the operator or a user can read.
    assert secret not in json.dumps(term) and secret not in out and secret not in caplog.text
    return term


def test_wrong_secret_key_for_the_dataset_is_bad_credentials_naming_endpoint_bucket_and_secret(
    auth_s3: AuthMotoS3Server, bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = TrainingJobSpec.model_validate(
        {"task": "forecast", "model": "gru", "epochs": 1,
         "dataset": {"uri": f"s3://{bucket}/data/panel.npz", "store": _store(auth_s3, bucket)},
         "artifacts": _store(auth_s3, bucket)}
    )  # fmt: skip
    config, environ = _pod_environ(spec, auth_s3.admin.access_key, WRONG_SECRET, tmp_path)
    out = io.StringIO()
    with caplog.at_level(logging.DEBUG):
        code, doc = run_training(TrainConfig.model_validate(config), environ=environ, stdout=out)
    term = _check(code, doc, out.getvalue(), tmp_path, caplog, WRONG_SECRET)
    message = term["message"]
    assert auth_s3.endpoint in message and repr(bucket) in message
    assert "rejected the credentials" in message or "denied access" in message
    assert f"Secret {SECRET_NAME!r}" in message and "secretKey" in message  # what to fix
    assert auth_s3.admin.access_key not in message


def _toy_run_refused(
    auth_s3: AuthMotoS3Server,
    bucket: str,
    access: str,
    secret: str,
    tmp: Path,
    caplog: pytest.LogCaptureFixture,
) -> dict[str, Any]:
    """Run the toy task (no dataset: the first S3 call is the checkpoint listing) with these keys."""
    spec = TrainingJobSpec.model_validate(
        {
            "task": "forecast",
            "epochs": 1,
            "dataset": {"uri": "pvc://data/panel.npz"},
            "artifacts": _store(auth_s3, bucket),
        }
    )
    plan_config, environ = _pod_environ(spec, access, secret, tmp)
    config = TrainConfig.model_validate({**plan_config, "task": "toy", "dataset": None})
    out = io.StringIO()
    with caplog.at_level(logging.DEBUG):
        code, doc = run_training(config, environ=environ, stdout=out)
    return _check(code, doc, out.getvalue(), tmp, caplog, secret)  # fmt: skip


def test_wrong_secret_key_for_checkpoints_and_model_is_bad_credentials(
    auth_s3: AuthMotoS3Server, bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    term = _toy_run_refused(auth_s3, bucket, auth_s3.admin.access_key, WRONG_SECRET, tmp_path, caplog)
    assert (
        f"the S3 endpoint {auth_s3.endpoint} rejected the credentials (SignatureDoesNotMatch)"
        in term["message"]
    )
    assert repr(bucket) in term["message"] and f"Secret {SECRET_NAME!r}" in term["message"]


def test_user_without_permission_on_the_bucket_is_bad_credentials_saying_to_grant_access(
    auth_s3: AuthMotoS3Server, bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keys = auth_s3.no_policy
    term = _toy_run_refused(auth_s3, bucket, keys.access_key, keys.secret_key, tmp_path, caplog)
    assert "denied access" in term["message"] and "grant" in term["message"]
    assert repr(bucket) in term["message"] and auth_s3.endpoint in term["message"]
