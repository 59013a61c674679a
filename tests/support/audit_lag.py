"""How the two audit sinks behave under load, on a throw-away SecantusDB (or ``--url``): a measurement
that docs/performance.md and ADR 0019 quote, not a test (no timing is asserted anywhere).

``python -m tests.support.audit_lag`` prints, for the database sink, the decisions per second, the
inserts (counted by a ``CommandListener``) and the latencies of N concurrent callers; for the
journal, how long a decision takes to be seen by another process (a reader child polling MongoDB
every 2 ms) with no load, with ~1 000 decisions/s offered, and with a tight loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient, monitoring

from adapters.files.audit_journal import JournaledAuditLog
from adapters.mongo.audit_log import MongoAuditLog
from adapters.mongo.group_commit_audit import GroupCommitAuditLog
from adapters.mongo.migrations import migrate
from domain.audit import AuditRecord
from tests.contract.test_audit_log import record
from tests.support.servers import mongo_process

READER = """
import json, sys, time
from pymongo import MongoClient
log = MongoClient(sys.argv[1])[sys.argv[2]]["audit_log"]
seen, deadline = {}, time.time() + float(sys.argv[3])
while time.time() < deadline:
    for doc in log.find({"actor": "marker", "_id": {"$nin": list(seen)}}, {"_id": 1}):
        seen[doc["_id"]] = time.time()
    time.sleep(0.002)
print(json.dumps(seen))
"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def decision(actor: str = "load") -> AuditRecord:
    return replace(record(0, actor=actor), record_id=f"{actor}-{os.urandom(8).hex()}")


class InsertCount(monitoring.CommandListener):
    def __init__(self) -> None:
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.count += event.command_name == "insert"

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None: ...

    def failed(self, event: monitoring.CommandFailedEvent) -> None: ...


async def database_sink(url: str, db: str, callers: int, seconds: float) -> str:
    inserts = InsertCount()
    client: Any = AsyncMongoClient(url, tz_aware=True, event_listeners=[inserts])
    sink = GroupCommitAuditLog(MongoAuditLog(client[db]))
    await sink.start()
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    async def caller() -> None:
        while time.monotonic() < stop:
            began = time.perf_counter()
            await sink.append(decision())
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    took = time.perf_counter() - began
    await sink.close()
    await client.close()
    n = len(latencies)
    return (
        f"database sink, {callers:>3} callers: {n:>6,} decisions in {took:.1f} s ({n / took:,.0f}/s),"
        f" {inserts.count:,} inserts ({n / max(1, inserts.count):.1f} per insert), latency p50"
        f" {percentile(latencies, 0.5) * 1e3:.2f} ms, p99 {percentile(latencies, 0.99) * 1e3:.2f} ms"
    )


async def journal(url: str, db: str, label: str, rate: float | None, seconds: float, directory: Path) -> str:
    """A marker decision every 100 ms beside a load of ``rate`` decisions/s (0: none; None: a tight loop)."""
    client: Any = AsyncMongoClient(url, tz_aware=True)
    sink = JournaledAuditLog(MongoAuditLog(client[db]), directory / label)
    await sink.start()
    reader = await asyncio.create_subprocess_exec(
        sys.executable, "-c", READER, url, db, str(seconds + 3), stdout=asyncio.subprocess.PIPE
    )
    await asyncio.sleep(0.5)
    appended: dict[str, float] = {}
    stop = time.monotonic() + seconds

    async def load() -> None:
        n = 0
        while time.monotonic() < stop:
            if rate == 0:
                await asyncio.sleep(0.05)
                continue
            await sink.append(decision())
            n += 1
            if rate is not None:
                await asyncio.sleep(1 / rate)
            elif n % 50 == 0:
                await asyncio.sleep(0)  # a tight loop that lets the shipper run now and then

    async def markers() -> None:
        while time.monotonic() < stop:
            marker = decision("marker")
            await sink.append(marker)
            appended[marker.record_id] = time.time()
            await asyncio.sleep(0.1)

    await asyncio.gather(load(), markers())
    out, _ = await reader.communicate()
    seen = json.loads(out)
    lags = [seen[key] - at for key, at in appended.items() if key in seen]
    pending = sink.pending_bytes
    with contextlib.suppress(Exception):
        await asyncio.wait_for(sink.close(), 5)  # a backlog may take far longer to ship: left behind
    await client.close()
    shown = (
        f"lag p50 {percentile(lags, 0.5) * 1e3:,.0f} ms, p99 {percentile(lags, 0.99) * 1e3:,.0f} ms,"
        f" max {max(lags) * 1e3:,.0f} ms"
        if lags
        else "no marker seen"
    )
    return (
        f"journal, {label}: {len(appended)} markers, {len(appended) - len(lags)} not seen 3 s after the"
        f" load ended; {shown}; {pending:,} bytes not shipped when the load ended"
    )


@contextlib.contextmanager
def server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with mongo_process() as process:
        yield process.url


async def main(url: str, callers: list[int]) -> None:
    db = f"audit_lag_{os.urandom(4).hex()}"
    admin: Any = AsyncMongoClient(url)
    await migrate(admin[db])
    try:
        for n in callers:
            print(await database_sink(url, db, n, 3.0), flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            for label, rate, seconds in (("no load", 0, 5.0), ("~1000/s", 1000, 5.0), ("tight loop", None, 8.0)):
                print(await journal(url, db, label, rate, seconds, Path(tmp)), flush=True)
    finally:
        await admin.drop_database(db)
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a MongoDB URL (default: a throw-away SecantusDB process)")
    parser.add_argument("--callers", default="1,8,32,128", help="concurrent callers of the database sink")
    args = parser.parse_args()
    with server(args.url) as address:
        asyncio.run(main(address, [int(n) for n in args.callers.split(",") if n]))
