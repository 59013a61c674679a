"""The embedded server's supervisor with real SecantusDB processes: killed servers come back on their port."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from adapters.embedded import EmbeddedMongo, RestartPolicy, ServerState, serving
from adapters.embedded.process import LaunchedServer, launch, ping
from adapters.embedded.record import exclusive_lock

RECOVERY_BOUND = 30.0  # seconds; a restart takes about one (WiredTiger recovery), more on a busy machine


def wait_for(condition: Callable[[], Any], what: str, timeout: float = RECOVERY_BOUND) -> float:
    """Seconds until `condition()` holds; fails after `timeout`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"not within {timeout:g}s: {what}"
        time.sleep(0.05)
    return time.monotonic() - started


def record_of(data_dir: Path) -> dict[str, Any]:
    return dict(json.loads((data_dir / "mongo-server.json").read_text()))


def patient_client(url: str) -> MongoClient[dict[str, Any]]:
    """Waits out a restart; journaled writes, so a SIGKILL right after one cannot lose it."""
    return MongoClient(url, serverSelectionTimeoutMS=int(RECOVERY_BOUND * 1000), journal=True)


def owner_process(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    """Another process that starts (and supervises) the data dir's server; it stops it when its stdin closes."""
    script = (
        "import sys; from adapters.embedded import EmbeddedMongo;"
        f"server = EmbeddedMongo({str(data_dir)!r}); print(server.start(), flush=True);"
        "sys.stdin.readline(); server.stop()"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    assert owner.stdout is not None
    return owner, owner.stdout.readline().strip()


def test_a_killed_server_is_restarted_on_its_port_and_a_client_reconnects_by_itself(tmp_path: Path) -> None:
    owner = EmbeddedMongo(tmp_path)
    url = owner.start()
    try:
        assert serving(url) is owner and serving("mongodb://127.0.0.1:9/") is None
        assert owner.health.available and owner.health.restarts == 0
        with patient_client(url) as client:
            client.db.frames.insert_one({"_id": "rb3025", "name": "Aviator"})
            killed = record_of(tmp_path)["pid"]
            os.kill(killed, signal.SIGKILL)
            wait_for(lambda: not owner.health.available, "the supervisor saw the server die", timeout=5)
            seconds = wait_for(lambda: owner.health.available, "the server was restarted")
            print(f"embedded server restarted {seconds:.2f}s after it was seen dead")
            # The same client, whose URL was fixed before the kill, finds the data on the new server.
            assert client.db.frames.find_one({"_id": "rb3025"}) == {"_id": "rb3025", "name": "Aviator"}
        record = record_of(tmp_path)
        assert (record["url"], record["owner_pid"]) == (url, os.getpid())
        assert record["pid"] != killed and owner.server_pid == record["pid"] and owner.owns_server
        assert owner.health.restarts == 1 and owner.health.state is ServerState.RUNNING
        assert owner._supervisor is not None
        thread = owner._supervisor._thread
    finally:
        owner.stop()
    assert thread is not None and not thread.is_alive(), "stop() ends the supervisor before the server"
    assert not ping(url, timeout=1.0)
    assert serving(url) is None
    assert not (tmp_path / "mongo-server.json").exists()


def test_a_guest_rejoins_the_server_its_owner_restarted_and_takes_over_when_the_owner_stops(tmp_path: Path) -> None:
    owner, url = owner_process(tmp_path)
    guest = EmbeddedMongo(tmp_path)
    try:
        assert guest.start() == url and not guest.owns_server
        first = record_of(tmp_path)["pid"]
        os.kill(first, signal.SIGKILL)
        # The owner (alive) restarts it on the same port; the guest waits for that, then rejoins.
        wait_for(lambda: guest.health.restarts == 1 and guest.health.available, "the guest rejoined")
        record = record_of(tmp_path)
        assert (record["url"], record["owner_pid"]) == (url, owner.pid) and record["pid"] != first
        assert not guest.owns_server and guest.server_pid == record["pid"]
        assert guest.health.failures == 0, "waiting for the owner is not a failed restart"

        assert owner.stdin is not None
        owner.stdin.close()  # the owner stops the server and exits, as `eyewear serve` does
        assert owner.wait(30) == 0
        wait_for(lambda: guest.health.restarts == 2 and guest.health.available, "the guest restarted the server")
        record = record_of(tmp_path)
        assert (record["url"], record["owner_pid"]) == (url, os.getpid())
        assert guest.owns_server and ping(url, timeout=2.0)
    finally:
        guest.stop()
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    assert not ping(url, timeout=1.0), "the guest that took the server over stops it"


def test_a_guest_restarts_the_server_at_once_when_its_owner_was_killed_too(tmp_path: Path) -> None:
    owner, url = owner_process(tmp_path)
    guest = EmbeddedMongo(tmp_path)
    try:
        guest.start()
        server = record_of(tmp_path)["pid"]
        owner.kill()
        owner.wait()
        os.kill(server, signal.SIGKILL)
        seconds = wait_for(lambda: guest.health.available and guest.owns_server, "the guest restarted it")
        assert seconds < guest.owner_grace, "a dead owner is not waited for"
        assert record_of(tmp_path)["owner_pid"] == os.getpid() and record_of(tmp_path)["url"] == url
    finally:
        guest.stop()
    assert not ping(url, timeout=1.0)


def test_a_server_that_cannot_be_restarted_fails_liveness_until_it_can(tmp_path: Path) -> None:
    policy = RestartPolicy(first_delay=0.1, max_delay=0.3, give_up_after=2)
    owner = EmbeddedMongo(tmp_path, restart_policy=policy)
    url = owner.start()
    storage, away = tmp_path / "mongo", tmp_path / "mongo.away"
    try:
        with patient_client(url) as client:
            client.db.frames.insert_one({"_id": "kept"})
            storage.rename(away)  # the storage is gone (a deleted volume, a wiped data dir)
            os.kill(record_of(tmp_path)["pid"], signal.SIGKILL)
            wait_for(lambda: not owner.health.live, "liveness failed")
            health = owner.health
            assert health.state is ServerState.FAILED and health.failures >= 2
            assert "is gone; restart the process" in health.detail, health.detail
            assert not storage.exists(), "no empty database replaces the lost one"
            away.rename(storage)
            wait_for(lambda: owner.health.available, "the server came back once its storage did")
            assert owner.health.live and owner.health.restarts == 1
            assert client.db.frames.find_one({"_id": "kept"}) == {"_id": "kept"}
    finally:
        if away.exists() and not storage.exists():
            away.rename(storage)
        owner.stop()
    assert not ping(url, timeout=1.0)


def test_a_guest_waits_for_its_live_owner_then_restarts_the_server_itself(tmp_path: Path) -> None:
    """An owner that does not restart its server (an older version, a stuck one) is waited for, briefly."""
    script = (
        "import sys; from adapters.embedded import EmbeddedMongo;"
        f"server = EmbeddedMongo({str(tmp_path)!r}, supervise=False); print(server.start(), flush=True);"
        "sys.stdin.readline(); server.stop()"
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None and owner.stdin is not None
    url = owner.stdout.readline().strip()
    guest = EmbeddedMongo(tmp_path)
    guest.owner_grace = 1.0
    try:
        guest.start()
        os.kill(record_of(tmp_path)["pid"], signal.SIGKILL)
        seconds = wait_for(lambda: guest.owns_server and guest.health.available, "the guest took over")
        assert seconds >= guest.owner_grace, "the live owner was given its chance first"
        assert record_of(tmp_path)["owner_pid"] == os.getpid() and record_of(tmp_path)["url"] == url
        owner.stdin.close()
        assert owner.wait(30) == 0
        assert ping(url, timeout=2.0), "the old owner's stop leaves the server it no longer owns alone"
    finally:
        guest.stop()
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    assert not ping(url, timeout=1.0)


@contextlib.contextmanager
def another_process_restarts_it(owner: EmbeddedMongo) -> Iterator[LaunchedServer]:
    """Plays another process of the data dir that restarts the killed server first (under the lock,
    which keeps `owner`'s supervisor waiting) and records itself (a live `sleep`) as its owner."""
    record = record_of(owner.data_dir)
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        with exclusive_lock(owner.lock_path, timeout=30):
            os.kill(record["pid"], signal.SIGKILL)
            wait_for(lambda: not owner.health.available, "the owner saw its server die", timeout=5)
            server = launch(storage_path=str(owner.storage_path), log_path=owner.log_path, port=record["port"])
            started = {**record, "pid": server.pid, "owner_pid": bystander.pid, "started_at": "later"}
            (owner.data_dir / "mongo-server.json").write_text(json.dumps(started))
        try:
            yield server
        finally:
            server.stop()
    finally:
        bystander.kill()
        bystander.wait()


def test_an_owner_whose_server_another_process_restarted_becomes_its_guest(tmp_path: Path) -> None:
    owner = EmbeddedMongo(tmp_path)
    url = owner.start()
    try:
        with another_process_restarts_it(owner) as server:
            wait_for(lambda: owner.health.available, "the owner rejoined the restarted server")
            assert not owner.owns_server and owner.server_pid == server.pid
            owner.stop()
            assert ping(url, timeout=2.0), "a guest leaves the server to its owner"
    finally:
        owner.stop()


def test_a_restarted_server_that_does_not_answer_is_replaced(tmp_path: Path) -> None:
    owner = EmbeddedMongo(tmp_path)
    owner.reuse_ping_timeout = 0.5
    url = owner.start()
    try:
        with another_process_restarts_it(owner) as hung:
            os.kill(hung.pid, signal.SIGSTOP)  # resumed by the SIGCONT that `terminate` sends first
            wait_for(lambda: owner.health.available and owner.owns_server, "the owner replaced the hung server")
            assert hung.process.poll() is not None, "the hung server was stopped"
            assert owner.server_pid != hung.pid and record_of(tmp_path)["url"] == url
    finally:
        owner.stop()
    assert not ping(url, timeout=1.0)
