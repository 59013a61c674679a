"""Latency of get-by-SKU: MongoDB directly, through the memory cache and through Redis.

Run from the repository root (it starts throw-away SecantusDB and redis-server processes the way
the test fixtures do, unless URLs are given):

    .venv/bin/python scripts/measure_cache.py [--calls 2000] [--products 200]
        [--mongodb-url URL] [--redis-url URL] [--json FILE]

Each mode first reads every SKU once (cold: misses for the caches), then makes ``--calls``
sequential reads cycling through the SKUs (hot: hits for the caches). Latency is per call,
measured around the repository call, so it includes decoding the cached JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.cache.backend import PREFIX, CacheStore
from adapters.cache.cached_repository import CachedCatalog
from adapters.mongo.client import MongoOptions, create_client
from adapters.mongo.migrations import migrate
from adapters.mongo.product_repository import MongoCatalog
from tests.builders import creation, payload, product, variant
from tests.support.cache import RecordingMetrics
from tests.support.servers import mongo_process, redis_process


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(samples: list[float]) -> dict[str, float]:
    micros = [s * 1e6 for s in samples]
    return {
        "p50_us": round(percentile(micros, 0.50), 1),
        "p99_us": round(percentile(micros, 0.99), 1),
        "mean_us": round(statistics.fmean(micros), 1),
    }


async def timed(repo: Any, skus: list[str], calls: int) -> list[float]:
    samples = []
    for i in range(calls):
        started = time.perf_counter()
        found = await repo.get_by_sku(skus[i % len(skus)])
        samples.append(time.perf_counter() - started)
        assert found is not None
    return samples


async def measure(mongo_url: str, redis_url: str, calls: int, count: int) -> dict[str, Any]:
    client: Any = create_client(mongo_url, MongoOptions(timeout_ms=30_000))
    database = client[f"eyewear_measure_{uuid.uuid4().hex[:8]}"]
    results: dict[str, Any] = {"calls": calls, "products": count}
    try:
        await migrate(database)
        mongo = MongoCatalog(database)
        skus = []
        for i in range(count):
            p = product(payload(f"M{i:04d}", variants=[variant(f"M{i:04d}-A"), variant(f"M{i:04d}-B")]))
            await mongo.add(p, creation(p))
            skus.extend(p.skus)
        skus = skus[: max(1, min(len(skus), calls // 4))]  # a hot set: every SKU read several times
        for mode, url in (("uncached", None), ("memory", None), ("redis", redis_url)):
            metrics = RecordingMetrics()
            store = None
            repo: Any = mongo
            if mode != "uncached":
                store = CacheStore.open(url, metrics)
                await store.init()
                if url:
                    await store.cache.delete_match(PREFIX + "*")
                repo = CachedCatalog(mongo, store)
            cold = await timed(repo, skus, len(skus))
            hot = await timed(repo, skus, calls)
            results[mode] = {
                "cold": summary(cold),
                "hot": summary(hot),
                "hits": metrics.hits,
                "misses": metrics.misses,
                "errors": metrics.errors,
            }
            if store is not None:
                await store.close()
    finally:
        await client.drop_database(database.name)
        await client.close()
    return results


@contextlib.contextmanager
def servers(mongo_url: str | None, redis_url: str | None) -> Iterator[tuple[str, str]]:
    with contextlib.ExitStack() as stack:
        mongo = mongo_url or stack.enter_context(mongo_process()).url
        redis = redis_url or stack.enter_context(redis_process()).url
        yield mongo, redis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--mongodb-url")
    parser.add_argument("--redis-url")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with servers(args.mongodb_url, args.redis_url) as (mongo_url, redis_url):
        results = asyncio.run(measure(mongo_url, redis_url, args.calls, args.products))
    print(f"get_by_sku, {args.calls} sequential calls over {results['products']} products (microseconds)")
    print(f"{'mode':<10} {'hot p50':>9} {'hot p99':>9} {'cold p50':>9} {'cold p99':>9} {'hits':>6} {'misses':>7}")
    for mode in ("uncached", "memory", "redis"):
        r = results[mode]
        print(
            f"{mode:<10} {r['hot']['p50_us']:>9} {r['hot']['p99_us']:>9} {r['cold']['p50_us']:>9} "
            f"{r['cold']['p99_us']:>9} {r['hits']:>6} {r['misses']:>7}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
