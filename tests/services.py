"""Services as a deployment has them, started as local processes for the suites that need a network between steps.

* :class:`ObjectStore`: moto's S3 server over real HTTP (boto3, s3fs, DVC and the MLflow server all talk to it
  as to S3), with buckets created up front and the ``AWS_*`` environment a deployment's Secret would carry.
* :func:`mlflow_server`: ``mlflow server`` over HTTP, artifacts proxied to that S3 (clients see
  ``mlflow-artifacts:/`` URIs and never need the bucket).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from tests.reliability.world import free_port


class ObjectStore:
    """moto's S3 server on a free port; ``env`` holds the credentials and endpoint clients use."""

    def __init__(self, buckets: tuple[str, ...]) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.buckets = buckets
        self.env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def __enter__(self) -> ObjectStore:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
        for bucket in self.buckets:
            client.create_bucket(Bucket=bucket)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._server.stop()


def wait_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    """Poll ``url`` until it answers 200; fail with the log's tail if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[:3]} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop_group(process: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group (gunicorn/uvicorn workers included), SIGKILL what is left after ``grace``."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


@contextmanager
def mlflow_server(root: Path, store: ObjectStore, backend_uri: str | None = None,
                  bucket: str = "mlflow") -> Iterator[str]:  # fmt: skip
    """``mlflow server`` (SQLite backend unless ``backend_uri``) with artifacts on ``s3://<bucket>/artifacts``."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = root / "mlflow-server.log"
    command = [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--backend-store-uri", backend_uri or f"sqlite:///{root / 'mlflow.db'}",
               "--artifacts-destination", f"s3://{bucket}/artifacts", "--serve-artifacts"]  # fmt: skip
    env = {**os.environ, **store.env, "MLFLOW_S3_ENDPOINT_URL": store.endpoint, "MLFLOW_DISABLE_TELEMETRY": "true"}
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(process)
