"""A representative workload: every kind of read and write the MongoDB adapters issue.

``eyewear migrate --check`` and the query-plan contract test run it against a scratch database
under a ``QueryPlanAnalyzer``; whatever query shape the code sends is then explained. It drives
the real adapters (catalog, audit log, revocation list, OAuth stores), the failure paths
included (duplicate product, taken SKU and GTIN, stale version), because those send queries of
their own.
"""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from adapters.html.nh3_sanitizer import Nh3Sanitizer
from adapters.mongo.audit_log import MongoAuditLog
from adapters.mongo.brands import MongoBrandNames
from adapters.mongo.clients import MongoClientStore, MongoRefreshTokenStore
from adapters.mongo.ingestion_plan_workload import drive_ingestion
from adapters.mongo.product_repository import MongoCatalog
from adapters.mongo.revocations import MongoRevocationList
from adapters.mongo.signing_keys import drive_signing_keys
from adapters.mongo.store_plan_workload import drive_stores
from domain.audit import AuditDecision, AuditRecord, parse_audit_query
from domain.clients import OAuthClient, RefreshTokenRecord, refresh_token_hash
from domain.errors import DomainError
from domain.history import record_change
from domain.parsing import parse_product_payload
from domain.product import Product
from domain.rbac import Role
from domain.search import SortOrder, parse_filters, parse_search

#: Every search filter, alone and combined: each gives the search and facet pipelines a shape.
FILTER_SHAPES: list[dict[str, str]] = [
    {},
    {"brand": "Ray-Ban"},
    {"category": "sunglasses"},
    {"frame_shape": "round"},
    {"frame_material": "metal"},
    {"rim_type": "rimless"},
    {"gender": "kids"},
    {"face_shape": "oval"},
    {"size_class": "large"},
    {"min_price": "10", "max_price": "200", "currency": "EUR"},
    {"in_stock": "true"},
    {"q": "club master"},
    {"brand": "Ray-Ban", "frame_shape": "browline", "min_price": "50", "max_price": "300"},
    {"category": "eyeglasses", "gender": "unisex", "in_stock": "false", "q": "frame"},
]
AUDIT_SHAPES: list[dict[str, str]] = [
    {},
    {"actor": "u1"},
    {"action": "product:read"},
    {"decision": "deny"},
    {"actor": "u1", "decision": "allow"},
]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
_SANITIZER = Nh3Sanitizer()
#: The shape of a stored scrypt hash (the validator checks it); made up, it hashes nothing.
_SECRET_HASH = "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"  # noqa: S105


def _variant(sku: str, amount: str, **overrides: Any) -> dict[str, Any]:
    return {
        "sku": sku,
        "color_name": "Black",
        "color_hex": "#000000",
        "lens_width_mm": 51,
        "bridge_width_mm": 21,
        "temple_length_mm": 145,
        "lens_height_mm": 42,
        "price": {"amount": amount, "currency": "EUR"},
        "stock_quantity": 5,
        "image_urls": ["https://img.example.com/a.jpg"],
        **overrides,
    }


def _product(style_id: str, variants: list[dict[str, Any]], **overrides: Any) -> Product:
    payload = {
        "style_id": style_id,
        "brand": "Ray-Ban",
        "name": "Clubmaster",
        "category": "eyeglasses",
        "frame_shape": "browline",
        "frame_material": "acetate",
        "rim_type": "full-rim",
        "gender": "unisex",
        "description_html": "<p>Classic</p>",
        "tags": ["classic"],
        "variants": variants,
        **overrides,
    }
    return Product.create(parse_product_payload(payload, _SANITIZER), T0)


