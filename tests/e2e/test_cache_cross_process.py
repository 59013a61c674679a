"""Two processes, each with its own memory cache: a write by one shows in the other's API within 1 s.

The test runs ``eyewear serve`` as a child process and plays ``eyewear ingest`` itself: it
writes to the same MongoDB database directly, then polls the server's API until the change
shows, and measures how long that took.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.feeds.render import write_jsonl
from adapters.feeds.sample_feed import generate_rows
from adapters.mongo.client import MongoOptions, create_client
from adapters.mongo.product_repository import MongoCatalog
from domain.history import ingestion_source, record_change
from domain.product import Product
from tests.builders import T0, creation, payload, product, variant
from tests.e2e.test_cli import free_port

EYEWEAR = [sys.executable, "-c", "from entrypoints.cli import main; main()"]
PROMISE = 1.0  # CONTRACT.md 4.3: another process's write shows within one second


def served_env(mongo_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EYEWEAR_")}
    db = f"eyewear_xproc_{uuid.uuid4().hex[:8]}"
    return env | {"EYEWEAR_MONGODB_URL": mongo_url, "EYEWEAR_MONGODB_DB": db, "EYEWEAR_DATA_DIR": str(tmp_path)}


@pytest.fixture
def env(mongo_url: str, tmp_path: Path) -> dict[str, str]:
    return served_env(mongo_url, tmp_path)


@pytest.fixture
async def served(mongo_url: str, env: dict[str, str]) -> AsyncIterator[tuple[httpx.AsyncClient, MongoCatalog]]:
    """`eyewear serve` with a memory cache, an admin token for it, and the database it serves."""
    db = env["EYEWEAR_MONGODB_DB"]
    env["EYEWEAR_LOG_LEVEL"] = "WARNING"
    token_command = [*EYEWEAR, "token", "--subject", "cross", "--role", "admin"]
    issued = await asyncio.to_thread(subprocess.run, token_command, env=env, capture_output=True, text=True, check=True)
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        *EYEWEAR, "serve", "--port", str(port), env=env, stdout=subprocess.DEVNULL
    )
    client: Any = create_client(mongo_url, MongoOptions(timeout_ms=30_000))
    headers = {"Authorization": f"Bearer {issued.stdout.strip()}"}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=5) as http:
            deadline = time.monotonic() + 60
            while True:
                assert server.returncode is None, "serve exited early"
                assert time.monotonic() < deadline, "serve did not become ready"
                try:
                    if (await http.get("/health/ready")).json().get("status") == "ok":
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            yield http, MongoCatalog(client[db])
    finally:
        server.send_signal(signal.SIGINT)
        await asyncio.wait_for(server.wait(), 30)
        await client.drop_database(db)
        await client.close()


async def shows(http: httpx.AsyncClient, path: str, check: Any) -> float:
    """Seconds until ``check(json)`` holds for GET ``path``; fails once the promise is broken."""
    started = time.monotonic()
    while True:
        answer = await http.get(path)
        if check(answer):
            return time.monotonic() - started
        assert time.monotonic() - started < PROMISE, f"{path} still stale after {PROMISE}s: {answer.text[:200]}"
        await asyncio.sleep(0.01)


def next_version(current: Product, round_: int) -> Product:
    draft = product(payload(variants=[variant(f"RB3016-R{round_}-51")], name=f"Round {round_}")).draft
    return current.replaced_by(dataclasses.replace(draft), T0 + timedelta(seconds=round_))


async def test_an_ingest_beside_serve_shows_in_the_api_within_a_second(
    served: tuple[httpx.AsyncClient, MongoCatalog],
) -> None:
    http, ingest = served
    current = product()
    await ingest.add(current, creation(current))
    pid = current.product_id
    waits: list[float] = []
    for round_ in range(1, 6):
        for _ in range(3):  # warm the server's cache: product, SKU and search
            assert (await http.get(f"/api/v1/products/{pid}")).json()["version"] == current.version
            assert (await http.get(f"/api/v1/skus/{current.skus[0]}")).status_code == 200
            assert [p["name"] for p in (await http.get("/api/v1/products")).json()["items"]] == [current.name]
        old_sku, changed = current.skus[0], next_version(current, round_)
        await ingest.replace(changed, current.version, record_change(current, changed, "feed", ingestion_source("r")))
        waits.append(
            await shows(http, f"/api/v1/products/{pid}", lambda r, v=changed.version: r.json()["version"] == v)
        )
        waits.append(await shows(http, f"/api/v1/skus/{changed.skus[0]}", lambda r: r.status_code == 200))
        waits.append(await shows(http, f"/api/v1/skus/{old_sku}", lambda r: r.status_code == 404))
        waits.append(
            await shows(
                http, "/api/v1/products", lambda r, n=changed.name: [p["name"] for p in r.json()["items"]] == [n]
            )
        )
        current = changed
    metrics = (await http.get("/metrics")).text
    hits = next(line for line in metrics.splitlines() if line.startswith('eyewear_cache_requests_total{result="hit"}'))
    assert float(hits.split()[-1]) > 0, "the server answered from its cache, not around it"
    print(f"cross-process freshness: max {max(waits) * 1000:.0f} ms over {len(waits)} reads")
    assert max(waits) < PROMISE


async def test_eyewear_ingest_and_rollback_beside_serve_show_in_the_api_within_a_second(
    served: tuple[httpx.AsyncClient, MongoCatalog], env: dict[str, str], tmp_path: Path
) -> None:
    """The real commands, as separate processes: their writes reach the server's cache through MongoDB."""
    http, _ = served
    rows = list(generate_rows(styles=2, seed=4))
    sku = str(rows[0]["sku"])
    write_jsonl(rows, tmp_path / "first.jsonl")
    write_jsonl([{**rows[0], "price": "1.50"}], tmp_path / "cheaper.jsonl")

    async def eyewear(*args: str) -> str:
        done = await asyncio.to_thread(subprocess.run, [*EYEWEAR, *args], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def prices(answer: httpx.Response) -> set[str]:
        return {v["price"]["amount"] for v in answer.json()["variants"] if v["sku"] == sku}

    await eyewear("ingest", str(tmp_path / "first.jsonl"))
    original = prices(await http.get(f"/api/v1/skus/{sku}"))
    for _ in range(3):  # cached now
        assert prices(await http.get(f"/api/v1/skus/{sku}")) == original
    run_id = (await eyewear("ingest", str(tmp_path / "cheaper.jsonl"))).split()[1].rstrip(":")
    waits = [await shows(http, f"/api/v1/skus/{sku}", lambda r: prices(r) == {"1.50"})]
    await eyewear("rollback", run_id)
    waits.append(await shows(http, f"/api/v1/skus/{sku}", lambda r: prices(r) == original))
    assert max(waits) < PROMISE
