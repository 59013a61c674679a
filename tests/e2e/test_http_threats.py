"""Threat detection through HTTP: refused, audited, counted; repeated offenders get 429."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from adapters.feeds.sample_feed import generate_rows
from domain.feed_rows import FeedRow, parse_feed_row
from domain.product import Product
from domain.snapshot import product_to_dict
from tests.builders import SANITIZER, T0, payload
from tests.e2e.test_http_ingestion import INGESTIONS, finished, ndjson
from tests.unit.test_one_rule_set import BASE, TEXT_FIELDS, texts

PRODUCTS = "/api/v1/products"


async def audit_of(http: httpx.AsyncClient, issue: Callable[..., str], subject: str) -> list[dict[str, Any]]:
    response = await http.get(
        "/api/v1/audit",
        params={"actor": subject, "action": "threat_detected"},
        headers={"Authorization": f"Bearer {issue('auditor', subject='aud')}"},
    )
    return list(response.json()["items"])


async def test_operator_keys_in_a_body_are_refused_and_audited(
    anonymous_http: httpx.AsyncClient, issue: Callable[..., str]
) -> None:
    headers = {"Authorization": f"Bearer {issue('admin', subject='eve')}", "X-Request-ID": "threat-1"}
    body = payload()
    body["variants"][0]["stock_quantity"] = {"$gt": 0}
    response = await anonymous_http.post(PRODUCTS, json=body, headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "field": "variants[0].stock_quantity.$gt",
        "code": "threat_detected",
        "message": "keys starting with '$' or containing '.' are not accepted",
    }
    records = await audit_of(anonymous_http, issue, "eve")
    assert [(r["reason"], r["decision"], r["correlation_id"]) for r in records] == [
        ("operator_injection", "deny", "threat-1")
    ]
    assert (await anonymous_http.get(f"{PRODUCTS}/ray-ban-rb3016", headers=headers)).status_code == 404


async def test_javascript_shaped_text_is_data_and_markup_is_refused(
    anonymous_http: httpx.AsyncClient, issue: Callable[..., str]
) -> None:
    """FEED.md's text rule, in the API as in the feed: a name that spells JavaScript is plain text
    (stored, never evaluated), markup in plain text is a threat."""
    headers = {"Authorization": f"Bearer {issue('admin', subject='jay')}"}
    name = "function() { return sleep(5000) }"
    js = await anonymous_http.post(PRODUCTS, json=payload(name=name), headers=headers)
    assert js.status_code == 201, js.text
    assert js.json()["name"] == name
    markup = await anonymous_http.post(PRODUCTS, json=payload(brand="<b>Ray</b>"), headers=headers)
    assert markup.status_code == 422 and markup.json()["errors"][0]["field"] == "brand"
    assert [r["reason"] for r in await audit_of(anonymous_http, issue, "jay")] == ["markup"]


def nested(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


async def test_deeply_nested_bodies_are_a_422_threat_not_a_500(
    anonymous_http: httpx.AsyncClient, issue: Callable[..., str]
) -> None:
    """Past the decoder's recursion limit (about 1000 levels) and below it, on every JSON route;
    each is a strike (a subject per request here, so that no block hides an answer)."""
    subjects: list[str] = []
    for depth in (9, 999, 1000, 5000, 200_000):
        for method, path, body in (
            ("POST", PRODUCTS, b'{"name": "x", "variants": ' + nested(depth) + b"}"),
            ("PUT", "/api/v1/stores/deep", b'{"name": "x", "categories": ' + nested(depth) + b"}"),
            ("PATCH", "/api/v1/skus/RB3016-X", nested(depth)),
        ):
            subjects.append(f"nesty-{len(subjects)}")
            headers = {
                "Authorization": f"Bearer {issue('admin', subject=subjects[-1])}",
                "content-type": "application/json",
                "If-Match": '"1"',
            }
            answer = await anonymous_http.request(method, path, content=body, headers=headers)
            if answer.status_code == 404:  # PATCH of an unknown SKU: looked up before its body is parsed
                assert method == "PATCH" and depth < 1000, (depth, answer.text[:200])
                subjects.pop()
                continue
            assert answer.status_code == 422, (depth, path, answer.text[:200])
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["errors"][0]["code"] == "threat_detected"
    for subject in subjects:
        assert [r["reason"] for r in await audit_of(anonymous_http, issue, subject)] == ["excessive_nesting"]


async def test_operator_injection_in_query_strings(
    anonymous_http: httpx.AsyncClient, issue: Callable[..., str]
) -> None:
    headers = {"Authorization": f"Bearer {issue('viewer', subject='quinn')}"}
    for query in ("brand[$ne]=x", "$where=1", "q=%7B%22%24gt%22%3A%22%22%7D"):
        response = await anonymous_http.get(f"{PRODUCTS}?{query}", headers=headers)
        assert response.status_code == 400, query
        assert response.json()["errors"][0]["code"] == "threat_detected"
    plain = await anonymous_http.get(PRODUCTS, params={"q": "Ray-Ban's $20 frames: 50% off a.b.c {x}"}, headers=headers)
    assert plain.status_code == 200


async def test_a_repeat_offender_is_shut_out_with_429(
    anonymous_http: httpx.AsyncClient, issue: Callable[..., str]
) -> None:
    headers = {"Authorization": f"Bearer {issue('viewer', subject='mallory')}"}
    statuses = [(await anonymous_http.get(f"{PRODUCTS}?brand[$ne]=x", headers=headers)).status_code for _ in range(6)]
    assert statuses[:5] == [400] * 5
    blocked = await anonymous_http.get(
        PRODUCTS,
        headers={"Authorization": f"Bearer {issue('viewer', subject='mallory')}", "X-Forwarded-For": "ignored"},
    )
    assert statuses[5] == 429 and blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0


async def test_oversized_bodies_are_413(http: httpx.AsyncClient) -> None:
    huge = b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    response = await http.post(PRODUCTS, content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["correlation_id"] == response.headers["x-request-id"]


async def test_security_events_are_counted_in_metrics(
    anonymous_http: httpx.AsyncClient, issue: Callable[..., str]
) -> None:
    def value(text: str, name: str) -> float:
        line = next((ln for ln in text.splitlines() if ln.startswith(name + " ")), None)
        return float(line.split()[-1]) if line else 0.0

    before = (await anonymous_http.get("/metrics")).text
    await anonymous_http.get(PRODUCTS, headers={"Authorization": "Bearer junk"})
    await anonymous_http.get(
        f"{PRODUCTS}?brand[$ne]=x", headers={"Authorization": f"Bearer {issue('viewer', subject='m2')}"}
    )
    await anonymous_http.get(PRODUCTS, headers={"Authorization": f"Bearer {issue('viewer', subject='m3')}"})
    response = await anonymous_http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    for name in (
        'eyewear_auth_failures_total{reason="malformed"}',
        'eyewear_threats_detected_total{kind="operator_injection"}',
        'eyewear_authz_decisions_total{decision="allow"}',
    ):
        assert value(after, name) == value(before, name) + 1, name
    assert "junk" not in after


async def test_a_feed_value_the_api_refused_now_round_trips_and_locks_nobody_out(
    http: httpx.AsyncClient, anonymous_http: httpx.AsyncClient, issue: Callable[..., str]
) -> None:
    """The attack: a feed stored ``color_name: "$where"``; an editor's GET then PUT of the same body
    was a 422 threat, and five of them blocked the editor. One rule set: every PUT is a 200."""
    row = {**next(generate_rows(styles=1, seed=8)), "color_name": "$where", "model_name": "function() {}"}
    started = await http.post(INGESTIONS, content=ndjson([row]), headers={"Content-Type": "application/x-ndjson"})
    assert (await finished(http, started.json()["run_id"]))["counts"]["created"] == 1
    editor = {"Authorization": f"Bearer {issue('editor', subject='ed')}"}
    sku = str(row["sku"]).upper()
    for _ in range(6):
        read = await anonymous_http.get(f"/api/v1/skus/{sku}", headers=editor)
        assert read.status_code == 200 and read.json()["variants"][0]["color_name"] == "$where"
        body = read.json()
        body["variants"][0]["stock_quantity"] += 1
        written = await anonymous_http.put(
            f"{PRODUCTS}/{body['product_id']}", json=body, headers={**editor, "If-Match": read.headers["etag"]}
        )
        assert written.status_code == 200, written.text
    assert await audit_of(anonymous_http, issue, "ed") == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(TEXT_FIELDS), texts, min_size=1))
@example(changes={"color_name": "$where"})
async def test_the_api_accepts_every_value_a_feed_row_was_accepted_with(
    app_and_container: tuple[Any, Any], issue: Callable[..., str], changes: dict[str, Any]
) -> None:
    """Any text the feed's parser accepts for a field, the API accepts for the same field: a product
    stored from such a row, sent back exactly as GET shows it, is created (a fresh style per example)."""
    outcome = parse_feed_row(FeedRow(1, {**BASE, **changes}), SANITIZER)
    if outcome.parsed is None:
        return  # the feed refused it: nothing stored, nothing to take back
    body = product_to_dict(Product.create(outcome.parsed.draft((outcome.parsed.variant,)), T0))
    body["variants"][0]["sku"] = f"H{uuid.uuid4().hex[:12].upper()}"
    body["variants"][0].pop("gtin", None)
    body["style_id"] = uuid.uuid4().hex[:10]
    app, _ = app_and_container
    headers = {"Authorization": f"Bearer {issue('admin', subject='round-trip')}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://catalog.test") as client:
        created = await client.post(PRODUCTS, json=body, headers=headers)
    assert created.status_code == 201, (changes, created.text)
