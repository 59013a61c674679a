"""``eyewear bench --quick`` as users run it, on tiny sizes: every result, the environment, the plot,
and nothing left behind on the servers. No timing is asserted: the bench measures, it never fails
on a number."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from pymongo import MongoClient

from adapters.cache.backend import PREFIX
from entrypoints.bench.session import bench_redis_url

EYEWEAR = [sys.executable, "-c", "from entrypoints.cli import main; main()"]
#: The names CONTRACT.md's performance issue fixes.
REQUIRED = (
    "ingest.cold",
    "ingest.unchanged",
    "ingest.memory_growth",
    "read.sku.uncached",
    "read.sku.cached",
    "search.filtered",
    "auth.verify",
    "http.get_sku",
)
#: Results the bench adds beyond those: the cached read with the database audit sink (ADR 0019), and
#: two workers against one on the same feed (ADR 0020; the test machine has ``redis-server``).
VARIANTS = ("read.sku.cached.audit_database", "ingest.two_workers")
VERSIONS = ("python", "pymongo", "secantusdb", "beanie", "cashews", "joserfc", "fastapi", "uvicorn")


def environment(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EYEWEAR_")}
    env.update(values)
    return env


@pytest.mark.parametrize("cache", ["memory", "redis"])
def test_the_quick_bench_reports_every_result_and_leaves_nothing_behind(
    cache: str, mongo_url: str, redis_url: str, tmp_path: Path
) -> None:
    out, plot = tmp_path / "out.json", tmp_path / "cost.png"
    env = environment(
        EYEWEAR_MONGODB_URL=mongo_url,
        EYEWEAR_MONGODB_DB="benchsmoke",
        EYEWEAR_DATA_DIR=str(tmp_path / "data"),
        **({"EYEWEAR_REDIS_URL": redis_url} if cache == "redis" else {}),
    )
    command = ["bench", "--quick", "--json", str(out), "--plot", str(plot), "--rows", "120", "--samples", "30"]
    result = subprocess.run([*EYEWEAR, *command], env=env, capture_output=True, text=True, timeout=300, check=False)

    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    results = {r["name"]: r for r in report["results"]}
    assert set(REQUIRED) | set(VARIANTS) <= set(results)
    names = [r["name"] for r in report["results"]]
    assert names.index("read.sku.cached.audit_database") == names.index("read.sku.cached") + 1
    assert "records per insert" in results["read.sku.cached.audit_database"]["detail"]
    for name in REQUIRED + VARIANTS:
        r = results[name]
        assert r["ours"] > 0 and r["baseline"] > 0 and r["ratio"] > 0, r
        assert r["unit"] and r["detail"], r
        assert name in result.stdout  # the table
    env_block = report["environment"]
    assert all(env_block["versions"][name] for name in VERSIONS)
    assert env_block["server"]["kind"] in ("SecantusDB", "MongoDB") and env_block["server"]["version"]
    assert env_block["machine"]["cpu_count"] >= 1 and env_block["machine"]["cpu_model"]
    assert env_block["cache"] == cache
    assert [point["rows"] for point in report["cost_curve"]] == [120, 1200]
    assert plot.read_bytes().startswith(b"\x89PNG")

    scratch = env_block["scratch_database"]
    client: MongoClient[dict[str, object]] = MongoClient(mongo_url)
    try:
        assert not [name for name in client.list_database_names() if name.startswith(scratch)]
    finally:
        client.close()
    if cache == "redis":
        bench_db = redis.Redis.from_url(str(bench_redis_url(redis_url)))
        try:
            assert not list(bench_db.scan_iter(match=PREFIX + "*", count=1000))
        finally:
            bench_db.close()


def test_the_bench_keeps_its_cache_keys_in_another_redis_database() -> None:
    assert bench_redis_url(None) is None
    assert bench_redis_url("redis://127.0.0.1:6379") == "redis://127.0.0.1:6379/15"
    assert bench_redis_url("redis://:pw@cache:6380/15?ssl=true") == "redis://:pw@cache:6380/14?ssl=true"
