"""The server enforces the stored shape too: ``$jsonSchema`` validators and indexes from ``migrate``."""

from __future__ import annotations

from typing import Any

import pytest
from bson import Decimal128
from pymongo.errors import WriteError

from adapters.mongo.documents import ProductDocument
from adapters.mongo.mapping import product_to_bson
from adapters.mongo.migrations import migrate
from adapters.mongo.product_repository import MongoCatalog
from adapters.mongo.schema import validator_for
from tests.builders import product


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("variants", 0, "price"), 163.0),  # a float price: never in storage
        (("version",), 0),
        (("variants", 0, "lens_width_mm"), 99),
        (("status",), None),
        (("unexpected",), "field"),
    ],
)
async def test_the_validator_refuses_documents_the_app_could_not_read(
    mongo_catalog: MongoCatalog, path: tuple[Any, ...], value: Any
) -> None:
    document = product_to_bson(product())
    target: Any = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(WriteError) as caught:
        await mongo_catalog.products.insert_one(document)
    assert caught.value.code == 121
    assert await mongo_catalog.products.count_documents({}) == 0


async def test_a_valid_document_is_accepted_with_decimal_prices(mongo_catalog: MongoCatalog) -> None:
    document = product_to_bson(product())
    await mongo_catalog.products.insert_one(document)
    stored = await mongo_catalog.products.find_one({"_id": document["_id"]})
    assert isinstance(stored["variants"][0]["price"], Decimal128)


async def test_migrate_repairs_drift_and_is_then_idempotent(mongo_catalog: MongoCatalog) -> None:
    database = mongo_catalog.database
    await database.command("collMod", "products", validator={"$jsonSchema": {"bsonType": "object"}})
    await mongo_catalog.products.drop_index("by_category")
    await mongo_catalog.products.drop_index("by_name")
    await mongo_catalog.products.create_index("brand", name="by_name")  # same name, other keys
    changes = await migrate(database)
    assert "updated the $jsonSchema validator of products" in changes
    assert "created index products.by_category" in changes
    assert "created index products.by_name" in changes
    assert await migrate(database) == []
    info = await (await database.list_collections(filter={"name": "products"})).to_list()
    assert info[0]["options"]["validator"] == validator_for(ProductDocument)
