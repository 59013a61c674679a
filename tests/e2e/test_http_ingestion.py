"""CONTRACT.md 4.4 through HTTP on the real database: 202 and a background run, status, errors, rollback."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
from collections.abc import Callable
from typing import Any

import httpx

from adapters.feeds.render import write_csv
from adapters.feeds.sample_feed import generate_rows
from tests.e2e.test_http_catalog import assert_problem

INGESTIONS = "/api/v1/ingestions"
ROWS = list(generate_rows(styles=4, seed=3))


def ndjson(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row, default=str) + "\n" for row in rows).encode()


async def finished(http: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    for _ in range(300):
        report = (await http.get(f"{INGESTIONS}/{run_id}")).json()
        if report["status"] not in ("queued", "running"):
            return report
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish")


async def post_feed(http: httpx.AsyncClient, body: bytes, media: str = "application/x-ndjson", **params: Any) -> Any:
    return await http.post(INGESTIONS, content=body, headers={"Content-Type": media}, params=params)


async def test_a_feed_runs_in_the_background_and_its_report_follows_the_contract(http: httpx.AsyncClient) -> None:
    rows = [dict(r) for r in ROWS]
    rows[1]["lens_width_mm"] = 99
    started = await post_feed(http, ndjson(rows))
    assert started.status_code == 202, started.text
    body = started.json()
    assert body["status"] == "queued" and started.headers["location"] == f"{INGESTIONS}/{body['run_id']}"
    report = await finished(http, body["run_id"])
    assert report["status"] == "succeeded"
    assert set(report) >= {
        "run_id",
        "status",
        "dry_run",
        "error_policy",
        "source",
        "counts",
        "validation",
        "started_at",
        "finished_at",
        "duration_seconds",
        "rows_per_second",
    }
    assert report["counts"] == {
        "rows": len(rows),
        "valid": len(rows) - 1,
        "invalid": 1,
        "created": len(rows) - 1,
        "updated": 0,
        "unchanged": 0,
        "products_created": 4,
        "products_updated": 0,
    }
    assert report["validation"]["passed"] and all(c["passed"] for c in report["validation"]["checks"])
    errors = (await http.get(f"{INGESTIONS}/{body['run_id']}/errors")).json()
    assert errors == {
        "items": [
            {
                "line": 2,
                "sku": rows[1]["sku"],
                "field": "lens_width_mm",
                "code": "out_of_range",
                "message": "must be 40-62",
            }
        ],
        "next_cursor": None,
    }
    product = (await http.get(f"/api/v1/skus/{rows[0]['sku']}")).json()
    history = (await http.get(f"/api/v1/products/{product['product_id']}/history")).json()["items"]
    assert history[0]["source"] == f"ingestion:{body['run_id']}" and "previous" not in history[0]
    listed = (await http.get(INGESTIONS)).json()["items"]
    assert listed[0]["run_id"] == body["run_id"]


async def test_csv_gzip_dry_run_and_reject_all(http: httpx.AsyncClient) -> None:
    buffer = io.BytesIO()
    write_csv(ROWS, buffer)
    csv_gz = gzip.compress(buffer.getvalue())
    dry = await http.post(
        INGESTIONS,
        content=csv_gz,
        params={"dry_run": "true"},
        headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"},
    )
    report = await finished(http, dry.json()["run_id"])
    assert report["dry_run"] and report["counts"]["created"] == len(ROWS)
    assert (await http.get(f"/api/v1/skus/{ROWS[0]['sku']}")).status_code == 404
    broken = [dict(r) for r in ROWS]
    broken[-1]["category"] = "monocle"
    rejected = await finished(http, (await post_feed(http, ndjson(broken), error_policy="reject-all")).json()["run_id"])
    assert rejected["status"] == "rejected" and rejected["counts"]["invalid"] == 1
    assert (await http.get(f"/api/v1/skus/{ROWS[0]['sku']}")).status_code == 404


async def test_rollback_undoes_a_run_and_refuses_with_409_after_a_later_change(http: httpx.AsyncClient) -> None:
    first = await finished(http, (await post_feed(http, ndjson(ROWS[:3]))).json()["run_id"])
    assert first["status"] == "succeeded"
    cheaper = [{**r, "price": "9.99"} for r in ROWS]
    second = await finished(http, (await post_feed(http, ndjson(cheaper))).json()["run_id"])
    product = (await http.get(f"/api/v1/skus/{ROWS[0]['sku']}")).json()
    assert product["variants"][0]["price"]["amount"] == "9.99" or any(
        v["price"]["amount"] == "9.99" for v in product["variants"]
    )
    patched = await http.patch(
        f"/api/v1/skus/{ROWS[0]['sku']}", json={"stock_quantity": 1}, headers={"If-Match": f'"{product["version"]}"'}
    )
    assert patched.status_code == 200
    refused = assert_problem(await http.post(f"{INGESTIONS}/{second['run_id']}/rollback"), 409)
    assert product["product_id"] in refused["detail"]
    undone = await http.post(f"{INGESTIONS}/{second['run_id']}/rollback", params={"force": "true"})
    assert undone.status_code == 200 and undone.json()["status"] == "rolled_back"
    restored = (await http.get(f"/api/v1/skus/{ROWS[0]['sku']}")).json()
    assert restored["version"] == patched.json()["version"] + 1
    assert {v["price"]["amount"] for v in restored["variants"]} != {"9.99"}
    assert (await http.get(f"/api/v1/skus/{ROWS[-1]['sku']}")).status_code == 404  # created by the run: gone
    assert_problem(await http.post(f"{INGESTIONS}/{second['run_id']}/rollback"), 409)  # once only


async def test_ingestion_errors_and_permissions(
    http: httpx.AsyncClient, anonymous_http: httpx.AsyncClient, issue: Callable[..., str]
) -> None:
    assert_problem(await post_feed(http, b"{}", media="application/json"), 415)
    assert_problem(await http.get(f"{INGESTIONS}/nope"), 404)
    assert_problem(await http.get(f"{INGESTIONS}/nope/errors"), 404)
    assert_problem(await http.post(f"{INGESTIONS}/nope/rollback"), 404)
    assert_problem(await http.get(f"{INGESTIONS}/nope/errors", params={"cursor": "-1"}), 422)
    viewer = {"Authorization": f"Bearer {issue('viewer')}"}
    refused = await anonymous_http.post(
        INGESTIONS, content=ndjson(ROWS), headers={**viewer, "Content-Type": "application/x-ndjson"}
    )
    assert_problem(refused, 403)
    assert (await anonymous_http.get(INGESTIONS, headers=viewer)).status_code == 200
    ingestor = {"Authorization": f"Bearer {issue('ingestor')}"}
    run = await anonymous_http.post(
        INGESTIONS, content=ndjson(ROWS[:1]), headers={**ingestor, "Content-Type": "application/x-ndjson"}
    )
    assert run.status_code == 202
    report = await finished(http, run.json()["run_id"])
    assert report["actor"] == "tester"
    assert_problem(await anonymous_http.post(f"{INGESTIONS}/{report['run_id']}/rollback", headers=ingestor), 403)
    assert_problem(await anonymous_http.get(INGESTIONS, headers={"Authorization": "Bearer not-a-token"}), 401)


async def test_feed_name_and_encodings(http: httpx.AsyncClient, issue: Callable[..., str]) -> None:
    started = await http.post(
        INGESTIONS,
        content=ndjson(ROWS[:2]),
        headers={"Content-Type": "application/x-ndjson", "X-Feed-Name": "genie-2026-11-26.ndjson"},
    )
    assert (await finished(http, started.json()["run_id"]))["source"] == "genie-2026-11-26.ndjson"
    runs_before = len((await http.get(INGESTIONS)).json()["items"])
    namer = f"Bearer {issue('ingestor', subject='namer')}"  # a subject of its own: markup is a strike
    for name, code in (("<img src=x onerror=1>.ndjson", "threat_detected"), ("../../etc/passwd", "invalid_value")):
        headers = {"Content-Type": "application/x-ndjson", "X-Feed-Name": name, "Authorization": namer}
        refused = await http.post(INGESTIONS, content=ndjson(ROWS[:1]), headers=headers)
        assert assert_problem(refused, 422)["errors"] == [
            {"field": "X-Feed-Name", "code": code, "message": refused.json()["errors"][0]["message"]}
        ]
    assert len((await http.get(INGESTIONS)).json()["items"]) == runs_before  # no run recorded for either
    brotli = await http.post(INGESTIONS, content=b"x", headers={"Content-Type": "text/csv", "Content-Encoding": "br"})
    assert "gzip" in assert_problem(brotli, 415)["detail"]


async def test_a_run_cut_short_by_shutdown_is_recorded_as_interrupted(mongo_url: str, tmp_path: Any) -> None:
    """The server stops while a feed is running: the run says so instead of staying ``running``."""
    import uuid

    from entrypoints.container import Container, resolve
    from entrypoints.http.app import create_app
    from entrypoints.settings import Settings

    settings = Settings(mongodb_url=mongo_url, mongodb_db=f"eyewear_stop_{uuid.uuid4().hex[:8]}", data_dir=tmp_path)
    container = Container(settings=settings)
    app = create_app(container)
    rows = list(generate_rows(styles=400, seed=9))  # long enough to be running at shutdown
    async with app.router.lifespan_context(app):
        token = container.token_issuer().issue(subject="stopper", roles=["admin"], ttl_seconds=300).token
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://catalog.test") as client:
            client.headers["Authorization"] = f"Bearer {token}"
            started = await post_feed(client, ndjson(rows))
            run_id = started.json()["run_id"]
            for _ in range(200):
                if (await client.get(f"{INGESTIONS}/{run_id}")).json()["status"] == "running":
                    break
                await asyncio.sleep(0.01)
    # The lifespan has ended: the background run was cancelled and recorded.
    container = Container(settings=settings)
    await container.init_resources()
    try:
        run = await (await resolve(container.ingestion_runs)).get(run_id)
        assert run is not None and run.status.value == "failed"
        assert run.reason == "interrupted" and run.lease_until is None  # CONTRACT.md section 6
        database = await resolve(container.database)
        await database.client.drop_database(database.name)
    finally:
        await container.shutdown_resources()


async def test_a_brand_scoped_manager_cannot_roll_back_a_run_that_touched_other_brands(
    http: httpx.AsyncClient, anonymous_http: httpx.AsyncClient, issue: Callable[..., str]
) -> None:
    """Rollback is brand-scoped like writes: one product outside the caller's brands refuses the
    whole rollback (forced too) with 403, audited as a deny, and nothing is written."""
    brands = sorted({str(row["brand"]) for row in ROWS})
    assert len(brands) > 1, "the feed must span several brands"
    mixed = await finished(http, (await post_feed(http, ndjson(ROWS))).json()["run_id"])
    own = [row for row in ROWS if row["brand"] == brands[0]]
    own_changed = [{**row, "stock_quantity": 77} for row in own]
    mine = await finished(http, (await post_feed(http, ndjson(own_changed))).json()["run_id"])
    assert mixed["status"] == mine["status"] == "succeeded"
    before = (await http.get("/api/v1/products", params={"limit": 100})).json()["items"]

    scoped = {"Authorization": f"Bearer {issue('catalog_manager', subject='scoped', brands=(brands[0],))}"}
    for params in ({}, {"force": "true"}):
        refused = await anonymous_http.post(f"{INGESTIONS}/{mixed['run_id']}/rollback", headers=scoped, params=params)
        assert brands[1] in assert_problem(refused, 403)["detail"]
    assert (await http.get("/api/v1/products", params={"limit": 100})).json()["items"] == before
    assert (await http.get(f"{INGESTIONS}/{mixed['run_id']}")).json()["status"] == "succeeded"
    audit = (await http.get("/api/v1/audit", params={"actor": "scoped", "decision": "deny"})).json()["items"]
    assert [item["action"] for item in audit] == ["ingestion:rollback", "ingestion:rollback"]
    assert all(brands[1] in item["reason"] for item in audit)

    undone = await anonymous_http.post(f"{INGESTIONS}/{mine['run_id']}/rollback", headers=scoped)
    assert undone.status_code == 200 and undone.json()["status"] == "rolled_back"


async def test_one_brand_has_one_spelling_whichever_way_it_is_written(http: httpx.AsyncClient) -> None:
    """``Nordvik`` through the API, then ``nordvik`` and ``NORDVIK`` through a feed and a PUT: one brand
    in facets and on every product, spelled as it was first stored."""
    from tests.builders import payload, variant

    created = await http.post("/api/v1/products", json=payload("NV1", brand="Nordvik", variants=[variant("NV1-A")]))
    assert created.status_code == 201, created.text
    row = {**ROWS[0], "brand": "nordvik", "style_id": "NV2", "sku": "NV2-A", "gtin": None}
    started = await post_feed(http, ndjson([row]))
    assert (await finished(http, started.json()["run_id"]))["counts"]["created"] == 1
    second = (await http.get("/api/v1/products/nordvik-nv2")).json()
    assert second["brand"] == "Nordvik"
    body = {**second, "brand": "NORDVIK", "name": "Renamed"}
    replaced = await http.put("/api/v1/products/nordvik-nv2", json=body, headers={"If-Match": f'"{second["version"]}"'})
    assert replaced.status_code == 200 and replaced.json()["brand"] == "Nordvik"
    facets = (await http.get("/api/v1/products/facets")).json()
    assert [item for item in facets["brand"] if item["value"].lower() == "nordvik"] == [
        {"value": "Nordvik", "count": 2}
    ]
