"""CONTRACT.md 4.5 through HTTP, against the real database: profiles and the store catalog."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx

from tests.builders import payload, sunglasses, variant
from tests.e2e.test_http_catalog import assert_problem

STORES = "/api/v1/stores"
PROFILE = {"name": "Europe", "currency": "EUR", "categories": [], "brands": [], "include_out_of_stock": False}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_put_creates_201_then_replaces_200_and_get_reads_it(http: httpx.AsyncClient) -> None:
    created = await http.put(f"{STORES}/eu-main", json={**PROFILE, "currency": "eur", "brands": ["Ray-Ban"]})
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/api/v1/stores/eu-main"
    assert created.json() == {**PROFILE, "store_id": "eu-main", "brands": ["Ray-Ban"]}
    replaced = await http.put(f"{STORES}/eu-main", json={**PROFILE, "name": "Europe 2"})
    assert replaced.status_code == 200
    assert "location" not in replaced.headers
    read = await http.get(f"{STORES}/eu-main")
    assert read.status_code == 200
    assert read.json() == {**PROFILE, "store_id": "eu-main", "name": "Europe 2"}


async def test_invalid_profiles_are_422_with_every_field(http: httpx.AsyncClient) -> None:
    body = assert_problem(
        await http.put(f"{STORES}/EU", json={**PROFILE, "currency": "euro", "categories": ["x"]}), 422
    )
    assert {(e["field"], e["code"]) for e in body["errors"]} == {
        ("store_id", "invalid_value"),
        ("currency", "invalid_value"),
        ("categories[0]", "invalid_value"),
    }
    threat = assert_problem(await http.put(f"{STORES}/eu", json={**PROFILE, "brands": [{"$ne": ""}]}), 422)
    assert threat["errors"][0]["code"] == "threat_detected"
    assert_problem(await http.put(f"{STORES}/eu", content=b"{no", headers={"content-type": "application/json"}), 400)
    assert_problem(await http.get(f"{STORES}/eu"), 404)


async def test_unknown_stores_are_404(http: httpx.AsyncClient) -> None:
    assert_problem(await http.get(f"{STORES}/nowhere"), 404)
    assert_problem(await http.get(f"{STORES}/nowhere/catalog"), 404)
    assert_problem(await http.get(f"{STORES}/NOT-A-SLUG/catalog"), 404)


async def test_managing_needs_store_manage_reading_needs_store_read(
    anonymous_http: httpx.AsyncClient, issue: Callable[..., str]
) -> None:
    http = anonymous_http
    assert_problem(await http.put(f"{STORES}/eu", json=PROFILE), 401)
    viewer = bearer(issue("viewer", subject="vera"))
    assert_problem(await http.put(f"{STORES}/eu", json=PROFILE, headers=viewer), 403)
    assert_problem(await http.put(f"{STORES}/eu", json=PROFILE, headers=bearer(issue("editor"))), 403)
    manager = bearer(issue("catalog_manager", subject="mia"))
    assert (await http.put(f"{STORES}/eu", json=PROFILE, headers=manager)).status_code == 201
    assert (await http.get(f"{STORES}/eu", headers=viewer)).status_code == 200
    assert (await http.get(f"{STORES}/eu/catalog", headers=bearer(issue("ingestor")))).status_code == 200
    assert_problem(await http.get(f"{STORES}/eu", headers=bearer(issue("unknown-role"))), 403)
    audit = await http.get("/api/v1/audit", params={"action": "store:manage"}, headers=bearer(issue("admin")))
    decisions = [(r["actor"], r["resource"], r["decision"]) for r in audit.json()["items"]]
    assert ("vera", "store:eu", "deny") in decisions
    assert ("mia", "store:eu", "allow") in decisions


async def _seed(http: httpx.AsyncClient) -> None:
    for body in (
        payload(variants=[variant("RB3016-A", "120.00"), variant("RB3016-B", "150.00", stock_quantity=0)]),
        sunglasses(),
        payload("OX1", "Oakley", [variant("OX1-A", "80.00", "USD")], frame_shape="round"),
    ):
        assert (await http.post("/api/v1/products", json=body)).status_code == 201
    archived = payload("OLD1", variants=[variant("OLD1-A")])
    assert (await http.post("/api/v1/products", json=archived)).status_code == 201
    assert (await http.delete("/api/v1/products/ray-ban-old1")).status_code == 204


async def test_the_store_catalog_is_the_generation_data(http: httpx.AsyncClient) -> None:
    await _seed(http)
    await http.put(f"{STORES}/eu", json={**PROFILE, "brands": ["ray-ban"], "include_out_of_stock": True})
    response = await http.get(f"{STORES}/eu/catalog")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    data: dict[str, Any] = response.json()
    assert list(data) == ["store", "generated_at", "products", "collections", "facets", "counts"]
    assert data["store"]["store_id"] == "eu"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["generated_at"])
    assert [p["product_id"] for p in data["products"]] == ["ray-ban-rb2140", "ray-ban-rb3016"]
    club = data["products"][1]
    assert club["price_range"] == {"min": "120.00", "max": "150.00", "currency": "EUR"}
    assert club["url_path"] == "/p/ray-ban-rb3016"
    assert club["title"] == "Ray-Ban Clubmaster"
    assert [(v["sku"], v["price"], v["in_stock"]) for v in club["variants"]] == [
        ("RB3016-A", "120.00", True),
        ("RB3016-B", "150.00", False),
    ]
    assert data["collections"] == [
        {"collection_id": "brand-ray-ban", "title": "Ray-Ban", "product_ids": ["ray-ban-rb3016", "ray-ban-rb2140"]},
        {"collection_id": "category-eyeglasses", "title": "Eyeglasses", "product_ids": ["ray-ban-rb3016"]},
        {"collection_id": "category-sunglasses", "title": "Sunglasses", "product_ids": ["ray-ban-rb2140"]},
        {"collection_id": "shape-browline", "title": "Browline", "product_ids": ["ray-ban-rb3016"]},
        {"collection_id": "shape-wayfarer", "title": "Wayfarer", "product_ids": ["ray-ban-rb2140"]},
    ]
    assert data["facets"]["brand"] == [{"value": "Ray-Ban", "count": 2}]
    assert data["facets"]["face_shape"][0] == {"value": "oval", "count": 2}
    assert data["counts"] == {"products": 2, "variants": 3}


async def test_an_empty_store_is_a_valid_document(http: httpx.AsyncClient) -> None:
    await http.put(f"{STORES}/ch", json={**PROFILE, "currency": "CHF"})
    data = (await http.get(f"{STORES}/ch/catalog")).json()
    assert (data["products"], data["collections"], data["counts"]) == ([], [], {"products": 0, "variants": 0})
    assert all(values == [] for values in data["facets"].values())
