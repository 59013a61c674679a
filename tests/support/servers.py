"""Real MongoDB and Redis servers for the test suites.

In order of preference: a server given by URL (`EYEWEAR_TEST_MONGODB_URL`,
`EYEWEAR_TEST_REDIS_URL`); a container when `EYEWEAR_TEST_CONTAINERS=1` and a Docker engine
answers; else a local process on a free port. A missing server is an error, never a skip.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from adapters.embedded.process import LaunchedServer, free_port, launch, log_tail

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT = 30.0
REDIS_CANDIDATES = ("/usr/bin/redis-server", "/usr/sbin/redis-server")


def docker_available() -> bool:
    """Containers only when asked for and a Docker engine answers."""
    if os.environ.get("EYEWEAR_TEST_CONTAINERS") != "1":
        return False
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=5).ping()
    except Exception as exc:
        logger.warning("EYEWEAR_TEST_CONTAINERS=1 but Docker does not answer (%s): using processes", exc)
        return False
    return True


@contextlib.contextmanager
def mongo_server() -> Iterator[str]:
    """A MongoDB URL for the duration of the block."""
    given = os.environ.get("EYEWEAR_TEST_MONGODB_URL")
    if given:
        yield given
    elif docker_available():
        try:
            from testcontainers.community.mongodb import MongoDbContainer
        except ImportError:  # testcontainers before 4.14
            from testcontainers.mongodb import MongoDbContainer

        with MongoDbContainer("mongo:8") as container:
            yield container.get_connection_url()
    else:
        with mongo_process() as server:
            yield server.url


class MongoProcess:
    """A SecantusDB test server: in memory, or on a storage dir that survives `stop`/`start`.

    `--enable-test-commands` turns on `configureFailPoint` for fault injection. It never
    writes the embedded server's shared record: nobody else must find and reuse it.
    """

    def __init__(self, work_dir: Path, *, persistent: bool = False) -> None:
        self.work_dir = work_dir
        self.storage_path = str(work_dir / "mongo") if persistent else ":memory:"
        self.log_path = work_dir / "mongo.log"
        self.port = free_port()
        self._server: LaunchedServer | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.process.poll() is None

    def start(self) -> None:
        """(Re)start on the same port, so clients holding the URL reconnect."""
        if self.running:
            return
        self._server = launch(
            storage_path=self.storage_path,
            log_path=self.log_path,
            port=self.port,
            extra_args=("--enable-test-commands",),
            startup_timeout=STARTUP_TIMEOUT,
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown."""
        if self._server is not None:
            self._server.process.kill()
            self._server.process.wait()
            self._server = None


@contextlib.contextmanager
def mongo_process(*, persistent: bool = False) -> Iterator[MongoProcess]:
    """A local SecantusDB process whatever the environment says (for tests that stop it)."""
    with tempfile.TemporaryDirectory(prefix="eyewear-test-mongo-") as tmp:
        server = MongoProcess(Path(tmp), persistent=persistent)
        server.start()
        try:
            yield server
        finally:
            server.stop()


class GivenRedis:
    """A Redis server the tests did not start (URL or container): it cannot be stopped."""

    def __init__(self, url: str) -> None:
        self.url = url

    def start(self) -> None:
        raise RuntimeError("a given Redis server cannot be restarted by the tests")

    def stop(self) -> None:
        raise RuntimeError("a given Redis server cannot be stopped by the tests")


@contextlib.contextmanager
def redis_server() -> Iterator[RedisProcess | GivenRedis]:
    """A Redis server for the duration of the block; use `.url`.

    Only the process-based one (a `RedisProcess`) can be stopped and started again.
    """
    given = os.environ.get("EYEWEAR_TEST_REDIS_URL")
    if given:
        yield GivenRedis(given)
    elif docker_available():
        try:
            from testcontainers.community.redis import RedisContainer
        except ImportError:  # testcontainers before 4.14
            from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7") as container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(container.port)
            yield GivenRedis(f"redis://{host}:{port}/0")
    else:
        with redis_process() as server:
            yield server


def redis_binary() -> str:
    found = shutil.which("redis-server")
    for candidate in (found, *REDIS_CANDIDATES):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("redis-server not found: install Debian's redis-server (apt-get install redis-server)")


class RedisProcess:
    """A throw-away `redis-server` (no persistence) that a test can stop, kill and start again."""

    def __init__(self, work_dir: Path) -> None:
        self.executable = redis_binary()
        self.work_dir = work_dir
        self.log_path = work_dir / "redis.log"
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """(Re)start on the same port, so clients holding the URL reconnect."""
        if self.running:
            return
        args = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.work_dir),
            "--daemonize", "no",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            offset = log.seek(0, os.SEEK_END)
            self._process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.work_dir
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.answers():
            code = self._process.poll()
            if code is not None or time.monotonic() >= deadline:
                self.kill()
                raise RuntimeError(
                    f"redis-server on port {self.port} did not start (exit code {code}):\n"
                    f"{log_tail(self.log_path, offset)}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """A clean shutdown (SIGTERM)."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-conversation, as in a crash."""
        self._end(signal.SIGKILL)

    def _end(self, signum: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signum)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def answers(self) -> bool:
        """Whether it answers PING now."""
        client = redis.Redis(
            host="127.0.0.1",
            port=self.port,
            socket_connect_timeout=0.25,
            socket_timeout=0.25,
            retry=Retry(NoBackoff(), 0),  # a probe, not a client: no backoff-and-retry
        )
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()


@contextlib.contextmanager
def redis_process() -> Iterator[RedisProcess]:
    """A local redis-server process whatever the environment says (for tests that kill it)."""
    with tempfile.TemporaryDirectory(prefix="eyewear-test-redis-") as tmp:
        server = RedisProcess(Path(tmp))
        server.start()
        try:
            yield server
        finally:
            server.stop()
