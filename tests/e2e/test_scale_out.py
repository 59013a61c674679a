"""CONTRACT.md section 6 with real processes on one machine: one SecantusDB server and one
``redis-server`` (this module's own), two ``eyewear serve`` replicas with their own data dirs and no
keys file, and ``eyewear worker`` processes, all sharing the database, Redis and the job engine.

- a token issued by replica A works on replica B;
- a feed posted to A is ``queued`` (on every replica alike) while no worker runs, then executed by a worker;
- SIGKILL of the worker in the middle of a run: the other worker takes the run over and ends it
  with the counts of an uninterrupted run, every product at version 1 with one history entry;
- SIGTERM of a worker in the middle of a run: it hands the run back and exits 0 within 30 s.

The lease is short here (``EYEWEAR_RUN_LEASE_SECONDS=4``), so that a take-over happens within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pymongo import MongoClient

from adapters.embedded.process import free_port
from adapters.feeds.sample_feed import generate_rows
from domain.identifiers import product_id_for
from tests.e2e.test_cli import run
from tests.support.served import EYEWEAR, Served, serve, served_env
from tests.support.servers import mongo_server, redis_server

INGESTIONS = "/api/v1/ingestions"
LEASE = "4"
ROWS_PER_PRODUCT = 5  # 500 (a batch) is a multiple: no product spans two batches, so each is written once


def feed_rows(products: int) -> list[dict[str, Any]]:
    """Rows of ``products`` styles with exactly ``ROWS_PER_PRODUCT`` variants each."""
    by_product: dict[str, list[dict[str, Any]]] = {}
    for row in generate_rows(styles=products * 5, seed=77):
        by_product.setdefault(product_id_for(str(row["brand"]), str(row["style_id"])), []).append(dict(row))
    chosen = [rows[:ROWS_PER_PRODUCT] for rows in by_product.values() if len(rows) >= ROWS_PER_PRODUCT][:products]
    assert len(chosen) == products, "the sample generator gave too few styles with enough variants"
    return [row for rows in chosen for row in rows]


def ndjson(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row, default=str) + "\n" for row in rows).encode()


@pytest.fixture(scope="module")
def mongo_url() -> Iterator[str]:
    """A SecantusDB server of this module's own: the session's has served every test before, and a
    busier server would make the timings this scenario reports those of the suite, not of the cluster."""
    with mongo_server() as url:
        yield url


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as server:
        yield server.url


@pytest.fixture
def cluster_env(mongo_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    base = served_env(mongo_url, tmp_path / "unused")
    return base | {
        "EYEWEAR_MONGODB_DB": f"eyewear_scale_{uuid.uuid4().hex[:8]}",
        "EYEWEAR_REDIS_URL": redis_url,
        "EYEWEAR_BROKER_URL": redis_url,
        "EYEWEAR_RUN_LEASE_SECONDS": LEASE,
    }


def node_env(cluster_env: dict[str, str], data_dir: Path) -> dict[str, str]:
    return cluster_env | {"EYEWEAR_DATA_DIR": str(data_dir)}


@contextlib.asynccontextmanager
async def worker(env: dict[str, str], *options: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``eyewear worker``, its log (stderr) beside its data dir: ``logs_of`` tells a failure what it did."""
    with worker_log(env).open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *EYEWEAR, "worker", *options, env=env, stdout=subprocess.DEVNULL, stderr=log
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def worker_log(env: dict[str, str]) -> Path:
    return Path(env["EYEWEAR_DATA_DIR"] + ".log")


def logs_of(*envs: dict[str, str], lines: int = 15) -> str:
    """The last lines of each worker's log, the run's events only (for a failure's message)."""
    tails = []
    for log in map(worker_log, envs):
        found = log.read_text(errors="replace").splitlines() if log.exists() else []
        events = [line for line in found if "ingestion." in line or "worker." in line or "Error" in line]
        tails.append(f"{log.name}: " + " | ".join(events[-lines:]))
    return "\n".join(tails)


