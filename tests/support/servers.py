"""Real servers for the tests: given URLs, testcontainers, or child processes on free ports.

Order: ``EYEWEAR_TEST_MONGODB_URL`` / ``EYEWEAR_TEST_REDIS_URL`` when set; testcontainers when
``EYEWEAR_TEST_CONTAINERS=1`` and a Docker engine answers; otherwise a SecantusDB process and a
``redis-server`` process. A server that cannot be had is an error, never a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from adapters.embedded.process import free_port, launch


def _containers_wanted() -> bool:
    if os.environ.get("EYEWEAR_TEST_CONTAINERS") != "1":
        return False
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception:
        return False
    return True


@contextmanager
def mongo_server() -> Iterator[str]:
    given = os.environ.get("EYEWEAR_TEST_MONGODB_URL")
    if given:
        yield given
        return
    if _containers_wanted():
        from testcontainers.mongodb import MongoDbContainer

        with MongoDbContainer("mongo:8") as container:
            yield container.get_connection_url()
        return
    with tempfile.TemporaryDirectory(prefix="eyewear-test-mongo-") as scratch:
        server = launch(
            storage_path=str(Path(scratch) / "data"),
            log_path=Path(scratch) / "server.log",
            extra_args=["--enable-test-commands", "--log-level", "WARNING"],
        )
        try:
            yield server.url
        finally:
            server.stop()


def redis_binary() -> str:
    for candidate in (shutil.which("redis-server"), "/usr/bin/redis-server", "/usr/sbin/redis-server"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("redis-server not found: install Debian's redis-server (apt-get install redis-server)")


class RedisProcess:
    """A throw-away ``redis-server`` the tests can stop and start again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        self.process = subprocess.Popen(
            [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            if self.answers():
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING in time")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


class _GivenRedis:
    def __init__(self, url: str) -> None:
        self.url = url

    def start(self) -> None:
        raise RuntimeError("a given Redis server cannot be restarted by the tests")

    def stop(self) -> None:
        raise RuntimeError("a given Redis server cannot be stopped by the tests")


@contextmanager
def redis_server() -> Iterator[Any]:
    given = os.environ.get("EYEWEAR_TEST_REDIS_URL")
    if given:
        yield _GivenRedis(given)
        return
    if _containers_wanted():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7") as container:
            host = container.get_container_host_ip()
            yield _GivenRedis(f"redis://{host}:{container.get_exposed_port(6379)}/0")
        return
    server = RedisProcess()
    server.start()
    try:
        yield server
    finally:
        server.stop()
