"""``eyewear export-store`` as users run it: a real process against the real test server."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from adapters.mongo.client import MongoOptions, create_client
from adapters.mongo.migrations import migrate
from adapters.mongo.product_repository import MongoCatalog
from adapters.mongo.stores import MongoStoreProfiles
from domain.stores import StoreProfile
from tests.builders import creation, payload, product, sunglasses, variant
from tests.e2e.test_cli import environment, run


async def _seed(url: str, name: str) -> None:
    client = create_client(url, MongoOptions(timeout_ms=30_000))
    database = client[name]
    await migrate(database)
    catalog = MongoCatalog(database)
    for item in (
        product(payload(variants=[variant("RB3016-A"), variant("RB3016-B", "99.00", stock_quantity=0)])),
        product(sunglasses()),
        product(payload("OX1", "Oakley", [variant("OX1-A", "80.00", "USD")])),
    ):
        await catalog.add(item, creation(item))
    await MongoStoreProfiles(database).put(StoreProfile("eu", "Europe", "EUR"))
    await client.close()


async def _drop(url: str, name: str) -> None:
    client = create_client(url, MongoOptions())
    await client.drop_database(name)
    await client.close()


def test_export_store_writes_the_four_files(mongo_url: str, tmp_path: Path) -> None:
    name = f"cli_store_{uuid.uuid4().hex[:8]}"
    asyncio.run(_seed(mongo_url, name))
    env = environment(EYEWEAR_MONGODB_URL=mongo_url, EYEWEAR_MONGODB_DB=name, EYEWEAR_DATA_DIR=str(tmp_path / "data"))
    out = tmp_path / "exports" / "eu"  # the parents are created too
    try:
        result = run(["export-store", "eu", "--out", str(out)], env)
        assert result.returncode == 0, result.stderr
        written = json.loads(result.stdout)  # stdout is the result only
        assert written == {
            "store_id": "eu",
            "files": [str(out / f) for f in ("store.json", "products.ndjson", "collections.json", "facets.json")],
        }
        assert "exported store eu: 2 products, 2 variants, 5 collections" in result.stderr
        lines = (out / "products.ndjson").read_text(encoding="utf-8").splitlines()
        assert [json.loads(line)["product_id"] for line in lines] == ["ray-ban-rb2140", "ray-ban-rb3016"]
        assert json.loads(lines[1])["price_range"] == {"min": "120.00", "max": "120.00", "currency": "EUR"}
        store = json.loads((out / "store.json").read_text(encoding="utf-8"))
        assert store["store"]["store_id"] == "eu"
        assert store["counts"] == {"products": 2, "variants": 2}
        collections = json.loads((out / "collections.json").read_text(encoding="utf-8"))
        assert [c["collection_id"] for c in collections] == [
            "brand-ray-ban",
            "category-eyeglasses",
            "category-sunglasses",
            "shape-browline",
            "shape-wayfarer",
        ]
        facets = json.loads((out / "facets.json").read_text(encoding="utf-8"))
        assert facets["brand"] == [{"value": "Ray-Ban", "count": 2}]
        assert sorted(p.name for p in out.iterdir()) == [
            "collections.json",
            "facets.json",
            "products.ndjson",
            "store.json",
        ]

        missing = run(["export-store", "nowhere", "--out", str(tmp_path / "none")], env)
        assert missing.returncode == 1
        assert missing.stdout == ""
        assert missing.stderr.strip().count("\n") == 0
        assert missing.stderr.startswith("eyewear: no store 'nowhere'")
        assert "Traceback" not in missing.stderr
        assert not (tmp_path / "none").exists()
    finally:
        asyncio.run(_drop(mongo_url, name))
