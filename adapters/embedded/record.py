"""The shared-server record and the lock that guards it.

Several processes with the same data dir share one embedded server: the first writes where
it listens to `mongo-server.json`; the others read it. WiredTiger lets only one server open a
storage path, so check-and-start runs under an exclusive `flock` on `mongo-server.lock`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerRecord:
    """Who started the shared server (`owner_pid`), its own `pid`, and where it listens."""

    pid: int
    owner_pid: int
    host: str
    port: int
    url: str
    started_at: str

    def names_same_server(self, other: ServerRecord) -> bool:
        return (self.pid, self.port, self.started_at) == (other.pid, other.port, other.started_at)


def read_record(path: Path) -> ServerRecord | None:
    """The record, or None when missing or unreadable (an unreadable one counts as stale)."""
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
        return ServerRecord(
            pid=int(raw["pid"]),
            owner_pid=int(raw["owner_pid"]),
            host=str(raw["host"]),
            port=int(raw["port"]),
            url=str(raw["url"]),
            started_at=str(raw["started_at"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("embedded_mongo.record_unreadable path=%s error=%s", path, exc)
        return None


def write_record(path: Path, record: ServerRecord) -> None:
    """Atomic (temp file + rename) so a reader never sees half a record; mode 0600."""
    fd, tmp = tempfile.mkstemp(prefix=".mongo-server.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(record), out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def remove_record(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


@contextlib.contextmanager
def exclusive_lock(path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive `flock` on `path`, waiting at most `timeout` seconds.

    `flock` belongs to the open file, so it also separates two holders in one process, and
    the kernel drops it when a holder dies: a killed process never leaves the lock taken.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"{path} stayed locked for {timeout:g}s") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
