"""The embedded default database: real SecantusDB processes shared through the data dir."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pymongo import MongoClient

from adapters.embedded import EmbeddedMongo, EmbeddedServerError
from adapters.embedded.process import free_port, ping
from tests.support.servers import mongo_process, mongo_server, redis_process, redis_server


def answers(url: str) -> bool:
    return ping(url, timeout=1.0)


def test_start_share_and_stop(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    owner = EmbeddedMongo(data_dir)
    url = owner.start()
    try:
        assert answers(url)
        assert owner.owns_server
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        record_path = data_dir / "mongo-server.json"
        assert stat.S_IMODE(record_path.stat().st_mode) == 0o600
        record = json.loads(record_path.read_text())
        assert (record["url"], record["owner_pid"]) == (url, os.getpid())

        guest = EmbeddedMongo(data_dir)
        assert guest.start() == url
        assert not guest.owns_server
        assert guest.server_pid == owner.server_pid == record["pid"]
        guest.stop()
        assert answers(url), "a process that did not start the server leaves it running"
    finally:
        owner.stop()
    assert not answers(url)
    assert not (data_dir / "mongo-server.json").exists()


def test_data_survives_a_restart(tmp_path: Path) -> None:
    with EmbeddedMongo(tmp_path) as first, MongoClient(first.url) as client:
        client.db.frames.insert_one({"_id": "rb3016", "name": "Clubmaster"})
    with EmbeddedMongo(tmp_path) as second, MongoClient(second.url) as client:
        assert client.db.frames.find_one({"_id": "rb3016"}) == {"_id": "rb3016", "name": "Clubmaster"}


def test_a_stale_record_is_replaced(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    port = free_port()
    stale = {
        "pid": int(dead.stdout),
        "owner_pid": int(dead.stdout),
        "host": "127.0.0.1",
        "port": port,
        "url": f"mongodb://127.0.0.1:{port}/",
        "started_at": "2026-01-01T00:00:00.000+00:00",
    }
    (tmp_path / "mongo-server.json").write_text(json.dumps(stale))
    with EmbeddedMongo(tmp_path) as server:
        assert server.owns_server
        assert server.url != stale["url"]
        assert answers(server.url)
        assert json.loads((tmp_path / "mongo-server.json").read_text())["url"] == server.url


def test_an_unreadable_record_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "mongo-server.json").write_text("{not json")
    with EmbeddedMongo(tmp_path) as server:
        assert server.owns_server and answers(server.url)


def test_a_server_whose_owner_was_killed_is_adopted_and_stopped(tmp_path: Path) -> None:
    script = (
        "import sys, time; from adapters.embedded import EmbeddedMongo;"
        f"print(EmbeddedMongo({str(tmp_path)!r}).start(), flush=True); time.sleep(120)"
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    assert owner.stdout is not None
    url = owner.stdout.readline().strip()
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    assert answers(url), "the server outlives its killed owner"
    heir = EmbeddedMongo(tmp_path)
    assert heir.start() == url
    assert heir.owns_server
    heir.stop()
    deadline = time.monotonic() + 10
    while answers(url) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not answers(url)


def test_a_server_that_cannot_start_is_one_clear_error(tmp_path: Path) -> None:
    failing = tmp_path / "secantusd-broken"
    failing.write_text("#!/bin/sh\necho 'WiredTiger: cannot open the storage path' >&2\nexit 3\n")
    failing.chmod(0o755)
    with pytest.raises(EmbeddedServerError) as caught:
        EmbeddedMongo(tmp_path / "data", executable=str(failing), startup_timeout=5).start()
    assert "cannot open the storage path" in str(caught.value)
    assert not (tmp_path / "data" / "mongo-server.json").exists()


def test_a_missing_url_is_an_error_not_a_guess(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedServerError):
        _ = EmbeddedMongo(tmp_path).url


def test_simultaneous_starts_share_one_server(tmp_path: Path) -> None:
    starters = [EmbeddedMongo(tmp_path) for _ in range(3)]
    barrier = threading.Barrier(len(starters))
    urls: list[str] = []

    def start(embedded: EmbeddedMongo) -> None:
        barrier.wait()
        urls.append(embedded.start())

    threads = [threading.Thread(target=start, args=(embedded,)) for embedded in starters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert len(urls) == 3 and len(set(urls)) == 1
        assert sum(embedded.owns_server for embedded in starters) == 1
    finally:
        for embedded in starters:
            embedded.stop()
    assert not answers(urls[0])


def test_a_killed_server_is_replaced_and_its_data_kept(tmp_path: Path) -> None:
    # j=True: without it SecantusDB acknowledges a write before WiredTiger's log buffer
    # reaches the OS, and a SIGKILL within milliseconds loses it. Unsupervised: the next start
    # must replace the killed server by itself (test_embedded_supervisor.py covers restarts).
    first = EmbeddedMongo(tmp_path, supervise=False)
    with MongoClient(first.start(), serverSelectionTimeoutMS=2000, journal=True) as client:
        client.db.frames.insert_one({"_id": "rb3025", "name": "Aviator"})
    pid = first.server_pid
    assert pid is not None
    assert first.health.available, "unsupervised: always reported running, nobody watches"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while answers(first.url) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (tmp_path / "mongo" / "WiredTiger.lock").exists(), "WiredTiger leaves its lock file behind"
    try:
        with EmbeddedMongo(tmp_path) as second, MongoClient(second.url) as client:
            assert second.owns_server and second.server_pid != pid
            assert client.db.frames.find_one({"_id": "rb3025"}) == {"_id": "rb3025", "name": "Aviator"}
    finally:
        first.stop()
    assert not first.health.live, "a stopped server is no database"


def test_a_hung_server_is_stopped_and_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EmbeddedMongo, "reuse_ping_timeout", 0.5)
    first = EmbeddedMongo(tmp_path)
    first.start()
    hung = first.server_pid
    assert hung is not None
    os.kill(hung, signal.SIGSTOP)
    try:
        with EmbeddedMongo(tmp_path) as second:
            assert second.owns_server and answers(second.url)
            assert first._child is not None and first._child.process.poll() is not None
            deadline = time.monotonic() + 10
            while "now listens on" not in first.health.detail:  # its supervisor cannot follow a new port
                assert time.monotonic() < deadline, first.health
                time.sleep(0.05)
            assert not first.health.available
            first.stop()
            assert answers(second.url), "the first owner's stop leaves the record's new server alone"
            assert json.loads((tmp_path / "mongo-server.json").read_text())["url"] == second.url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(hung, signal.SIGKILL)
        first.stop()


def test_a_record_naming_another_live_process_is_stale_and_that_process_untouched(tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "30"])
    port = free_port()
    try:
        record = {
            "pid": bystander.pid,
            "owner_pid": bystander.pid,
            "host": "127.0.0.1",
            "port": port,
            "url": f"mongodb://127.0.0.1:{port}/",
            "started_at": "2026-01-01T00:00:00.000+00:00",
        }
        (tmp_path / "mongo-server.json").write_text(json.dumps(record))
        with EmbeddedMongo(tmp_path) as server:
            assert server.owns_server and server.server_pid != bystander.pid
        assert bystander.poll() is None, "a pid that is not our server is never signalled"
    finally:
        bystander.kill()
        bystander.wait()


def test_files_in_the_data_dir_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    with EmbeddedMongo(data_dir):
        for name in ("mongo-server.json", "mongo-server.lock", "mongo.log"):
            assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name
        assert stat.S_IMODE((data_dir / "mongo").stat().st_mode) == 0o700


async def test_async_context_manager(tmp_path: Path) -> None:
    async with EmbeddedMongo(tmp_path) as server:
        url = server.url
        assert answers(url)
    assert not answers(url)


def test_the_mongo_test_server_has_test_commands_and_no_record() -> None:
    with mongo_server() as url, MongoClient(url, serverSelectionTimeoutMS=5000) as client:
        client.db.frames.insert_one({"_id": "x"})
        if "EYEWEAR_TEST_MONGODB_URL" not in os.environ:
            reply = client.admin.command("configureFailPoint", "failCommand", mode="off")
            assert reply["ok"] == 1.0


def test_the_mongo_test_process_restarts_with_its_data() -> None:
    with mongo_process(persistent=True) as server:
        assert not list(server.work_dir.glob("mongo-server.json"))
        with MongoClient(server.url, serverSelectionTimeoutMS=5000) as client:
            client.db.frames.insert_one({"_id": "kept"})
        server.stop()
        assert not answers(server.url)
        server.start()
        with MongoClient(server.url, serverSelectionTimeoutMS=5000) as client:
            assert client.db.frames.find_one({"_id": "kept"}) == {"_id": "kept"}


def test_a_killed_redis_test_server_comes_back_on_the_same_url() -> None:
    with redis_process() as server:
        assert redis_command(server.port, "SET", "k", "v") == b"+OK\r\n"
        server.kill()
        assert not server.answers()
        server.start()
        assert redis_command(server.port, "PING") == b"+PONG\r\n"


def redis_command(port: int, *parts: str) -> bytes:
    payload = f"*{len(parts)}\r\n" + "".join(f"${len(p)}\r\n{p}\r\n" for p in parts)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        conn.sendall(payload.encode())
        return conn.recv(64)


def test_the_redis_test_server_is_real_and_restartable() -> None:
    with redis_server() as redis:
        if not hasattr(redis, "port"):
            pytest.fail("this test needs the process-based redis helper (unset EYEWEAR_TEST_REDIS_URL)")
        assert redis_command(redis.port, "SET", "frame", "clubmaster") == b"+OK\r\n"
        assert redis_command(redis.port, "GET", "frame") == b"$10\r\nclubmaster\r\n"
        redis.stop()
        assert not redis.answers()
        redis.start()
        assert redis.answers()
        assert redis_command(redis.port, "GET", "frame") == b"$-1\r\n", "a restarted test server starts empty"
