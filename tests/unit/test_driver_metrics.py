"""The driver monitor feeds the Prometheus adapter through its observer port, in closed label sets."""

from __future__ import annotations

import datetime

from pymongo import monitoring

from adapters.metrics.prometheus import PrometheusMetrics
from adapters.mongo.monitoring import DriverMonitor

ADDRESS = ("db.example", 27017)


def sample(metrics: PrometheusMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return float(value or 0.0)


def succeeded(name: str, micros: int) -> monitoring.CommandSucceededEvent:
    return monitoring.CommandSucceededEvent(
        datetime.timedelta(microseconds=micros), {"ok": 1}, name, 1, ADDRESS, 1, database_name="eyewear"
    )


def test_pool_events_set_open_in_use_and_idle() -> None:
    metrics = PrometheusMetrics()
    monitor = DriverMonitor([metrics])
    for connection_id in (1, 2, 3):
        monitor.connection_created(monitoring.ConnectionCreatedEvent(ADDRESS, connection_id))
    monitor.connection_checked_out(monitoring.ConnectionCheckedOutEvent(ADDRESS, 1, 0.001))
    monitor.connection_checked_out(monitoring.ConnectionCheckedOutEvent(ADDRESS, 2, 0.001))
    gauge = "eyewear_mongodb_pool_connections"
    assert (sample(metrics, gauge, state="open"), sample(metrics, gauge, state="in_use")) == (3, 2)
    assert sample(metrics, gauge, state="idle") == 1
    monitor.connection_checked_in(monitoring.ConnectionCheckedInEvent(ADDRESS, 1))
    monitor.connection_closed(monitoring.ConnectionClosedEvent(ADDRESS, 3, "idle"))
    assert (sample(metrics, gauge, state="open"), sample(metrics, gauge, state="in_use")) == (2, 1)
    assert sample(metrics, gauge, state="idle") == 1
    assert (monitor.stats.connections_open, monitor.stats.connections_in_use) == (2, 1)


def test_checkout_failures_are_counted_by_a_snake_case_reason() -> None:
    metrics = PrometheusMetrics()
    monitor = DriverMonitor([metrics])
    reasons = monitoring.ConnectionCheckOutFailedReason
    for reason in (reasons.TIMEOUT, reasons.TIMEOUT, reasons.POOL_CLOSED, reasons.CONN_ERROR, "somethingNew"):
        monitor.connection_check_out_failed(monitoring.ConnectionCheckOutFailedEvent(ADDRESS, reason, 0.5))
    name = "eyewear_mongodb_pool_checkout_failures_total"
    assert sample(metrics, name, reason="timeout") == 2
    assert sample(metrics, name, reason="pool_closed") == 1
    assert sample(metrics, name, reason="connection_error") == 1
    assert sample(metrics, name, reason="other") == 1
    assert sample(metrics, name, reason="somethingNew") == 0


def test_command_durations_are_labelled_by_a_known_command_or_other() -> None:
    metrics = PrometheusMetrics()
    monitor = DriverMonitor([metrics])
    seen: list[tuple[str, float]] = []
    monitor.command_observers.append(lambda command, seconds: seen.append((command, seconds)))
    monitor.succeeded(succeeded("find", 2_000))
    monitor.succeeded(succeeded("someAdminCommandNobodyExpects", 1_000))
    monitor.failed(
        monitoring.CommandFailedEvent(
            datetime.timedelta(microseconds=3_000), {"ok": 0}, "aggregate", 2, ADDRESS, 2, database_name="eyewear"
        )
    )
    name = "eyewear_mongodb_command_duration_seconds"
    assert sample(metrics, f"{name}_count", command="find") == 1
    assert sample(metrics, f"{name}_sum", command="find") == 0.002
    assert sample(metrics, f"{name}_count", command="other") == 1
    assert sample(metrics, f"{name}_count", command="aggregate") == 1
    assert seen == [("find", 0.002), ("other", 0.001), ("aggregate", 0.003)]
    assert monitor.stats.command_failures["aggregate"] == 1


def test_http_latency_buckets_hold_the_slo_edges() -> None:
    metrics = PrometheusMetrics()
    metrics.http_request("GET", "/api/v1/products/{product_id}", 200, 0.004)
    name = "eyewear_http_request_duration_seconds_bucket"
    labels = {"method": "GET", "route": "/api/v1/products/{product_id}"}
    for edge in ("0.005", "0.025", "0.1", "0.3"):
        assert sample(metrics, name, le=edge, **labels) == 1, edge


def test_ingestion_and_cache_ports_count_what_they_are_told() -> None:
    metrics = PrometheusMetrics()
    metrics.ingestion_rows("created", 40)
    metrics.ingestion_rows("invalid", 2)
    metrics.ingestion_run("succeeded", 12.5)
    metrics.cache_request("hit")
    metrics.cache_request("miss")
    metrics.cache_request("hit")
    metrics.cache_error()
    assert sample(metrics, "eyewear_ingestion_rows_total", outcome="created") == 40
    assert sample(metrics, "eyewear_ingestion_rows_total", outcome="invalid") == 2
    assert sample(metrics, "eyewear_ingestion_runs_total", status="succeeded") == 1
    assert sample(metrics, "eyewear_ingestion_runs_total", status="failed") == 0
    assert sample(metrics, "eyewear_ingestion_duration_seconds_sum") == 12.5
    assert sample(metrics, "eyewear_cache_requests_total", result="hit") == 2
    assert sample(metrics, "eyewear_cache_requests_total", result="miss") == 1
    assert sample(metrics, "eyewear_cache_errors_total") == 1
