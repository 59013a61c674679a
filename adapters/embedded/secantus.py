"""The embedded default database: a SecantusDB child process when no MongoDB URL is configured.

Processes that share a data dir share one server (CONTRACT.md section 2). The first starts
it and records it in `mongo-server.json`; the others connect to it and leave it running; the
one that started it stops it when it exits. A record whose server is gone or silent is stale
and replaced; a server whose owner died without stopping it is adopted, so that it is still
stopped by someone.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from adapters.embedded.process import DEFAULT_HOST, EmbeddedServerError, LaunchedServer, launch, ping
from adapters.embedded.record import (
    ServerRecord,
    exclusive_lock,
    read_record,
    remove_record,
    write_record,
)
from adapters.embedded.termination import STOP_TIMEOUT, is_secantus_process, pid_alive, terminate

__all__ = ["EmbeddedMongo", "EmbeddedServerError"]

logger = logging.getLogger(__name__)


class EmbeddedMongo:
    """Gives the app a MongoDB URL backed by a SecantusDB server on `data_dir/mongo`."""

    #: How long a recorded server may take to answer before it counts as hung; generous,
    #: because a busy server must not be mistaken for a dead one and killed.
    reuse_ping_timeout: float = 3.0

    def __init__(self, data_dir: Path, *, startup_timeout: float = 30.0, executable: str | None = None) -> None:
        # Resolved, so every process names the storage path identically in the server's argv.
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.storage_path = self.data_dir / "mongo"
        self.log_path = self.data_dir / "mongo.log"
        self.record_path = self.data_dir / "mongo-server.json"
        self.lock_path = self.data_dir / "mongo-server.lock"
        self.startup_timeout = startup_timeout
        self._executable = executable
        self._mutex = threading.Lock()
        self._url: str | None = None
        self._owned: ServerRecord | None = None
        self._child: LaunchedServer | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise EmbeddedServerError("the embedded server is not started")
        return self._url

    @property
    def owns_server(self) -> bool:
        """True when this object started (or adopted) the server and so must stop it."""
        return self._owned is not None

    @property
    def server_pid(self) -> int | None:
        record = self._owned or read_record(self.record_path)
        return record.pid if record and self._url == record.url else None

    def start(self) -> str:
        """Connect to the data dir's running server, or start one; returns its URL."""
        with self._mutex:
            if self._url is not None:
                return self._url
            self._prepare_data_dir()
            try:
                with exclusive_lock(self.lock_path, timeout=self.startup_timeout + 2 * STOP_TIMEOUT):
                    self._url = self._reuse_or_start()
            except TimeoutError as exc:
                raise EmbeddedServerError(f"cannot take the embedded server lock: {exc}") from exc
            return self._url

    def stop(self) -> None:
        """Stop the server if this object owns it; otherwise only forget it (others use it)."""
        with self._mutex:
            owned, child = self._owned, self._child
            self._url = self._owned = self._child = None
            if owned is None:
                return
            atexit.unregister(self.stop)
            if owned.owner_pid != os.getpid():
                return  # a forked child inherited this object; the server is its parent's
            try:
                with exclusive_lock(self.lock_path, timeout=self.startup_timeout):
                    self._stop_owned(owned, child)
            except TimeoutError:
                logger.warning("embedded_mongo.stop_without_lock path=%s", self.lock_path)
                self._stop_owned(owned, child)

    async def astart(self) -> str:
        return await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await self.astart()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.astop()

    def _prepare_data_dir(self) -> None:
        # Only the leaf gets 0700 (it holds the database and, later, signing keys).
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _reuse_or_start(self) -> str:
        record = read_record(self.record_path)
        if record is not None:
            if self._is_recorded_server(record):
                if ping(record.url, timeout=self.reuse_ping_timeout):
                    return self._reuse(record)
                logger.warning(
                    "embedded_mongo.hung pid=%s port=%s did not answer; stopping it",
                    record.pid,
                    record.port,
                )
                terminate(record.pid, record.host, record.port)
            logger.info("embedded_mongo.stale_record pid=%s port=%s replaced", record.pid, record.port)
            remove_record(self.record_path)
        return self._start_new()

    def _is_recorded_server(self, record: ServerRecord) -> bool:
        if not pid_alive(record.pid):
            return False
        return is_secantus_process(record.pid, str(self.storage_path)) is not False

    def _reuse(self, record: ServerRecord) -> str:
        if record.owner_pid != os.getpid() and not pid_alive(record.owner_pid):
            adopted = replace(record, owner_pid=os.getpid())
            write_record(self.record_path, adopted)
            self._own(adopted, child=None)
            logger.info("embedded_mongo.adopted pid=%s url=%s", record.pid, record.url)
        else:
            logger.info("embedded_mongo.reused pid=%s url=%s", record.pid, record.url)
        return record.url

    def _start_new(self) -> str:
        self.storage_path.mkdir(mode=0o700, exist_ok=True)
        child = launch(
            storage_path=str(self.storage_path),
            log_path=self.log_path,
            host=DEFAULT_HOST,
            executable=self._executable,
            startup_timeout=self.startup_timeout,
        )
        record = ServerRecord(
            pid=child.pid,
            owner_pid=os.getpid(),
            host=child.host,
            port=child.port,
            url=child.url,
            started_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
        try:
            write_record(self.record_path, record)
        except BaseException:
            child.stop()
            raise
        self._own(record, child)
        logger.info("embedded_mongo.started pid=%s url=%s", child.pid, child.url)
        return child.url

    def _own(self, record: ServerRecord, child: LaunchedServer | None) -> None:
        self._owned, self._child = record, child
        # A normal interpreter exit stops the server too; a killed owner leaves it to adoption.
        atexit.register(self.stop)

    def _stop_owned(self, owned: ServerRecord, child: LaunchedServer | None) -> None:
        if child is not None:
            child.stop()
        elif is_secantus_process(owned.pid, str(self.storage_path)) is not False:
            terminate(owned.pid, owned.host, owned.port)
        current = read_record(self.record_path)
        if current is not None and current.names_same_server(owned):
            remove_record(self.record_path)
        logger.info("embedded_mongo.stopped pid=%s", owned.pid)
