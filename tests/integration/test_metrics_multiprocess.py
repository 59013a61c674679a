"""PROMETHEUS_MULTIPROC_DIR: what each process counted is added up by any process's exposition."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.metrics.prometheus import MULTIPROC_ENV, PrometheusMetrics

WORKER = """
from adapters.metrics.prometheus import PrometheusMetrics
metrics = PrometheusMetrics()
metrics.cache_request("hit")
metrics.http_request("GET", "/api/v1/products/{product_id}", 404, 0.01)
metrics.mongodb_pool(3, 1)
"""


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_exposition_merges_every_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**os.environ, MULTIPROC_ENV: str(tmp_path), "PYTHONPATH": str(Path.cwd())}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", WORKER], env=env, check=True, timeout=60)
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    merged = samples(PrometheusMetrics().exposition().decode())
    assert merged[("eyewear_cache_requests_total", (("result", "hit"),))] == 2
    route = (("method", "GET"), ("route", "/api/v1/products/{product_id}"), ("status", "404"))
    assert merged[("eyewear_http_requests_total", route)] == 2
    assert merged[("eyewear_mongodb_pool_connections", (("state", "in_use"),))] == 2  # livesum
    assert merged[("eyewear_mongodb_pool_connections", (("state", "open"),))] == 6


def test_without_the_directory_the_process_registry_is_exported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    metrics = PrometheusMetrics()
    metrics.cache_error()
    assert samples(metrics.exposition().decode())[("eyewear_cache_errors_total", ())] == 1
