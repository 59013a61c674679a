"""Every status code of CONTRACT.md 4.3, through HTTP, against the real database."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.builders import payload, sunglasses, variant

PRODUCTS = "/api/v1/products"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail", "correlation_id"} <= body.keys()
    assert body["status"] == status
    assert body["correlation_id"] == response.headers["x-request-id"]
    return body


async def create(http: httpx.AsyncClient, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await http.post(PRODUCTS, json=body or payload())
    assert response.status_code == 201, response.text
    return response.json()


async def test_health(http: httpx.AsyncClient) -> None:
    assert (await http.get("/health/live")).json() == {"status": "ok"}
    ready = await http.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"mongodb": "ok", "cache": "ok"}}


async def test_create_answers_201_with_location_and_etag(http: httpx.AsyncClient) -> None:
    response = await http.post(PRODUCTS, json=payload())
    assert response.status_code == 201
    assert response.headers["location"] == "/api/v1/products/ray-ban-rb3016"
    assert response.headers["etag"] == '"1"'
    body = response.json()
    assert (body["product_id"], body["version"], body["status"]) == ("ray-ban-rb3016", 1, "active")
    assert body["face_shapes"] == ["diamond", "oblong", "oval"]
    v = body["variants"][0]
    assert (v["size_label"], v["size_class"], v["progressive_ready"]) == ("51□21-145", "medium", True)
    assert v["price"] == {"amount": "120.00", "currency": "EUR"}


async def test_create_conflicts_are_409(http: httpx.AsyncClient) -> None:
    await create(http)
    assert_problem(await http.post(PRODUCTS, json=payload()), 409)
    thief = payload("OTHER", variants=[variant("rb3016-blk-51")])
    body = assert_problem(await http.post(PRODUCTS, json=thief), 409)
    assert body["errors"] == [
        {"field": "variants[0].sku", "code": "sku_conflict", "message": body["errors"][0]["message"]}
    ]


async def test_invalid_input_is_422_with_every_error(http: httpx.AsyncClient) -> None:
    bad = payload(category="goggles", variants=[variant("RB3016-A", lens_width_mm=99, price={"amount": "1.234"})])
    body = assert_problem(await http.post(PRODUCTS, json=bad), 422)
    fields = {(e["field"], e["code"]) for e in body["errors"]}
    assert ("category", "invalid_value") in fields
    assert ("variants[0].lens_width_mm", "out_of_range") in fields
    assert ("variants[0].price.amount", "invalid_value") in fields
    assert (await http.get(f"{PRODUCTS}/ray-ban-rb3016")).status_code == 404


async def test_operator_injection_is_refused(http: httpx.AsyncClient) -> None:
    body = assert_problem(await http.post(PRODUCTS, json=payload(brand={"$ne": ""})), 422)
    assert body["errors"][0]["code"] == "threat_detected"


async def test_malformed_json_is_400(http: httpx.AsyncClient) -> None:
    response = await http.post(PRODUCTS, content=b"{not json", headers={"content-type": "application/json"})
    assert_problem(response, 400)


async def test_get_by_id_and_by_sku(http: httpx.AsyncClient) -> None:
    created = await create(http)
    response = await http.get(f"{PRODUCTS}/ray-ban-rb3016")
    assert response.status_code == 200
    assert response.headers["etag"] == '"1"'
    assert response.json() == created
    by_sku = await http.get("/api/v1/skus/%20rb3016-blk-51%20")
    assert by_sku.json()["product_id"] == "ray-ban-rb3016"
    assert_problem(await http.get(f"{PRODUCTS}/nope"), 404)
    assert_problem(await http.get("/api/v1/skus/NOPE-1"), 404)


async def test_put_round_trips_what_get_returned(http: httpx.AsyncClient) -> None:
    created = await create(http)
    created["name"] = "Clubmaster Oval"
    response = await http.put(f"{PRODUCTS}/ray-ban-rb3016", json=created, headers={"If-Match": '"1"'})
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    assert (response.json()["name"], response.json()["version"]) == ("Clubmaster Oval", 2)


async def test_put_preconditions(http: httpx.AsyncClient) -> None:
    await create(http)
    url = f"{PRODUCTS}/ray-ban-rb3016"
    assert_problem(await http.put(url, json=payload()), 428)
    assert_problem(await http.put(url, json=payload(), headers={"If-Match": "*"}), 428)
    assert_problem(await http.put(url, json=payload(name="X"), headers={"If-Match": '"5"'}), 412)
    assert_problem(await http.put(url, json=payload(name="X"), headers={"If-Match": "abc"}), 412)
    assert_problem(await http.put(f"{PRODUCTS}/nope", json=payload(), headers={"If-Match": '"1"'}), 404)
    assert_problem(await http.put(url, json=payload(tags="x" * 40), headers={"If-Match": '"1"'}), 422)
    assert (await http.get(url)).json()["version"] == 1


async def test_eight_concurrent_replaces_with_one_if_match_let_exactly_one_through(http: httpx.AsyncClient) -> None:
    await create(http)
    responses = await asyncio.gather(
        *(
            http.put(f"{PRODUCTS}/ray-ban-rb3016", json=payload(name=f"Name {i}"), headers={"If-Match": '"1"'})
            for i in range(8)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * 7
    winner = next(r.json() for r in responses if r.status_code == 200)
    stored = (await http.get(f"{PRODUCTS}/ray-ban-rb3016")).json()
    assert (stored["name"], stored["version"]) == (winner["name"], 2)
    history = (await http.get(f"{PRODUCTS}/ray-ban-rb3016/history")).json()["items"]
    assert [item["version"] for item in history] == [1, 2]


async def test_patch_sku(http: httpx.AsyncClient) -> None:
    await create(http)
    url = "/api/v1/skus/rb3016-blk-51"
    response = await http.patch(
        url, json={"stock_quantity": 0, "price": {"amount": "99.90", "currency": "EUR"}}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 200, response.text
    assert response.json()["variants"][0]["stock_quantity"] == 0
    assert response.json()["variants"][0]["price"]["amount"] == "99.90"
    assert_problem(await http.patch(url, json={"stock_quantity": 1}), 428)
    assert_problem(await http.patch(url, json={"stock_quantity": 1}, headers={"If-Match": '"1"'}), 412)
    assert_problem(await http.patch(url, json={"stock_quantity": -1}, headers={"If-Match": '"2"'}), 422)
    assert_problem(
        await http.patch("/api/v1/skus/NOPE-1", json={"stock_quantity": 1}, headers={"If-Match": '"1"'}), 404
    )


async def test_delete_archives(http: httpx.AsyncClient) -> None:
    await create(http)
    response = await http.delete(f"{PRODUCTS}/ray-ban-rb3016")
    assert response.status_code == 204
    assert response.content == b""
    assert (await http.get(f"{PRODUCTS}/ray-ban-rb3016")).json()["status"] == "archived"
    assert (await http.get(PRODUCTS)).json() == {"items": [], "next_cursor": None}
    assert_problem(await http.delete(f"{PRODUCTS}/nope"), 404)


async def test_history(http: httpx.AsyncClient) -> None:
    await create(http)
    await http.patch("/api/v1/skus/RB3016-BLK-51", json={"stock_quantity": 9}, headers={"If-Match": '"1"'})
    items = (await http.get(f"{PRODUCTS}/ray-ban-rb3016/history")).json()["items"]
    assert [(i["version"], i["actor"], i["source"]) for i in items] == [
        (1, "tester", "api"),
        (2, "tester", "api"),
    ]
    assert items[1]["changes"] == {"variants[RB3016-BLK-51].stock_quantity": {"from": 5, "to": 9}}
    assert_problem(await http.get(f"{PRODUCTS}/nope/history"), 404)


async def test_search_pages_and_facets(http: httpx.AsyncClient) -> None:
    for i in range(3):
        await create(http, payload(f"S{i}", variants=[variant(f"S{i}-A")], name=f"Frame {i}"))
    await create(http, sunglasses())
    first = (await http.get(PRODUCTS, params={"limit": 2, "brand": "Ray-Ban", "sort": "name"})).json()
    assert [p["name"] for p in first["items"]] == ["Frame 0", "Frame 1"]
    second = (await http.get(PRODUCTS, params={"limit": 2, "sort": "name", "cursor": first["next_cursor"]})).json()
    assert [p["name"] for p in second["items"]] == ["Frame 2", "Wayfarer"]
    assert second["next_cursor"] is None
    facets = (await http.get(f"{PRODUCTS}/facets", params={"category": "eyeglasses"})).json()
    assert facets["category"] == [{"value": "eyeglasses", "count": 3}]
    assert set(facets) == {
        "brand",
        "category",
        "frame_shape",
        "frame_material",
        "rim_type",
        "gender",
        "size_class",
        "face_shape",
    }


async def test_search_refuses_bad_parameters(http: httpx.AsyncClient) -> None:
    for params in (
        {"sort": "random"},
        {"limit": "0"},
        {"limit": "101"},
        {"cursor": "garbage"},
        {"min_price": "cheap"},
        {"in_stock": "maybe"},
        {"frame_shape": "hexagon"},
    ):
        body = assert_problem(await http.get(PRODUCTS, params=params), 422)
        assert body["errors"][0]["field"] == next(iter(params))


async def test_request_ids(http: httpx.AsyncClient) -> None:
    echoed = await http.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    replaced = await http.get("/health/live", headers={"X-Request-ID": "bad id\twith spaces"})
    assert replaced.headers["x-request-id"] not in ("", "bad id\twith spaces")
    assert len(replaced.headers["x-request-id"]) == 32


async def test_openapi_and_docs(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/openapi.json")).json()
    assert {
        "/api/v1/products",
        "/api/v1/products/{product_id}",
        "/api/v1/skus/{sku}",
        "/api/v1/products/{product_id}/history",
        "/api/v1/products/facets",
    } <= set(schema["paths"])
    body_schema = schema["paths"]["/api/v1/products"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "$ref" not in str(body_schema)
    assert (await http.get("/docs")).status_code == 200
