"""Process faults of a real ``eyewear`` with the embedded database: SIGTERM, and its database killed.

Each test runs the command as a child process with its own data dir (no ``EYEWEAR_MONGODB_URL``),
so ``eyewear`` starts and owns its own ``secantusd-py``, exactly as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from adapters.feeds.render import write_jsonl
from adapters.feeds.sample_feed import generate_rows
from tests.builders import payload
from tests.e2e.test_cli import EYEWEAR, environment, free_port

START_BOUND = 60.0  # seconds for `eyewear serve` to answer ready on a busy machine
RECOVERY_BOUND = 30.0  # seconds from the kill to the API answering 200 again
QUICK = 1.0  # seconds: a 503 for a known outage, where the driver's timeout is 10 s


def embedded_servers(storage_path: Path) -> list[int]:
    """Pids of every `secantusd-py` serving `storage_path`, whoever its parent now is."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if any(b"secantusd-py" in part for part in argv) and str(storage_path).encode() in argv:
                found.append(int(proc.name))
    return found


def record_of(data_dir: Path) -> dict[str, Any]:
    return dict(json.loads((data_dir / "mongo-server.json").read_text()))


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    base: str
    data_dir: Path
    log: Path

    @property
    def storage(self) -> Path:
        return self.data_dir / "mongo"

    def logged(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def leave_nothing_behind(data_dir: Path, *processes: subprocess.Popen[bytes]) -> Iterator[None]:
    """Whatever the test asserted: no `eyewear` nor `secantusd-py` of this test outlives it."""
    try:
        yield
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for pid in embedded_servers(data_dir.resolve() / "mongo"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def token_for(env: dict[str, str]) -> str:
    issued = subprocess.run(
        [*EYEWEAR, "token", "--subject", "ops", "--role", "admin"], env=env, capture_output=True, text=True, check=True
    )
    return issued.stdout.strip()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return environment(EYEWEAR_DATA_DIR=str(tmp_path / "data"), EYEWEAR_LOG_FORMAT="json", EYEWEAR_LOG_LEVEL="INFO")


def start_serve(env: dict[str, str], tmp_path: Path) -> Served:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*EYEWEAR, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=sink
        )
    served = Served(process, f"http://127.0.0.1:{port}", Path(env["EYEWEAR_DATA_DIR"]).resolve(), log)
    deadline = time.monotonic() + START_BOUND
    while True:
        assert process.poll() is None, f"serve exited early:\n{served.logged()[-2000:]}"
        assert time.monotonic() < deadline, "serve did not become ready"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{served.base}/health/ready", timeout=2).json().get("status") == "ok":
                return served
        time.sleep(0.1)


@pytest.fixture
async def served(env: dict[str, str], tmp_path: Path) -> AsyncIterator[tuple[Served, httpx.AsyncClient]]:
    """A real `eyewear serve` on the embedded default and an admin client for it; stopped by SIGTERM."""
    token = token_for(env)
    server = start_serve(env, tmp_path)
    with leave_nothing_behind(server.data_dir, server.process):
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=server.base, headers=headers, timeout=30) as http:
            yield server, http
        server.process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(server.process.wait, 30) == 0
        assert embedded_servers(server.storage) == []


def uncached() -> str:
    """A search no cache has seen: it must ask the database."""
    return f"/api/v1/products?limit=1&brand=b{uuid.uuid4().hex[:12]}"


