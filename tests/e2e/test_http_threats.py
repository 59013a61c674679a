"""Threat detection through HTTP: refused, audited, counted; repeated offenders get 429."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.builders import payload

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


async def test_server_side_javascript_and_markup_are_refused(
    anonymous_http: httpx.AsyncClient, issue: Callable[..., str]
) -> None:
    headers = {"Authorization": f"Bearer {issue('admin', subject='jay')}"}
    js = await anonymous_http.post(PRODUCTS, json=payload(name="function() { return sleep(5000) }"), headers=headers)
    assert js.status_code == 422 and js.json()["errors"][0]["code"] == "threat_detected"
    markup = await anonymous_http.post(PRODUCTS, json=payload(brand="<b>Ray</b>"), headers=headers)
    assert markup.status_code == 422 and markup.json()["errors"][0]["field"] == "brand"
    assert {r["reason"] for r in await audit_of(anonymous_http, issue, "jay")} == {"server_side_js", "markup"}


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
