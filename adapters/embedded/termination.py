"""Stopping a server process safely: the right process, the right thread, bounded waits."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

EXECUTABLE_NAME = "secantusd-py"
STOP_TIMEOUT = 10.0


def pid_alive(pid: int) -> bool:
    """Whether `pid` is a live process; a zombie (exited, not yet reaped) counts as dead."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def is_secantus_process(pid: int, storage_path: str) -> bool | None:
    """Whether `pid` runs a server on `storage_path`: guards against signalling a reused pid.

    None where /proc cannot tell (not Linux), so callers fall back on liveness alone.
    """
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False if Path("/proc/self/cmdline").exists() else None
    except OSError:
        return None
    argv = [part.decode(errors="replace") for part in raw.split(b"\0")]
    return any(EXECUTABLE_NAME in part for part in argv) and storage_path in argv


def terminate(
    pid: int,
    host: str,
    port: int,
    *,
    timeout: float = STOP_TIMEOUT,
    child: subprocess.Popen[bytes] | None = None,
) -> None:
    """Stop a server: SIGTERM, wait up to `timeout` seconds, then SIGKILL.

    The SIGTERM goes to the server's main thread (see `_signal_main_thread`). SecantusDB then
    closes its listening socket, but its accept thread stays blocked until a connection comes
    and the server waits 2 s for it; a throw-away connection wakes it at once. A SIGCONT first
    lets a stopped (SIGSTOP) server act on the SIGTERM.
    """
    if _exited(pid, child):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)
        _signal_main_thread(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _exited(pid, child):
            return
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            pass
        time.sleep(0.05)
    logger.warning("embedded_mongo.kill pid=%s did not stop in %ss, sending SIGKILL", pid, timeout)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while not _exited(pid, child) and time.monotonic() < deadline:
        time.sleep(0.05)


def _signal_main_thread(pid: int, signum: signal.Signals) -> None:
    """Send `signum` to the main thread of `pid`, not to the process as a whole.

    Python runs signal handlers in the main thread only. A process-wide signal may be taken
    by any of SecantusDB's (many, partly native) threads, and then its main thread, blocked in
    `Event.wait()`, never wakes to run the SIGTERM handler: seen as a server ignoring SIGTERM
    now and then. Linux's `tgkill` aims at the main thread (its tid is the pid).
    """
    tgkill = _libc_tgkill()
    if tgkill is not None and tgkill(pid, pid, int(signum)) == 0:
        return
    os.kill(pid, signum)


@functools.cache
def _libc_tgkill() -> Callable[[int, int, int], int] | None:
    try:
        func: Callable[[int, int, int], int] = ctypes.CDLL(None, use_errno=True).tgkill
    except (OSError, AttributeError):
        return None
    return func


def _exited(pid: int, child: subprocess.Popen[bytes] | None) -> bool:
    if child is not None:
        return child.poll() is not None
    return not pid_alive(pid)
