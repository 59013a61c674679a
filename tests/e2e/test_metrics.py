"""``/metrics`` as Prometheus scrapes it: CONTRACT.md 5 names and labels, low cardinality, live pool gauges."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from entrypoints.container import Container, resolve

PRODUCTS = "/api/v1/products"

#: CONTRACT.md section 5, restated: exposed name -> (type, label names).
CONTRACT: dict[str, tuple[str, set[str]]] = {
    "eyewear_http_requests_total": ("counter", {"method", "route", "status"}),
    "eyewear_http_request_duration_seconds": ("histogram", {"method", "route"}),
    "eyewear_mongodb_command_duration_seconds": ("histogram", {"command"}),
    "eyewear_mongodb_pool_connections": ("gauge", {"state"}),
    "eyewear_mongodb_pool_checkout_failures_total": ("counter", {"reason"}),
    "eyewear_cache_requests_total": ("counter", {"result"}),
    "eyewear_cache_errors_total": ("counter", set()),
    "eyewear_ingestion_rows_total": ("counter", {"outcome"}),
    "eyewear_ingestion_runs_total": ("counter", {"status"}),
    "eyewear_ingestion_duration_seconds": ("histogram", set()),
    "eyewear_auth_failures_total": ("counter", {"reason"}),
    "eyewear_authz_decisions_total": ("counter", {"decision"}),
    "eyewear_threats_detected_total": ("counter", {"kind"}),
}
#: Beyond section 5, for the alerts of deploy/prometheus/alerts.yml: the runs waiting (counted by the
#: sweep) and the audit journal's backlog.
OPERATIONS: dict[str, tuple[str, set[str]]] = {
    "eyewear_ingestion_runs_unfinished": ("gauge", {"status"}),
    "eyewear_audit_journal_pending_records": ("gauge", set()),
}
EXPORTED = CONTRACT | OPERATIONS


def exposed(text: str) -> dict[str, tuple[str, list[dict[str, str]]]]:
    """Exposed metric name -> (type, label sets of its value samples), as a scraper reads them.

    The client's ``*_created`` timestamps parse as families of their own in the text format; they
    are not metrics of ours and are left out.
    """
    found: dict[str, tuple[str, list[dict[str, str]]]] = {}
    for family in text_string_to_metric_families(text):
        if family.name.endswith("_created"):
            continue
        if family.type == "counter":
            name, value_suffix = family.name + "_total", "_total"
        elif family.type == "histogram":
            name, value_suffix = family.name, "_count"
        else:
            name, value_suffix = family.name, ""
        labels = [dict(s.labels) for s in family.samples if s.name == family.name + value_suffix]
        found[name] = (family.type, labels)
    return found


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_every_contract_metric_is_exposed_with_exactly_its_labels(
    anonymous_http: httpx.AsyncClient, issue: Callable[..., str]
) -> None:
    viewer = {"Authorization": f"Bearer {issue('viewer', subject=f'm-{uuid.uuid4().hex[:6]}')}"}
    await anonymous_http.get(PRODUCTS, headers=viewer)
    await anonymous_http.get(PRODUCTS, headers={"Authorization": "Bearer junk"})
    await anonymous_http.get(f"{PRODUCTS}?brand[$ne]=x", headers=viewer)
    found = exposed(await scrape(anonymous_http))
    ours = {name for name in found if name.startswith("eyewear_")}
    assert ours == set(EXPORTED), ours ^ set(EXPORTED)
    for name, (kind, labels) in EXPORTED.items():
        found_kind, samples = found[name]
        assert found_kind == kind, name
        assert samples, f"{name} has no sample"
        assert all(set(sample) == labels for sample in samples), (name, samples)
    states = {s["state"] for s in found["eyewear_mongodb_pool_connections"][1]}
    assert states == {"open", "in_use", "idle"}
    assert {s["result"] for s in found["eyewear_cache_requests_total"][1]} == {"hit", "miss"}


async def test_the_route_label_is_the_template_never_the_raw_path(
    http: httpx.AsyncClient,
) -> None:
    missing = f"x{uuid.uuid4().hex[:8]}"
    assert (await http.get(f"{PRODUCTS}/{missing}")).status_code == 404
    assert (await http.get(f"/api/v1/skus/{missing}")).status_code == 404
    assert (await http.get(f"/no/such/{missing}")).status_code == 404
    text = await scrape(http)
    assert missing not in text
    values = {v for family in text_string_to_metric_families(text) for s in family.samples for v in s.labels.values()}
    assert missing not in values and "x" not in values
    requests = exposed(text)["eyewear_http_requests_total"][1]
    assert {"method": "GET", "route": f"{PRODUCTS}/{{product_id}}", "status": "404"} in requests
    assert {"method": "GET", "route": "/api/v1/skus/{sku}", "status": "404"} in requests
    assert {"method": "GET", "route": "unmatched", "status": "404"} in requests
    durations = exposed(text)["eyewear_http_request_duration_seconds"][1]
    assert {"method": "GET", "route": f"{PRODUCTS}/{{product_id}}"} in durations


async def test_a_body_refused_before_routing_is_still_labelled_by_its_template(http: httpx.AsyncClient) -> None:
    huge = b"x" * (1024 * 1024 + 1)
    response = await http.post(PRODUCTS, content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413
    requests = exposed(await scrape(http))["eyewear_http_requests_total"][1]
    assert {"method": "POST", "route": PRODUCTS, "status": "413"} in requests


class InUseSampler:
    """Reads the in-use gauge while each command still holds its connection (before check-in)."""

    def __init__(self, metrics: Any) -> None:
        self.metrics = metrics
        self.seen: list[float] = []

    def gauge(self, state: str) -> float:
        value = self.metrics.registry.get_sample_value("eyewear_mongodb_pool_connections", {"state": state})
        return float(value)

    def mongodb_command(self, command: str, seconds: float) -> None:
        self.seen.append(self.gauge("in_use"))

    def mongodb_pool(self, open_connections: int, in_use: int) -> None: ...

    def mongodb_checkout_failure(self, reason: str) -> None: ...


async def checked_in(sampler: InUseSampler, within: float = 5.0) -> dict[str, float]:
    """The three pool gauges, read together once no connection is checked out."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        gauges = {state: sampler.gauge(state) for state in ("open", "in_use", "idle")}
        if gauges["in_use"] == 0:
            return gauges
        assert asyncio.get_running_loop().time() < deadline, f"a connection stays checked out: {gauges}"
        await asyncio.sleep(0.02)


async def test_pool_gauges_move_when_connections_are_checked_out(
    app_and_container: tuple[Any, Container], anonymous_http: httpx.AsyncClient
) -> None:
    _, container = app_and_container
    metrics = await resolve(container.metrics)
    monitor = await resolve(container.monitor)
    database = await resolve(container.database)
    sampler = InUseSampler(metrics)
    monitor.observers.append(sampler)
    try:
        await asyncio.gather(*(database.command("ping") for _ in range(8)))
    finally:
        monitor.observers.remove(sampler)
    assert len(sampler.seen) == 8
    assert min(sampler.seen) >= 1, sampler.seen
    gauges = {s["state"]: s for s in exposed(await scrape(anonymous_http))["eyewear_mongodb_pool_connections"][1]}
    assert set(gauges) == {"open", "in_use", "idle"}
    settled = await checked_in(sampler)  # the app's own background work (sweeps, shipping) may hold one a moment
    assert settled["open"] >= 1
    assert settled["idle"] == settled["open"]
    commands = exposed(await scrape(anonymous_http))["eyewear_mongodb_command_duration_seconds"][1]
    assert {"command": "ping"} in commands
