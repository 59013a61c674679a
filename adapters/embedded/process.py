"""Start, probe and stop a SecantusDB server running as a child process.

The server runs in its own process (not in-process) so that the app and the database do not
share one interpreter lock. These functions are shared by the app's embedded default
(`EmbeddedMongo`) and by the test fixtures, which start throw-away servers the same way.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from adapters.embedded.termination import EXECUTABLE_NAME, STOP_TIMEOUT, terminate

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
_PORT_ATTEMPTS = 3
_CONFIG_TEXT = (
    "# Written at each start of the embedded SecantusDB server; edits are overwritten.\n"
    "# Passing this (empty) file with --config keeps a ./secantusd.toml or\n"
    "# ~/.secantus/secantusd.toml found elsewhere from changing the server's settings.\n"
)


class EmbeddedServerError(RuntimeError):
    """The embedded MongoDB server could not be started or reached."""


@dataclass
class LaunchedServer:
    """A server process started by this interpreter, ready to answer when returned."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return mongo_url(self.host, self.port)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (a clean WiredTiger checkpoint), then SIGKILL after `timeout` seconds."""
        terminate(self.process.pid, self.host, self.port, timeout=timeout, child=self.process)


def mongo_url(host: str, port: int) -> str:
    return f"mongodb://{host}:{port}/"


def find_executable() -> str:
    """The `secantusd-py` of this interpreter's environment first, so a venv's own copy wins."""
    beside = Path(sys.executable).with_name(EXECUTABLE_NAME)
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(EXECUTABLE_NAME)
    if found is None:
        raise EmbeddedServerError(
            f"{EXECUTABLE_NAME} not found beside {sys.executable} nor on PATH: "
            "install the 'secantusdb' package in this environment"
        )
    return found


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port the kernel just handed out; the server may still lose a race for it (then we retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ping(url: str, timeout: float) -> bool:
    """True when a server at `url` answers `ping` within `timeout` seconds."""
    timeout_ms = max(int(timeout * 1000), 50)
    client: MongoClient[dict[str, object]] = MongoClient(
        url,
        directConnection=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=timeout_ms,
    )
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def launch(
    *,
    storage_path: str,
    log_path: Path,
    host: str = DEFAULT_HOST,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    executable: str | None = None,
    startup_timeout: float = 30.0,
) -> LaunchedServer:
    """Start `secantusd-py` and return once it answers a ping.

    Its output goes to `log_path` (appended, mode 0600); an `EmbeddedServerError` carries the
    part of the log this start wrote. A port taken between `free_port` and the server's bind
    is retried on another free port when no port was asked for.
    """
    exe = executable or find_executable()
    config_path = log_path.with_name("secantusd.toml")
    config_path.write_text(_CONFIG_TEXT, encoding="utf-8")
    for attempt in range(1, _PORT_ATTEMPTS + 1):
        chosen = port if port is not None else free_port(host)
        try:
            return _launch_once(exe, storage_path, log_path, config_path, host, chosen, extra_args, startup_timeout)
        except _PortTaken:
            if port is not None or attempt == _PORT_ATTEMPTS:
                raise EmbeddedServerError(f"port {host}:{chosen} is already in use") from None
            logger.info("embedded_mongo.port_taken port=%s, retrying on another port", chosen)
    raise AssertionError("unreachable")  # pragma: no cover


class _PortTaken(Exception):
    pass


def _launch_once(
    exe: str,
    storage_path: str,
    log_path: Path,
    config_path: Path,
    host: str,
    port: int,
    extra_args: Sequence[str],
    startup_timeout: float,
) -> LaunchedServer:
    args = [
        exe,
        "--config", str(config_path),
        "--host", host,
        "--port", str(port),
        "--storage-path", storage_path,
        "--log-level", "WARNING",
        *extra_args,
    ]  # fmt: skip
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as log:
        offset = log.seek(0, os.SEEK_END)
        try:
            # A session of its own: a Ctrl-C meant for the app must not stop the database
            # under the app's graceful shutdown; the app stops it last.
            process = subprocess.Popen(  # noqa: S603 - our own argv, no shell
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=log_path.parent,
                start_new_session=True,
            )
        except OSError as exc:
            raise EmbeddedServerError(f"cannot run {exe}: {exc}") from exc
    server = LaunchedServer(process=process, host=host, port=port, log_path=log_path)
    try:
        return _await_ready(server, exe, storage_path, offset, startup_timeout)
    except BaseException:
        # Also a SIGTERM (raised as SystemExit) or a Ctrl-C while waiting: nobody has recorded this
        # server yet, so nobody else would ever stop it.
        server.stop()
        raise


def _await_ready(
    server: LaunchedServer, exe: str, storage_path: str, offset: int, startup_timeout: float
) -> LaunchedServer:
    process, log_path = server.process, server.log_path
    deadline = time.monotonic() + startup_timeout
    while True:
        code = process.poll()
        if code is not None:
            tail = log_tail(log_path, offset)
            if "Address already in use" in tail:
                raise _PortTaken
            hint = ""
            if "already being managed by another process" in tail:
                hint = f" (another server holds {storage_path}; is a process outside our record using it?)"
            raise EmbeddedServerError(f"{exe} exited with code {code} before answering{hint}; log {log_path}:\n{tail}")
        if ping(server.url, timeout=0.25):
            return server
        if time.monotonic() >= deadline:
            raise EmbeddedServerError(
                f"{exe} did not answer within {startup_timeout:g}s; log {log_path}:\n{log_tail(log_path, offset)}"
            )
        time.sleep(0.05)


def log_tail(path: Path, offset: int = 0, lines: int = 20) -> str:
    """The last `lines` lines written to `path` after `offset`, for error messages."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(log unreadable: {exc})"
    tail = text.strip().splitlines()[-lines:]
    return "\n".join(tail) if tail else "(log is empty)"
