"""``ingest.two_workers``: the same feed, as two runs of half the styles each, executed by two
``eyewear worker`` processes, against one worker executing both (ratio = two ÷ one, in seconds from
the submission of both runs to the end of the second; below 1 means the second worker helped).

The runs are accepted the way ``eyewear serve`` accepts them (the container with a job engine: the
feed into GridFS, the run queued, submitted to SAQ); the workers are real processes on the same
server and Redis. The job engine's Redis is the configured one (``EYEWEAR_BROKER_URL``, else
``EYEWEAR_REDIS_URL``), or a throw-away ``redis-server`` when one is on the PATH; without either the
result is left out, and the bench says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import redis

from adapters.feeds.render import write_jsonl
from adapters.feeds.sample_feed import generate_rows
from domain.identifiers import product_id_for
from domain.ingestion import RunStatus
from entrypoints.bench.ingestion import INGESTOR, BenchFailed
from entrypoints.bench.measure import Result, Sizes
from entrypoints.bench.session import Scratch, child_environment, scratch_settings
from entrypoints.container import Container, resolve
from entrypoints.settings import Settings

EYEWEAR = [sys.executable, "-c", "from entrypoints.cli import main; main()"]
#: Longest wait for a worker to start, and for both runs to end.
STARTUP_TIMEOUT = 60.0
RUN_TIMEOUT = 900.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def job_engine_redis(settings: Settings, scratch: Scratch) -> Iterator[str | None]:
    """A Redis for the job engine: the configured one, or a throw-away ``redis-server``, or None."""
    configured = settings.broker_url or scratch.redis_url
    if configured:
        yield configured
        return
    binary = shutil.which("redis-server") or next(
        (path for path in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if Path(path).exists()), None
    )
    if binary is None:
        yield None
        return
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="eyewear-bench-redis-") as work:
        process = subprocess.Popen(  # noqa: S603 - our own argv
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", work],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while True:
                with contextlib.suppress(redis.RedisError):
                    if redis.Redis.from_url(url, socket_timeout=0.5).ping():
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise BenchFailed("the throw-away redis-server did not start")
                time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


def split_feed(workdir: Path, rows: int, seed: int) -> list[Path]:
    """The feed's rows in two files, each with whole styles (no product in both runs)."""
    styles: dict[str, list[dict[str, Any]]] = {}
    for row in generate_rows(styles=rows // 3 + 1, seed=seed):
        styles.setdefault(product_id_for(str(row["brand"]), str(row["style_id"])), []).append(dict(row))
        if sum(len(group) for group in styles.values()) >= rows:
            break
    groups = list(styles.values())
    halves = [groups[: len(groups) // 2], groups[len(groups) // 2 :]]
    paths = []
    for n, half in enumerate(halves):
        path = workdir / f"half-{n}.jsonl"
        write_jsonl((row for group in half for row in group), path)
        paths.append(path)
    return paths


@contextlib.asynccontextmanager
async def workers(count: int, env: dict[str, str], workdir: Path) -> AsyncIterator[None]:
    """``count`` worker processes, each with a data dir of its own, until the block ends (SIGTERM)."""
    started: list[asyncio.subprocess.Process] = []
    try:
        for n in range(count):
            data_dir = workdir / f"worker-{count}-{n}"
            process = await asyncio.create_subprocess_exec(
                *EYEWEAR,
                "worker",
                env={**env, "EYEWEAR_DATA_DIR": str(data_dir), "EYEWEAR_LOG_LEVEL": "INFO"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            started.append(process)
            await _started(process)
        yield
    finally:
        for process in started:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                await asyncio.wait_for(process.wait(), 40)
            except TimeoutError:
                process.kill()
                await process.wait()


_DRAINS: set[asyncio.Task[None]] = set()


async def _started(process: asyncio.subprocess.Process) -> None:
    """Waits for the worker's ``worker.started`` line (it migrated, and consumes)."""
    assert process.stderr is not None
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        line = await asyncio.wait_for(process.stderr.readline(), STARTUP_TIMEOUT)
        if not line:
            raise BenchFailed("a worker exited before it started")
        if b"worker.started" in line:
            drain = asyncio.ensure_future(_drain(process))  # its later lines must not fill the pipe
            _DRAINS.add(drain)
            drain.add_done_callback(_DRAINS.discard)
            return
    raise BenchFailed("a worker did not start")


async def _drain(process: asyncio.subprocess.Process) -> None:
    assert process.stderr is not None
    while await process.stderr.readline():
        pass


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as feed:
        while chunk := feed.read(1 << 20):
            yield chunk


async def timed_runs(settings: Settings, feeds: list[Path], count: int, env: dict[str, str], workdir: Path) -> float:
    """Seconds from submitting the feeds' runs to the end of the last, with ``count`` workers."""
    container = Container(settings=settings)
    await container.init_resources()  # type: ignore[misc]
    try:
        runs = await resolve(container.runs)
        ingest = await resolve(container.ingest)
        database = await resolve(container.database)
        from adapters.mongo.migrations import migrate

        await migrate(database)
        queued = []
        for feed in feeds:
            run = await ingest.admit(feed.name, INGESTOR)
            await runs.feeds.put(run.run_id, ".jsonl", _chunks(feed))
            queued.append(await ingest.enqueue(run, hold=False))
        async with workers(count, env, workdir):
            started = time.monotonic()
            for run in queued:
                await runs.queue.submit(run.run_id)
            while True:
                states = [await runs.leases.runs.get(run.run_id) for run in queued]
                if all(state is not None and state.status.finished for state in states):
                    break
                if time.monotonic() - started > RUN_TIMEOUT:
                    raise BenchFailed(f"{count} worker(s) did not finish the runs in {RUN_TIMEOUT:.0f} s")
                await asyncio.sleep(0.05)
            took = time.monotonic() - started
        failed = [state for state in states if state is not None and state.status is not RunStatus.SUCCEEDED]
        if failed:
            raise BenchFailed(f"a run of the two-worker measurement ended {failed[0].status.value}: {failed[0].reason}")
        return took
    finally:
        await container.shutdown_resources()  # type: ignore[misc]


def worker_results(settings: Settings, scratch: Scratch, workdir: Path, sizes: Sizes) -> list[Result]:
    """Synchronous, with no bench connection open; empty when there is no Redis for the job engine."""
    with job_engine_redis(settings, scratch) as redis_url:
        if redis_url is None:
            print("bench: ingest.two_workers left out: no EYEWEAR_BROKER_URL and no redis-server", file=sys.stderr)
            return []
        feeds = split_feed(workdir, sizes.rows, 77)
        seconds: dict[int, float] = {}
        for count in (1, 2):
            database = scratch.database(f"w{count}")
            run_settings = scratch_settings(settings, scratch).model_copy(
                update={"mongodb_db": database, "broker_url": redis_url, "data_dir": workdir / f"accept-{count}"}
            )
            env = child_environment(run_settings, database) | {"EYEWEAR_BROKER_URL": redis_url}
            seconds[count] = asyncio.run(timed_runs(run_settings, feeds, count, env, workdir))
    rows = sum(len(feed.read_text().splitlines()) for feed in feeds)
    return [
        Result(
            "ingest.two_workers",
            seconds[2],
            seconds[1],
            "s",
            f"{rows:,} rows as two runs: two workers {rows / seconds[2]:,.0f} rows/s, one worker"
            f" {rows / seconds[1]:,.0f} rows/s (one server and the machine's cores shared by all: docs/performance.md)",
        )
    ]