async def drive_catalog(database: AsyncDatabase[Any]) -> None:
    """Writes (and their conflicts), reads by id and SKU, history, every search and facet shape."""
    repo = MongoCatalog(database)
    items = [_product(f"S{i}", [_variant(f"S{i}-A", f"{50 + i}.00")], name=f"Frame {i}") for i in range(30)]
    items.append(
        _product(
            "RB2140",
            [_variant("RB2140-A", "150.00", gtin="08053672000016", lens_category=3)],
            name="Wayfarer",
            category="sunglasses",
        )
    )
    for item in items:
        await repo.add(item, record_change(None, item, "plan-check", "api"))
    renamed = items[0].replaced_by(dataclasses.replace(items[0].draft, name="Renamed"), T0)
    await repo.replace(renamed, 1, record_change(items[0], renamed, "plan-check", "api"))
    thief = _product("THIEF", [_variant("S2-A", "10.00", gtin="8053672000016")])
    for failing in (
        repo.add(items[1], record_change(None, items[1], "plan-check", "api")),  # the product exists
        repo.replace(renamed, 1, record_change(None, renamed, "plan-check", "api")),  # a stale version
        repo.add(thief, record_change(None, thief, "plan-check", "api")),  # a taken SKU and GTIN
    ):
        with contextlib.suppress(DomainError):
            await failing
    brands = MongoBrandNames(database)
    await brands.canonical(["Plan Brand"])  # registered
    brands.forget()
    await brands.canonical(["plan brand", "Other Brand"], register=False)  # looked up
    await repo.get(items[1].product_id)
    await repo.get_by_sku("S1-A")
    await repo.entries(items[1].product_id)
    for params in FILTER_SHAPES:
        await repo.facets(parse_filters(params))
        for sort in SortOrder:
            page = await repo.search(parse_search({**params, "sort": sort.value, "limit": "2"}))
            if page.next_cursor:
                await repo.search(
                    parse_search({**params, "sort": sort.value, "limit": "2", "cursor": page.next_cursor})
                )


async def drive_audit(database: AsyncDatabase[Any]) -> None:
    audit = MongoAuditLog(database)
    for i in range(5):
        decision = AuditDecision.ALLOW if i % 2 else AuditDecision.DENY
        actor = f"u{i % 2}"
        await audit.append(
            AuditRecord(f"r{i}", T0, actor, ("viewer",), "product:read", "products", decision, "x", "c", None)
        )
    for params in AUDIT_SHAPES:
        page = await audit.query(parse_audit_query({**params, "limit": "1"}))
        await audit.query(parse_audit_query({**params, "limit": "1", "cursor": page.next_cursor or ""}))


async def drive_security_stores(database: AsyncDatabase[Any]) -> None:
    """Token revocations, OAuth clients and refresh-token rotation."""
    revocations = MongoRevocationList(database)
    await revocations.revoke("jti-plan-check", datetime.now(UTC) + timedelta(hours=1))
    await revocations.is_revoked("jti-plan-check")
    clients, tokens = MongoClientStore(database), MongoRefreshTokenStore(database)
    now = datetime.now(UTC)  # refresh tokens expire through a TTL index: keep them alive meanwhile
    client = OAuthClient("plan-check-1a2b3c", "Plan check", _SECRET_HASH, frozenset({Role.VIEWER}), frozenset(), T0)
    await clients.add(client)
    await clients.get(client.client_id)
    for i in range(3):
        await tokens.add(
            RefreshTokenRecord(
                token_hash=refresh_token_hash(f"p{i}"),
                family_id=f"f{i % 2}",
                client_id=client.client_id,
                subject=client.client_id,
                roles=frozenset({Role.VIEWER}),
                brands=frozenset(),
                issued_at=now,
                expires_at=now + timedelta(days=30),
                access_token_id=f"jti-p{i}",
                access_expires_at=now + timedelta(minutes=15),
            )
        )
    await tokens.get(refresh_token_hash("p0"))
    await tokens.use(refresh_token_hash("p0"))
    await tokens.use(refresh_token_hash("p0"))  # a second use: the reuse path
    await tokens.family_revoked("f0")
    await tokens.revoke_family("f0")


async def drive_repositories(database: AsyncDatabase[Any]) -> None:
    """The whole workload; ``database`` must be a scratch one (it writes)."""
    await drive_catalog(database)
    await drive_audit(database)
    await drive_security_stores(database)
    await drive_signing_keys(database)
    await drive_ingestion(database)
    await drive_stores(database)
