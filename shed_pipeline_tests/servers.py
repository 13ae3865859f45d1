"""The S3-compatible endpoint the tests start on 127.0.0.1 and stop themselves (moto's server mode: real
HTTP, real boto3 client code), and a bucket on it. Starting and stopping servers: shed_pipeline.local_servers."""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from shed_pipeline.local_servers import free_port, reset_signals, stop, wait_for_http


@contextmanager
def moto_server(log_dir: Path) -> Iterator[str]:
    """An S3-compatible server on 127.0.0.1; yields its endpoint URL."""
    port = free_port()
    log = log_dir / "moto_server.log"
    exe = Path(sys.executable).with_name("moto_server")
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [str(exe), "-H", "127.0.0.1", "-p", str(port)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=reset_signals,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{endpoint}/moto-api/", 30, proc, log)
        yield endpoint
    finally:
        stop(proc)


@dataclass
class S3Bucket:
    """A bucket on the test S3 server, with a plain boto3 client (not the code under test)."""

    name: str
    client: Any
    endpoint: str

    def put(self, key: str, body: bytes | Path) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=body.read_bytes() if isinstance(body, Path) else body)

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()
