"""Readable test data: valid API payloads with the one detail a test cares about changed."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from adapters.html.nh3_sanitizer import Nh3Sanitizer
from adapters.memory.audit_log import MemoryAuditLog
from adapters.memory.clock import FixedClock
from application.authorization import Authorizer, Caller
from domain.history import record_change
from domain.parsing import parse_product_payload
from domain.product import Product
from domain.rbac import Principal, parse_roles

SANITIZER = Nh3Sanitizer()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def variant(sku: str, amount: str = "120.00", currency: str = "EUR", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "sku": sku,
        "color_name": "Black",
        "color_hex": "#000000",
        "lens_width_mm": 51,
        "bridge_width_mm": 21,
        "temple_length_mm": 145,
        "lens_height_mm": 42,
        "price": {"amount": amount, "currency": currency},
        "stock_quantity": 5,
        "image_urls": ["https://img.example.com/a.jpg"],
    }
    data.update(overrides)
    return data


def payload(
    style_id: str = "RB3016",
    brand: str = "Ray-Ban",
    variants: list[dict[str, Any]] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "style_id": style_id,
        "brand": brand,
        "name": "Clubmaster",
        "category": "eyeglasses",
        "frame_shape": "browline",
        "frame_material": "acetate",
        "rim_type": "full-rim",
        "gender": "unisex",
        "description_html": "<p>Classic</p>",
        "tags": ["classic"],
        "variants": variants if variants is not None else [variant(f"{style_id}-BLK-51")],
    }
    data.update(overrides)
    return copy.deepcopy(data)


def sunglasses(style_id: str = "RB2140", brand: str = "Ray-Ban", **overrides: Any) -> dict[str, Any]:
    base = payload(
        style_id,
        brand,
        [variant(f"{style_id}-G15-50", lens_category=3, polarized=True, uv_protection="UV400", lens_width_mm=50)],
        name="Wayfarer",
        category="sunglasses",
        frame_shape="wayfarer",
    )
    base.update(overrides)
    return base


def product(data: dict[str, Any] | None = None, at: datetime = T0) -> Product:
    return Product.create(parse_product_payload(data or payload(), SANITIZER), at)


def creation(product: Product, actor: str = "tester"):  # type: ignore[no-untyped-def]
    return record_change(None, product, actor, "api")


def caller(subject: str = "tester", *roles: str, brands: tuple[str, ...] = ()) -> Caller:
    """A caller with the given roles (admin when none are named)."""
    granted = parse_roles(roles or ("admin",))
    return Caller(Principal(subject=subject, roles=granted, brands=frozenset(brands)), correlation_id=f"req-{subject}")


def authorizer() -> Authorizer:
    return Authorizer(MemoryAuditLog(), FixedClock())