async def report(http: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    answer = await http.get(f"{INGESTIONS}/{run_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def until(
    check: Callable[[], Awaitable[Any]],
    what: str,
    within: float = 120.0,
    state: Callable[[], Awaitable[Any]] | None = None,
) -> Any:
    """Polls ``check`` until it returns something; on timeout the message carries ``state()``."""
    deadline = time.monotonic() + within
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() >= deadline:
            seen = await state() if state is not None else None
            raise AssertionError(f"{what}: not within {within:.0f} s (last seen: {seen})")
        await asyncio.sleep(0.1)


@pytest.fixture
async def replicas(cluster_env: dict[str, str], tmp_path: Path) -> AsyncIterator[tuple[Served, Served]]:
    async with serve(node_env(cluster_env, tmp_path / "a")) as a, serve(node_env(cluster_env, tmp_path / "b")) as b:
        yield a, b
    mongo: MongoClient[dict[str, Any]] = MongoClient(cluster_env["EYEWEAR_MONGODB_URL"], timeoutMS=60_000)
    mongo.drop_database(cluster_env["EYEWEAR_MONGODB_DB"])
    mongo.close()


def uninterrupted_counts(rows: list[dict[str, Any]], mongo_url: str, tmp_path: Path) -> dict[str, int]:
    """The same feed through ``eyewear ingest`` on a database of its own, without a job engine."""
    feed = tmp_path / "clean.ndjson"
    feed.write_bytes(ndjson(rows))
    env = served_env(mongo_url, tmp_path / "clean")
    done = run(["ingest", str(feed), "--report", str(tmp_path / "clean.json")], env, timeout=600)
    assert done.returncode == 0, done.stderr
    MongoClient(mongo_url, timeoutMS=60_000).drop_database(env["EYEWEAR_MONGODB_DB"])
    return dict(json.loads((tmp_path / "clean.json").read_text())["counts"])


async def test_replicas_and_workers_share_tokens_runs_and_take_over_a_killed_worker(
    replicas: tuple[Served, Served], cluster_env: dict[str, str], tmp_path: Path, mongo_url: str
) -> None:
    a, b = replicas
    token = a.token("admin", subject="scaler")  # signed with A's key, from A's data dir
    headers = {"Authorization": f"Bearer {token}"}
    rows = feed_rows(700)  # 3,500 rows: 7 batches
    expected = uninterrupted_counts(rows, mongo_url, tmp_path)
    async with (
        httpx.AsyncClient(base_url=a.url, headers=headers, timeout=30) as on_a,
        httpx.AsyncClient(base_url=b.url, headers=headers, timeout=30) as on_b,
    ):
        assert (await on_b.get("/api/v1/products")).status_code == 200, "B accepts A's token"
        started = await on_a.post(INGESTIONS, content=ndjson(rows), headers={"Content-Type": "application/x-ndjson"})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        await asyncio.sleep(3)  # no worker yet: nothing takes the run
        assert (await report(on_a, run_id))["status"] == (await report(on_b, run_id))["status"] == "queued"

        async with worker(node_env(cluster_env, tmp_path / "w1")) as first:
            running = await until(
                lambda: _running_with_progress(on_b, run_id), "a worker took the run and committed a batch"
            )
            assert running["counts"]["rows"] < len(rows), "the run ended before the worker could be killed"
            async with worker(node_env(cluster_env, tmp_path / "w2")) as second:
                first.send_signal(signal.SIGKILL)
                killed_at = time.monotonic()
                await first.wait()
                taken = await until(lambda: _owned_by_other(on_a, run_id, first.pid), "the other worker took over")
                take_over = time.monotonic() - killed_at
                done = await until(
                    lambda: _finished(on_b, run_id), "the run finished", 300, lambda: report(on_b, run_id)
                )
                finished_after = time.monotonic() - killed_at
                assert second.returncode is None
        print(
            f"take-over after SIGKILL: {take_over:.1f} s (running again on pid {taken['owner']}),"
            f" run finished {finished_after:.1f} s after the kill; counts {done['counts']}"
        )
        assert done["status"] == "succeeded", done["reason"]
        assert done["counts"] == expected
        assert done["validation"]["passed"]
        database = MongoClient(mongo_url, timeoutMS=60_000)[cluster_env["EYEWEAR_MONGODB_DB"]]
        versions = {doc["version"] for doc in database.products.find({}, {"version": 1})}
        assert versions == {1}, "every product written once"
        entries = database.product_history.count_documents({"source": f"ingestion:{run_id}"})
        assert entries == len(rows) // ROWS_PER_PRODUCT
        assert database.ingestion_checkpoints.count_documents({"run_id": run_id}) == 0
        assert database["feeds.files"].count_documents({"filename": run_id}) == 0, "the feed body is gone"


async def _running_with_progress(http: httpx.AsyncClient, run_id: str) -> dict[str, Any] | None:
    found = await report(http, run_id)
    return found if found["status"] == "running" and found["counts"]["rows"] > 0 else None


async def _owned_by_other(http: httpx.AsyncClient, run_id: str, dead_pid: int) -> dict[str, Any] | None:
    database_view = await report(http, run_id)
    if database_view["status"] == "succeeded":
        return {"owner": "(finished)"}
    owner = database_view.get("executor")
    if database_view["status"] == "running" and owner and f":{dead_pid}:" not in owner:
        return {"owner": owner}
    return None


async def _finished(http: httpx.AsyncClient, run_id: str) -> dict[str, Any] | None:
    found = await report(http, run_id)
    return found if found["status"] not in ("queued", "running") else None


async def _with_logs(state: Awaitable[Any], *envs: dict[str, str]) -> str:
    return f"{await state}\n{logs_of(*envs)}"


def _samples(scraped: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
    }


async def _succeeded_runs(metrics: httpx.AsyncClient, expected: float) -> bool:
    counted = _samples((await metrics.get("/metrics")).text)
    return counted.get(("eyewear_ingestion_runs_total", (("status", "succeeded"),)), 0.0) == expected


async def _answers(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/metrics")).status_code == 200
    except httpx.TransportError:  # not listening yet
        return False


async def test_a_worker_stopped_by_sigterm_hands_its_run_back_and_exits_0_within_30_s(
    replicas: tuple[Served, Served], cluster_env: dict[str, str], tmp_path: Path
) -> None:
    a, _ = replicas
    headers = {"Authorization": f"Bearer {a.token('ingestor', subject='stopper')}"}
    rows = feed_rows(3000)  # more than a worker writes in its 15 s grace here, mostly: handed back
    async with httpx.AsyncClient(base_url=a.url, headers=headers, timeout=30) as http:
        started = await http.post(INGESTIONS, content=ndjson(rows), headers={"Content-Type": "application/x-ndjson"})
        run_id = started.json()["run_id"]
        first_env = node_env(cluster_env, tmp_path / "w1")
        async with worker(first_env) as first:
            await until(lambda: _running_with_progress(http, run_id), "the worker took the run")
            first.send_signal(signal.SIGTERM)
            stopping = time.monotonic()
            code = await asyncio.wait_for(first.wait(), 30)
            stopped_in = time.monotonic() - stopping
        print(f"worker stopped by SIGTERM in {stopped_in:.1f} s with code {code}")
        assert code == 0
        state = await report(http, run_id)
        assert state["status"] in ("queued", "succeeded")  # handed back, or finished within the grace
        handed_back = state["status"] == "queued"
        port = free_port()
        w2_env = node_env(cluster_env, tmp_path / "w2")
        async with (
            worker(w2_env, "--metrics-port", str(port)),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as metrics,
        ):
            await until(lambda: _answers(metrics), "the next worker serves its /metrics")
            done = await until(
                lambda: _finished(http, run_id),
                "the next worker finished the run",
                within=300,
                state=lambda: _with_logs(report(http, run_id), first_env, w2_env),
            )
            # The record says finished a moment before its executor counts the run (report_run follows
            # the write): wait for the count the run should leave, then read the scrape once more.
            executed = 1.0 if handed_back else 0.0
            await until(lambda: _succeeded_runs(metrics, executed), "the next worker counted the run", 10)
            counted = _samples((await metrics.get("/metrics")).text)
        print(f"the next worker ended the run {time.monotonic() - stopping:.1f} s after the SIGTERM: {done['counts']}")
        assert done["status"] == "succeeded" and done["counts"]["rows"] == len(rows)
        succeeded = counted.get(("eyewear_ingestion_runs_total", (("status", "succeeded"),)), 0.0)
        created = counted.get(("eyewear_ingestion_rows_total", (("outcome", "created"),)), 0.0)
        assert succeeded == executed  # a worker's /metrics counts the runs it executed
        assert (created > 0) == handed_back
