"""Run owners as processes of this host (``LocalExecutors``) and the feed spool swept by them."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from adapters.files.feed_spool import FeedSpool
from adapters.host.executors import LocalExecutors
from adapters.memory.executors import KnownExecutors


def exited_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_this_process_is_named_by_host_pid_and_start_and_is_not_gone() -> None:
    executors = LocalExecutors(host="here")
    host, pid, start = executors.current().rsplit(":", 2)
    assert (host, pid) == ("here", str(os.getpid())) and start.isdigit()
    assert not executors.gone(executors.current())


def test_an_exited_process_of_this_host_is_gone_and_a_reused_pid_is_told_apart() -> None:
    executors = LocalExecutors(host="here")
    assert executors.gone(f"here:{exited_pid()}:123")
    _, pid, start = executors.current().rsplit(":", 2)
    assert executors.gone(f"here:{pid}:{int(start) + 1}")  # same pid, another start: another process


def test_owners_it_cannot_judge_are_never_gone() -> None:
    executors = LocalExecutors(host="here")
    dead = exited_pid()
    for owner in (f"elsewhere:{dead}:1", "here:not-a-pid:1", "no-colons", "this-process"):
        assert not executors.gone(owner), owner


def test_the_spool_names_files_for_their_run_and_writer_and_sweeps_only_dead_writers(tmp_path: Path) -> None:
    me = KnownExecutors("host:100:7")
    spool = FeedSpool(tmp_path / "spool", me)
    fd, mine = spool.create("run-1", ".ndjson.gz")
    os.close(fd)
    assert mine.name == "run-1--100-7.ndjson.gz"
    assert stat.S_IMODE(mine.stat().st_mode) == 0o600
    dead = tmp_path / "spool" / "run-2--200-9.csv"
    dead.write_text("sku\n")
    stranger = tmp_path / "spool" / "notes.txt"
    stranger.write_text("not ours")
    me.stopped.add("host:200:9")
    assert spool.sweep() == [dead]
    assert sorted(path.name for path in (tmp_path / "spool").iterdir()) == ["notes.txt", mine.name]
    assert FeedSpool(tmp_path / "missing", me).sweep() == []