def assert_problem_503(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert int(answer.headers["retry-after"]) >= 1
    body = answer.json()
    assert (body["status"], body["type"]) == (503, "https://eyewear-catalog.dev/problems/service-unavailable")
    assert body["correlation_id"] == answer.headers["x-request-id"]


# --- item 9: SIGTERM ------------------------------------------------------------------------------


def test_sigterm_stops_serve_and_its_embedded_server(env: dict[str, str], tmp_path: Path) -> None:
    """`docker stop`, systemd and Kubernetes send SIGTERM: exit 0, no `secantusd-py` left, no record."""
    server = start_serve(env, tmp_path)
    with leave_nothing_behind(server.data_dir, server.process):
        record = record_of(server.data_dir)
        assert record["owner_pid"] == server.process.pid
        assert embedded_servers(server.storage) == [record["pid"]]
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(30) == 0, server.logged()[-2000:]
        assert embedded_servers(server.storage) == [], "the embedded server went with its owner"
        assert not (server.data_dir / "mongo-server.json").exists(), "and so did its record"
        assert '"embedded_mongo.stopped' in server.logged()


def test_sigterm_stops_an_ingest_that_owns_the_embedded_server(env: dict[str, str], tmp_path: Path) -> None:
    """Mid-run: exit 143 (128 + SIGTERM, the run did not finish), and the embedded server stopped."""
    feed = tmp_path / "feed.jsonl"
    write_jsonl(generate_rows(styles=500, seed=9), feed)
    data_dir = Path(env["EYEWEAR_DATA_DIR"]).resolve()
    ingest = subprocess.Popen(
        [*EYEWEAR, "ingest", str(feed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    with leave_nothing_behind(data_dir, ingest):
        deadline = time.monotonic() + START_BOUND
        while not (data_dir / "mongo-server.json").exists():
            assert ingest.poll() is None and time.monotonic() < deadline, "the ingest did not start its server"
            time.sleep(0.02)
        with MongoClient[dict[str, Any]](record_of(data_dir)["url"], serverSelectionTimeoutMS=10_000) as client:
            while client.eyewear.products.estimated_document_count() == 0:
                assert ingest.poll() is None, "the ingest ended before it could be interrupted"
                assert time.monotonic() < deadline, "no batch was ever written"
                time.sleep(0.02)
        ingest.send_signal(signal.SIGTERM)
        _, stderr = ingest.communicate(timeout=60)
        assert ingest.returncode == 143, stderr.decode(errors="replace")[-2000:]
        assert b"Traceback" not in stderr
        assert embedded_servers(data_dir / "mongo") == []
        assert not (data_dir / "mongo-server.json").exists()


# --- item 8: the embedded database killed ------------------------------------------------------------


@dataclass
class Answer:
    sent: float
    took: float
    response: httpx.Response


async def watch_outage(http: httpx.AsyncClient, killed_at: float) -> tuple[list[Answer], float]:
    """Calls the API every 50 ms (concurrently: one caught before the supervisor noticed must not
    hide the rest) until a call sent after the first 503 answers 200; returns every answer and the
    seconds from the kill to that 200."""
    answers: list[Answer] = []

    async def call() -> None:
        sent = time.monotonic()
        response = await http.get(uncached())
        answers.append(Answer(sent, time.monotonic() - sent, response))

    def recovered() -> float | None:
        first_503 = min((a.sent for a in answers if a.response.status_code == 503), default=None)
        backs = [a.sent + a.took for a in answers if a.response.status_code == 200 and first_503 and a.sent > first_503]
        return min(backs) - killed_at if backs else None

    calls: list[asyncio.Task[None]] = []
    while (back := recovered()) is None:
        assert time.monotonic() - killed_at < RECOVERY_BOUND, (
            f"no recovery: {[a.response.status_code for a in answers]}"
        )
        live = await http.get("/health/live")
        assert live.status_code == 200, f"a database being restarted is no reason to restart the process: {live.text}"
        calls.append(asyncio.create_task(call()))
        await asyncio.sleep(0.05)
    await asyncio.gather(*calls)
    return answers, back


async def test_a_killed_embedded_database_is_restarted_and_503_answers_meanwhile(
    served: tuple[Served, httpx.AsyncClient],
) -> None:
    server, http = served
    assert (await http.get(uncached())).status_code == 200
    before = record_of(server.data_dir)
    os.kill(before["pid"], signal.SIGKILL)
    answers, recovered = await watch_outage(http, time.monotonic())

    statuses = {a.response.status_code for a in answers}
    assert statuses <= {200, 503}, f"never a 500: {sorted(statuses)}"
    unavailable = [a for a in answers if a.response.status_code == 503]
    assert unavailable, "the outage was seen"
    for answer in unavailable:
        assert_problem_503(answer.response)
    slowest = max(a.took for a in unavailable)
    assert slowest < QUICK, f"a known outage is answered at once, not after the driver's timeout ({slowest:.2f}s)"
    assert recovered < RECOVERY_BOUND
    print(f"kill -9: {len(unavailable)} answers 503, slowest {slowest * 1000:.0f} ms; 200 again {recovered:.2f}s after")

    after = record_of(server.data_dir)
    assert after["pid"] != before["pid"] and (after["url"], after["owner_pid"]) == (before["url"], before["owner_pid"])
    assert embedded_servers(server.storage) == [after["pid"]]
    created = await http.post("/api/v1/products", json=payload(style_id="RB4242"))
    assert created.status_code == 201, created.text
    assert (await http.get(created.headers["location"])).json()["style_id"] == "RB4242"
    log = server.logged()
    assert '"embedded_mongo.died' in log and '"embedded_mongo.restarted' in log


async def test_an_embedded_database_that_cannot_restart_fails_liveness_until_it_can(
    served: tuple[Served, httpx.AsyncClient],
) -> None:
    server, http = served
    away = server.storage.with_name("mongo.away")
    server.storage.rename(away)  # the storage is gone: a restart would be an empty database
    try:
        killed_at = time.monotonic()
        os.kill(record_of(server.data_dir)["pid"], signal.SIGKILL)
        while (live := await http.get("/health/live")).status_code == 200:
            assert time.monotonic() - killed_at < RECOVERY_BOUND, "liveness never failed"
            await asyncio.sleep(0.05)
        failed_after = time.monotonic() - killed_at
        assert live.status_code == 503 and live.json()["status"] == "failing"
        assert "is gone; restart the process" in live.json()["detail"]
        started = time.monotonic()
        assert_problem_503(await http.get(uncached()))
        assert time.monotonic() - started < QUICK
        assert (await http.get("/health/ready")).status_code == 503
        assert not server.storage.exists(), "no empty database took the place of the lost one"
    finally:
        away.rename(server.storage)
    while (await http.get("/health/live")).status_code != 200 or (await http.get(uncached())).status_code != 200:
        assert time.monotonic() - killed_at < 2 * RECOVERY_BOUND, "it did not come back with its storage"
        await asyncio.sleep(0.1)
    print(f"unrecoverable: /health/live failed {failed_after:.2f}s after the kill; live again once the storage was")
    assert '"embedded_mongo.unrecoverable' in server.logged()
