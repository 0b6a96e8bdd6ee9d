"""A real S3-compatible server for tests: moto's S3 over HTTP on 127.0.0.1, stopped by its owner.

- :class:`MotoS3Server` runs moto's ``ThreadedMotoServer`` in this process on a free port (the OS
  picks it: port 0, so there is no race between choosing and binding). Moto accepts *any*
  credentials in this mode, and its buckets live in process-global state: give every test its own
  bucket name (:func:`unique_bucket`).
- :class:`AuthMotoS3Server` runs ``python -m moto.server`` as a child process with IAM
  authentication switched on (``INITIAL_NO_AUTH_ACTION_COUNT``: the first N requests are free, which
  we spend creating the users). It provides an ``admin`` key pair allowed ``s3:*`` and a
  ``no_policy`` key pair with no permission, so wrong secrets give ``SignatureDoesNotMatch``,
  unknown keys ``InvalidAccessKeyId`` and missing permission ``AccessDenied``, exactly as real S3.
  A child process, because the switch is moto's process-global setting.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from types import TracebackType

import requests

from tests.polling import wait_for

__all__ = ["AuthMotoS3Server", "KeyPair", "MotoS3Server", "free_port", "unique_bucket"]

REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique_bucket(stem: str = "fs-test") -> str:
    return f"{stem}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class KeyPair:
    access_key: str
    secret_key: str


class MotoS3Server:
    """In-process moto S3 on 127.0.0.1 (any credentials accepted)."""

    credentials = KeyPair("testing-access-key", "testing-secret-key")

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.host = "127.0.0.1"
        self.port = 0

    @property
    def endpoint(self) -> str:
        """``host:port`` as the minio client wants it (plain HTTP: ``secure=False``)."""
        return f"{self.host}:{self.port}"

    def start(self) -> MotoS3Server:
        self._server.start()
        self.host, self.port = self._server.get_host_and_port()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> MotoS3Server:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class AuthMotoS3Server:
    """moto S3 in a child process on 127.0.0.1 with IAM signature and policy checks enforced."""

    # create_user + create_access_key + put_user_policy for admin, create_user + create_access_key
    # for no_policy: moto counts each request, and request number 6 is the first one checked.
    _FREE_REQUESTS = 5

    def __init__(self, startup_timeout_s: float = 30.0) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.startup_timeout_s = startup_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self.admin = KeyPair("", "")
        self.no_policy = KeyPair("", "")

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> AuthMotoS3Server:
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=str(self._FREE_REQUESTS))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._wait_ready()
            self._create_users()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        url = f"http://{self.endpoint}/moto-api/"

        def answering() -> bool:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {self._proc.returncode} before it was ready")
            requests.get(url, timeout=1)
            return True

        wait_for(answering, f"the moto server on {self.endpoint}", timeout=self.startup_timeout_s,
                 interval=0.05, ignoring=(requests.RequestException,))  # fmt: skip

    def _create_users(self) -> None:
        import boto3

        iam = boto3.client(
            "iam",
            endpoint_url=f"http://{self.endpoint}",
            region_name=REGION,
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.create_user(UserName="admin")
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        iam.put_user_policy(UserName="admin", PolicyName="s3-all", PolicyDocument=json.dumps(policy))
        self.admin = KeyPair(key["AccessKeyId"], key["SecretAccessKey"])
        iam.create_user(UserName="no-policy")
        key = iam.create_access_key(UserName="no-policy")["AccessKey"]
        self.no_policy = KeyPair(key["AccessKeyId"], key["SecretAccessKey"])

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def __enter__(self) -> AuthMotoS3Server:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
