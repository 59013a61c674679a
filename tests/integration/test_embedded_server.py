"""The embedded default database: real SecantusDB processes shared through the data dir."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pymongo import MongoClient

from adapters.embedded import EmbeddedMongo, EmbeddedServerError
from adapters.embedded.process import free_port, ping
from tests.support.servers import redis_server


def answers(url: str) -> bool:
    return ping(url, timeout=2.0)


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
