"""``eyewear migrate --check``: would any query the code sends scan a whole collection?

The configured database is only read (its index definitions); the workload runs in a scratch
database ``<db>_plancheck`` on the same server that gets exactly those indexes, and is dropped
afterwards. So the answer is about the indexes that really exist (a dropped or never-migrated
index is caught) while the data is left alone.
"""

from __future__ import annotations

from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo.client import MongoOptions, create_client
from adapters.mongo.documents import DOCUMENT_MODELS
from adapters.mongo.plan_workload import drive_repositories
from adapters.mongo.query_analyzer import PlanReport, QueryPlanAnalyzer

SCRATCH_SUFFIX = "_plancheck"
#: MongoDB allows 63 bytes in a database name (on most platforms); the suffix must fit.
_MAX_DB_NAME = 63
#: Index options that belong to the index itself, not to how it was listed.
_LISTING_ONLY = frozenset({"v", "key", "ns"})


def scratch_name(database: str) -> str:
    return database[: _MAX_DB_NAME - len(SCRATCH_SUFFIX)] + SCRATCH_SUFFIX


async def copy_indexes(source: AsyncDatabase[Any], target: AsyncDatabase[Any]) -> list[str]:
    """Creates in ``target`` the collections of the code with the indexes ``source`` has; returns them."""
    copied: list[str] = []
    for model in DOCUMENT_MODELS:
        name = model.Settings.name  # type: ignore[attr-defined]
        await target.create_collection(name)
        indexes = [index async for index in await source[name].list_indexes()]
        models = [
            IndexModel(list(index["key"].items()), **{k: v for k, v in index.items() if k not in _LISTING_ONLY})
            for index in indexes
            if index["name"] != "_id_"
        ]
        if models:
            await target[name].create_indexes(models)
        copied += [f"{name}.{index['name']}" for index in indexes if index["name"] != "_id_"]
    return copied


async def check_query_plans(url: str, options: MongoOptions, database: str) -> PlanReport:
    """Runs the representative workload on a scratch copy of ``database``'s indexes and explains it."""
    analyzer = QueryPlanAnalyzer()
    client: Any = create_client(url, options, listeners=[analyzer])
    scratch = client[scratch_name(database)]
    try:
        await client.drop_database(scratch.name)  # a leftover of an interrupted check
        await copy_indexes(client[database], scratch)
        await drive_repositories(scratch)
        return await analyzer.analyze(scratch)
    finally:
        await client.drop_database(scratch.name)
        await client.close()
