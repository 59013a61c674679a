"""Run owners as processes of this host: ``host:pid:start``, where ``start`` is the process's start
time (clock ticks since boot, ``/proc/<pid>/stat``), so that a pid the kernel gave to another
process since is not mistaken for the owner.

Only an owner of this host can be known to be gone (``gone``); one of another host may be alive,
and its lease decides.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from adapters.embedded.termination import pid_alive
from domain.ports import Executors

_UNKNOWN_START = "?"


def _stat(pid: int) -> tuple[str, str] | None:
    """The state and the start time of ``pid``, or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:  # no procfs here (not Linux): nothing to tell the start time by
        return ("R", _UNKNOWN_START) if pid_alive(pid) else None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": comm may hold spaces
    return fields[0], fields[19]


class LocalExecutors(Executors):
    def __init__(self, host: str | None = None) -> None:
        self.host = host or socket.gethostname()
        stat = _stat(os.getpid())
        self._me = f"{self.host}:{os.getpid()}:{stat[1] if stat else _UNKNOWN_START}"

    def current(self) -> str:
        return self._me

    def gone(self, owner: str) -> bool:
        parts = owner.rsplit(":", 2)
        if len(parts) != 3 or parts[0] != self.host or not parts[1].isdigit():
            return False
        _, pid, start = parts
        stat = _stat(int(pid))
        if stat is None:
            return True
        state, started = stat
        if state in ("Z", "X"):  # exited, not yet reaped by its parent
            return True
        return start != _UNKNOWN_START and started != _UNKNOWN_START and started != start
