"""The embedded default database: a SecantusDB child process when no MongoDB URL is configured.

Processes that share a data dir share one server (CONTRACT.md section 2). The first starts
it and records it in `mongo-server.json`; the others connect to it and leave it running; the
one that started it stops it when it exits. A record whose server is gone or silent is stale
and replaced; a server whose owner died without stopping it is adopted, so that it is still
stopped by someone. While it runs, a `Supervisor` thread restarts a server that died on the
same port, so that the driver, whose URL was fixed at start, reconnects by itself.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import time
import weakref
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
from adapters.embedded.supervisor import RestartPolicy, ServerHealth, ServerState, Supervisor
from adapters.embedded.termination import STOP_TIMEOUT, is_secantus_process, pid_alive, terminate

__all__ = ["EmbeddedMongo", "EmbeddedServerError", "serving"]

logger = logging.getLogger(__name__)
#: The started servers of this process, so the app can find the one behind its URL (`serving`).
_STARTED: weakref.WeakSet[EmbeddedMongo] = weakref.WeakSet()


def serving(url: str) -> EmbeddedMongo | None:
    """This process's started embedded server behind `url` (its owner first); None for any other URL.

    `eyewear serve` starts the server itself and hands the app only the URL; this is how the
    app still learns the server's health.
    """
    matching = [server for server in list(_STARTED) if server._url == url]
    matching.sort(key=lambda server: not server.owns_server)
    return matching[0] if matching else None


class EmbeddedMongo:
    """Gives the app a MongoDB URL backed by a SecantusDB server on `data_dir/mongo`."""

    #: How long a recorded server may take to answer before it counts as hung; generous,
    #: because a busy server must not be mistaken for a dead one and killed.
    reuse_ping_timeout: float = 3.0
    #: How long a process that did not start the server waits for its live owner to restart it
    #: before it restarts the server itself.
    owner_grace: float = 10.0

    def __init__(
        self,
        data_dir: Path,
        *,
        startup_timeout: float = 30.0,
        executable: str | None = None,
        supervise: bool = True,
        restart_policy: RestartPolicy | None = None,
    ) -> None:
        # Resolved, so every process names the storage path identically in the server's argv.
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.storage_path = self.data_dir / "mongo"
        self.log_path = self.data_dir / "mongo.log"
        self.record_path = self.data_dir / "mongo-server.json"
        self.lock_path = self.data_dir / "mongo-server.lock"
        self.startup_timeout = startup_timeout
        self._executable = executable
        self._supervise = supervise
        self._restart_policy = restart_policy
        self._mutex = threading.Lock()
        self._url: str | None = None
        self._owned: ServerRecord | None = None
        self._child: LaunchedServer | None = None
        #: The server this object uses, owned or not: where a restart must listen again.
        self._joined: ServerRecord | None = None
        self._supervisor: Supervisor | None = None
        self._waiting_since: float | None = None

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

    @property
    def health(self) -> ServerHealth:
        """Running, restarting or failed (restarts keep failing), as the supervisor last saw it."""
        if self._supervisor is not None:
            return self._supervisor.health
        if self._url is None:
            return ServerHealth(ServerState.FAILED, detail="the embedded server is not started")
        return ServerHealth()

    def start(self) -> str:
        """Connect to the data dir's running server, or start one; returns its URL."""
        with self._mutex:
            if self._url is not None:
                return self._url
            self._prepare_data_dir()
            try:
                with exclusive_lock(self.lock_path, timeout=self._lock_timeout):
                    self._url = self._reuse_or_start()
            except TimeoutError as exc:
                raise EmbeddedServerError(f"cannot take the embedded server lock: {exc}") from exc
            if self._supervise:
                self._supervisor = Supervisor(self._probe, self._recover, self._restart_policy)
                self._supervisor.start()
            _STARTED.add(self)
            return self._url

    def stop(self) -> None:
        """Stop the server if this object owns it; otherwise only forget it (others use it)."""
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:  # first, or it would restart what is stopped; outside the
            supervisor.stop(timeout=self._lock_timeout + self.startup_timeout)  # mutex a restart holds
        _STARTED.discard(self)
        with self._mutex:
            owned, child = self._owned, self._child
            self._url = self._owned = self._child = self._joined = None
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

    @property
    def _lock_timeout(self) -> float:
        return self.startup_timeout + 2 * STOP_TIMEOUT

    def _probe(self) -> str | None:
        """Cheap enough for every quarter second: no connection, only the process table."""
        child, joined = self._child, self._joined
        if child is not None:
            code = child.process.poll()
            return None if code is None else f"pid={child.pid} exited with code {code}"
        if joined is not None and not pid_alive(joined.pid):
            return f"pid={joined.pid} is gone"
        return None

    def _recover(self) -> str | None:
        """Under the lock: rejoin the server someone else restarted on our port, or restart it there."""
        with self._mutex:
            joined = self._joined
            if joined is None:
                return None  # stop() won the race: nothing to bring back
            try:
                with exclusive_lock(self.lock_path, timeout=self._lock_timeout):
                    return self._rejoin_or_restart(joined)
            except TimeoutError as exc:
                raise EmbeddedServerError(f"cannot take the embedded server lock: {exc}") from exc

    def _rejoin_or_restart(self, joined: ServerRecord) -> str | None:
        record = read_record(self.record_path)
        if record is not None and self._is_recorded_server(record):
            if (record.host, record.port) != (joined.host, joined.port):
                raise EmbeddedServerError(
                    f"the data dir's server now listens on {record.url}, not {joined.url}; "
                    "this process's clients cannot follow it: restart the process"
                )
            if ping(record.url, timeout=self.reuse_ping_timeout):
                self._waiting_since = None
                self._reuse(record)
                return f"pid={record.pid} url={record.url} (restarted by pid {record.owner_pid})"
            logger.warning("embedded_mongo.hung pid=%s port=%s did not answer; stopping it", record.pid, record.port)
            terminate(record.pid, record.host, record.port)
        elif record is not None and self._owner_restarts_it(record):
            return None
        if not self.storage_path.is_dir():
            # A new, empty database would have none of the validators and indexes that start-up migrated.
            raise EmbeddedServerError(f"the storage path {self.storage_path} is gone; restart the process")
        remove_record(self.record_path)
        self._waiting_since = None
        url = self._start_new(port=joined.port)
        return f"pid={self.server_pid} url={url}"

    def _owner_restarts_it(self, record: ServerRecord) -> bool:
        """Whether to leave the restart to the record's live owner (for `owner_grace` seconds at most)."""
        if record.owner_pid == os.getpid() or not pid_alive(record.owner_pid):
            return False
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
            logger.info("embedded_mongo.waiting_for_owner owner_pid=%s", record.owner_pid)
        return now - self._waiting_since < self.owner_grace

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
        self._joined = record
        if record.owner_pid != os.getpid() and not pid_alive(record.owner_pid):
            adopted = replace(record, owner_pid=os.getpid())
            write_record(self.record_path, adopted)
            self._own(adopted, child=None)
            logger.info("embedded_mongo.adopted pid=%s url=%s", record.pid, record.url)
        else:
            if self._owned is not None:  # after a restart by another process, that process owns it
                self._owned = self._child = None
                atexit.unregister(self.stop)
            logger.info("embedded_mongo.reused pid=%s url=%s", record.pid, record.url)
        return record.url

    def _start_new(self, port: int | None = None) -> str:
        self.storage_path.mkdir(mode=0o700, exist_ok=True)
        child = launch(
            storage_path=str(self.storage_path),
            log_path=self.log_path,
            host=DEFAULT_HOST,
            port=port,
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
        self._owned, self._child, self._joined = record, child, record
        # A normal interpreter exit stops the server too; a killed owner leaves it to adoption.
        atexit.unregister(self.stop)  # once, however often a restart makes this object the owner again
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
