"""``read.sku.uncached``, ``read.sku.cached`` and ``search.filtered``: the query use cases, as a
caller runs them (authorized and audited), against the bare driver and the bare cache.

Both sides cycle through the same SKUs in the same order, in alternating blocks. The detail of
each result splits our p50 into its layers (the authorization and its audit record every use
case makes, the repository or the cache adapter), each timed alone as further sides of the same
alternation.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from bson import Decimal128

from adapters.cache import codec
from adapters.cache.backend import PREFIX
from adapters.mongo.documents import ProductDocument
from application.catalog_queries import GetProductBySku, SearchProducts
from domain.rbac import Permission
from entrypoints.bench.ingestion import BenchFailed, StoredCatalog
from entrypoints.bench.measure import Result, Sizes, side_by_side
from entrypoints.bench.session import Session

#: Distinct SKUs read in turn: enough to leave the server's and the cache's hottest lines.
HOT_SKUS = 500
SEARCH_LIMIT = 20


def hot_skus(catalog: StoredCatalog) -> list[tuple[str, str]]:
    owners = catalog.sku_owners
    step = max(1, len(owners) // HOT_SKUS)
    return owners[::step][:HOT_SKUS]


async def sku_results(session: Session, sizes: Sizes, catalog: StoredCatalog) -> list[Result]:
    mongo_catalog = await session.get("mongo_catalog")
    cached_catalog = await session.get("catalog")
    authorizer = await session.get("authorizer")
    store = await session.get("cache_store")
    caller = session.caller
    pairs = hot_skus(catalog)
    skus = [sku for sku, _ in pairs]
    n = len(skus)
    uncached = GetProductBySku(mongo_catalog, authorizer)
    cached = session.cases.get_by_sku
    products = session.raw[ProductDocument.Settings.name]

    async def ours_uncached(i: int) -> object:
        return await uncached(skus[i % n], caller)

    async def raw_find(i: int) -> object:
        return await products.find_one({"skus": skus[i % n]})

    async def audit(i: int) -> object:
        return await authorizer.require(caller, Permission.PRODUCT_READ, f"sku:{skus[i % n]}")

    async def repository(i: int) -> object:
        return await mongo_catalog.get_by_sku(skus[i % n])

    mine, theirs, audits, repo = await side_by_side(ours_uncached, raw_find, audit, repository, sizes=sizes)
    results = [
        Result(
            "read.sku.uncached",
            mine.p50_us,
            theirs.p50_us,
            "µs",
            f"{mine.count:,} calls per side, {n} SKUs in turn; ours {mine.describe()}, baseline find_one"
            f" {theirs.describe()}; its layers, interleaved: authorization + audit journal append p50"
            f" {audits.p50_us:,.0f} µs,"
            f" MongoCatalog.get_by_sku (find_one + mapping) p50 {repo.p50_us:,.0f} µs",
        )
    ]

    for sku in skus:  # fill the cache: the SKU pointer and the product entry behind it
        await cached(sku, caller)
    keys = [PREFIX + f"p:{pid}" for _, pid in pairs]
    if not isinstance(await store.cache.get(keys[0]), dict):
        raise BenchFailed("the cache holds no entry after a read: is it bypassed (a cache error)?")

    async def ours_cached(i: int) -> object:
        return await cached(skus[i % n], caller)

    async def bare_get(i: int) -> object:
        entry = await store.cache.get(keys[i % n])
        return codec.product_from_json(entry["v"])

    async def adapter(i: int) -> object:
        return await cached_catalog.get_by_sku(skus[i % n])

    mine, theirs, audits, adapted = await side_by_side(ours_cached, bare_get, audit, adapter, sizes=sizes)
    backend = "Redis" if store.shared else "memory"
    results.append(
        Result(
            "read.sku.cached",
            mine.p50_us,
            theirs.p50_us,
            "µs",
            f"cashews on {backend}, every entry a hit; {mine.count:,} calls per side; ours {mine.describe()},"
            f" baseline get + decode {theirs.describe()}; its layers, interleaved: authorization + audit"
            f" journal append p50 {audits.p50_us:,.0f} µs, CachedCatalog.get_by_sku (the product entry, the SKU"
            f" pointer remembered in process)"
            f" p50 {adapted.p50_us:,.0f} µs",
        )
    )
    return results


def search_parameters(catalog: StoredCatalog) -> tuple[dict[str, str], dict[str, Any]]:
    """The busiest brand + shape, a price range holding the middle 80% of its prices, 20 items."""
    active = [doc for doc in catalog.documents if doc["status"] == "active"]
    (brand_key, shape), _ = Counter((doc["brand_key"], doc["frame_shape"]) for doc in active).most_common(1)[0]
    chosen = [doc for doc in active if doc["brand_key"] == brand_key and doc["frame_shape"] == shape]
    prices: list[Decimal] = sorted(v["price"].to_decimal() for doc in chosen for v in doc["variants"])
    low, high = prices[len(prices) // 10], prices[(len(prices) - 1) * 9 // 10]
    params = {
        "brand": chosen[0]["brand"],
        "frame_shape": shape,
        "min_price": str(low),
        "max_price": str(high),
        "limit": str(SEARCH_LIMIT),
    }
    query = {
        "status": "active",
        "brand_key": brand_key,
        "frame_shape": shape,
        "variants": {"$elemMatch": {"price": {"$gte": Decimal128(low), "$lte": Decimal128(high)}}},
    }
    return params, query


async def search_results(session: Session, sizes: Sizes, catalog: StoredCatalog) -> list[Result]:
    mongo_catalog = await session.get("mongo_catalog")
    authorizer = await session.get("authorizer")
    caller = session.caller
    params, query = search_parameters(catalog)
    search = SearchProducts(mongo_catalog, authorizer)
    products = session.raw[ProductDocument.Settings.name]
    order = [("name_key", 1), ("_id", 1)]
    # The server work our adapter asks for: one indexed equality first, then the whole filter.
    pipeline = [
        {"$match": {"status": "active", "brand_key": query["brand_key"]}},
        {"$match": query},
        {"$sort": dict(order)},
        {"$limit": SEARCH_LIMIT + 1},
    ]
    page = await search(params, caller)
    raw_page = await products.find(query).sort(order).limit(SEARCH_LIMIT).to_list()
    if [p.product_id for p in page.items] != [doc["_id"] for doc in raw_page]:
        raise BenchFailed("the search use case and the raw query do not return the same products")

    async def ours(_: int) -> object:
        return await search(params, caller)

    async def raw(_: int) -> object:
        return await products.find(query).sort(order).limit(SEARCH_LIMIT).to_list()

    async def raw_pipeline(_: int) -> object:
        return await (await products.aggregate(pipeline)).to_list()

    async def cached(_: int) -> object:
        return await session.cases.search(params, caller)

    mine, theirs, same_work, hits = await side_by_side(ours, raw, raw_pipeline, cached, sizes=sizes)
    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    return [
        Result(
            "search.filtered",
            mine.p50_us,
            theirs.p50_us,
            "µs",
            f"{shown}: {len(page.items)} items; catalog uncached (the same work on both sides); {mine.count:,}"
            f" calls per side; ours {mine.describe()}, baseline find().sort().limit() {theirs.describe()};"
            f" interleaved: the raw aggregate our adapter sends (indexed equality first) {same_work.describe()},"
            f" the use case through the cache (hits) p50 {hits.p50_us:,.0f} µs",
        )
    ]
