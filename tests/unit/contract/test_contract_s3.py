"""The S3 environment of a pod: what every builder gives it is what the runtime reads back."""

from __future__ import annotations

from foresight.api.meta import StoreRef
from foresight.artifacts import s3_credentials_from_environ
from foresight.artifacts.s3 import S3Credentials
from foresight.contract.s3 import AWS_ENDPOINT, S3Environment, s3_pod_env
from foresight.run.local import s3_options
from foresight.training.launch import s3_options_from_environ


def pod_environ(store: StoreRef | None, secret_values: dict[str, str]) -> dict[str, str]:
    """The environment the kubelet gives the pod: literal values, and Secret keys resolved."""
    pod = s3_pod_env(store)
    env = dict(pod.env)
    for name, ref in pod.secret_env.items():
        env[name] = secret_values[ref.key]
    return env


def test_a_minio_store_reaches_every_runtime_reader() -> None:
    store = StoreRef(
        uri="s3://models/", endpoint="minio:9000", region="eu-1", insecure=True, credentials_secret="s3"
    )
    environ = pod_environ(store, {"accessKey": "AK", "secretKey": "SK"})
    assert S3Environment.from_environ(environ) == S3Environment(
        endpoint="minio:9000", region="eu-1", secure=False, credentials_secret="s3", has_credentials=True
    )
    options = s3_options_from_environ(environ)  # training, verify
    assert options is not None
    assert (options.endpoint, options.region, options.secure) == ("minio:9000", "eu-1", False)
    assert options.credentials == S3Credentials("AK", "SK", None, "env")
    forecast = s3_options(environ, None, "us-east-1", False)  # forecast runs and the forecast server
    assert (forecast.endpoint, forecast.region, forecast.secure) == ("minio:9000", "eu-1", False)
    assert s3_pod_env(store).secrets == ("s3",)


def test_a_store_without_endpoint_or_secret_is_aws_with_the_pods_own_identity() -> None:
    pod = s3_pod_env(None)
    assert pod.env["FORESIGHT_S3_ENDPOINT"] == AWS_ENDPOINT and pod.secret_env == {} and pod.secrets == ()
    options = s3_options_from_environ(pod.env)
    assert options is not None and options.endpoint == AWS_ENDPOINT and options.secure
    assert options.credentials is None


def test_secret_values_never_enter_the_manifest_env() -> None:
    pod = s3_pod_env(StoreRef(uri="s3://models/", credentials_secret="creds"))
    assert pod.env["FORESIGHT_S3_CREDENTIALS_SECRET"] == "creds"  # a name, not a value
    assert {k: (r.name, r.key) for k, r in pod.secret_env.items()} == {
        "AWS_ACCESS_KEY_ID": ("creds", "accessKey"),
        "AWS_SECRET_ACCESS_KEY": ("creds", "secretKey"),
    }


def test_a_process_started_with_to_environ_reads_the_same_settings_back() -> None:
    """``foresight run`` hands its ranks the pod variables (to_environ) and the credentials apart."""
    settings = S3Environment(endpoint="minio:9000", region="eu-1", secure=False, credentials_secret="s3")
    env = settings.to_environ()
    assert "AWS_ACCESS_KEY_ID" not in env and S3Environment.from_environ(env) == settings
    assert S3Environment().to_environ() == {}


def test_credentials_are_read_from_the_environment_under_a_prefix_or_not_at_all() -> None:
    environ = {
        "AWS_ACCESS_KEY_ID": "AK",
        "AWS_SECRET_ACCESS_KEY": "SK",
        "SRC_AWS_ACCESS_KEY_ID": "AK2",
        "SRC_AWS_SECRET_ACCESS_KEY": "SK2",
        "SRC_AWS_SESSION_TOKEN": "T",
    }
    assert s3_credentials_from_environ(environ) == S3Credentials("AK", "SK", None, "env")
    assert s3_credentials_from_environ(environ, "SRC_") == S3Credentials("AK2", "SK2", "T", "env")
    assert s3_credentials_from_environ({}) is None and s3_credentials_from_environ(environ, "OTHER_") is None
