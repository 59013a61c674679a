"""``eyewear migrate --check`` as an operator runs it: 0 on the real indexes, 1 when one is missing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import AsyncMongoClient

from tests.e2e.test_cli import environment, run


def on_server(url: str, work: Callable[[Any], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        client: Any = AsyncMongoClient(url)
        try:
            return await work(client)
        finally:
            await client.close()

    return asyncio.run(go())


def test_migrate_check_passes_on_the_real_indexes_and_fails_without_one(mongo_url: str) -> None:
    database = f"check_{uuid.uuid4().hex[:8]}"
    env = environment(EYEWEAR_MONGODB_URL=mongo_url, EYEWEAR_MONGODB_DB=database)
    assert run(["migrate"], env).returncode == 0

    passed = run(["migrate", "--check"], env)
    assert passed.returncode == 0, passed.stderr
    assert "uses an index" in passed.stdout
    assert "COLLSCAN" not in passed.stdout

    on_server(mongo_url, lambda client: client[database].products.drop_index("by_brand"))
    assert f"{database}_plancheck" not in on_server(mongo_url, lambda client: client.list_database_names())
    failed = run(["migrate", "--check"], env)
    assert failed.returncode == 1
    offending = failed.stdout.strip().splitlines()
    assert offending and all(line.startswith("COLLSCAN products aggregate ") for line in offending)
    assert any('"brand_key"' in line for line in offending)
    assert failed.stderr.startswith("eyewear: ") and "would scan a collection" in failed.stderr
    assert "Traceback" not in failed.stderr

    repaired = run(["migrate"], env)
    assert "created index products.by_brand" in repaired.stdout
    assert run(["migrate", "--check"], env).returncode == 0
    on_server(mongo_url, lambda client: client.drop_database(database))


def test_migrate_check_on_an_unmigrated_database_fails_and_changes_nothing(mongo_url: str) -> None:
    database = f"bare_{uuid.uuid4().hex[:8]}"
    env = environment(EYEWEAR_MONGODB_URL=mongo_url, EYEWEAR_MONGODB_DB=database)
    result = run(["migrate", "--check"], env)
    assert result.returncode == 1
    assert "run `eyewear migrate`" in result.stderr
    assert "COLLSCAN" in result.stdout
    names = on_server(mongo_url, lambda client: client.list_database_names())
    assert database not in names and f"{database}_plancheck" not in names
