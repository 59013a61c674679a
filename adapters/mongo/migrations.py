"""``eyewear migrate``: collections, ``$jsonSchema`` validators and indexes, idempotently.

Each step compares what exists with what the document models declare and reports only what it
changed, so a second run prints nothing to do.
"""

from __future__ import annotations

from typing import Any

from beanie import Document, init_beanie
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo.documents import DOCUMENT_MODELS, BrandDocument, ProductDocument
from adapters.mongo.gridfs_feeds import ensure_feed_indexes
from adapters.mongo.ingestion_documents import IngestionRunDocument
from adapters.mongo.ingestion_runs import holder_of
from adapters.mongo.schema import validator_for
from domain.ingestion import RunStatus
from domain.rbac import brand_key


async def _ensure_collection(database: AsyncDatabase[Any], model: type[Document]) -> list[str]:
    name = model.Settings.name  # type: ignore[attr-defined]
    validator = validator_for(model)
    existing = {info["name"]: info async for info in await database.list_collections()}
    if name not in existing:
        await database.create_collection(name, validator=validator, validationLevel="strict")
        return [f"created collection {name} with its $jsonSchema validator"]
    current = existing[name].get("options", {}).get("validator")
    if current != validator:
        await database.command("collMod", name, validator=validator, validationLevel="strict")
        return [f"updated the $jsonSchema validator of {name}"]
    return []


async def _ensure_indexes(database: AsyncDatabase[Any], model: type[Document]) -> list[str]:
    name = model.Settings.name  # type: ignore[attr-defined]
    collection = database[name]
    existing = {index["name"]: index async for index in await collection.list_indexes()}
    changes: list[str] = []
    for index in model.Settings.indexes:  # type: ignore[attr-defined]
        spec = index.document
        current = existing.get(spec["name"])
        if (
            current is not None
            and dict(current["key"]) == dict(spec["key"])
            and bool(current.get("unique")) == bool(spec.get("unique"))
        ):
            continue
        if current is not None:
            await collection.drop_index(spec["name"])
        await collection.create_indexes([index])
        changes.append(f"created index {name}.{spec['name']}")
    return changes


async def _backfill_run_leases(database: AsyncDatabase[Any]) -> list[str]:
    """Runs recorded before leases get the fields their queries need (``finished``, ``holder``); a
    run left ``running`` then has no owner, and is recorded interrupted by the next process that looks."""
    runs = database[IngestionRunDocument.Settings.name]
    changed = 0
    for status in RunStatus:
        legacy = {"kind": "run", "status": status.value, "finished": {"$exists": False}}
        fields = {"finished": status.finished, "holder": holder_of(status, None)}
        changed += (await runs.update_many(legacy, {"$set": fields})).modified_count
    return [f"recorded the lease fields of {changed} earlier ingestion run(s)"] if changed else []


async def _seed_brands(database: AsyncDatabase[Any]) -> list[str]:
    """A catalog from before ``BrandNames``: each brand's first spelling is that of its oldest
    product (products keep theirs until they are next written)."""
    brands = database[BrandDocument.Settings.name]
    if await brands.find_one({}) is not None:
        return []
    oldest: dict[str, tuple[Any, str]] = {}
    async for raw in database[ProductDocument.Settings.name].find({}, {"brand": 1, "created_at": 1}):
        key = brand_key(raw["brand"])
        if key not in oldest or raw["created_at"] < oldest[key][0]:
            oldest[key] = (raw["created_at"], raw["brand"])
    for key, (_, name) in oldest.items():
        await brands.update_one({"_id": key}, {"$setOnInsert": {"name": name}}, upsert=True)
    return [f"recorded the spelling of {len(oldest)} brand(s)"] if oldest else []


async def migrate(database: AsyncDatabase[Any]) -> list[str]:
    """Brings the database to the shape the code expects; returns what it changed."""
    changes: list[str] = []
    for model in DOCUMENT_MODELS:
        changes += await _ensure_collection(database, model)
        changes += await _ensure_indexes(database, model)
    changes += await ensure_feed_indexes(database)
    return changes + await _backfill_run_leases(database) + await _seed_brands(database)


async def bind_documents(database: AsyncDatabase[Any]) -> None:
    """Binds the Beanie documents to this database (indexes are migrate's job, not start-up's)."""
    await init_beanie(database=database, document_models=DOCUMENT_MODELS, skip_indexes=True)
