"""The worker factory: settings from the environment, uvicorn's lines through our logging."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from fastapi import FastAPI

from application.metrics import NoIngestionMetrics
from entrypoints.http.asgi import create


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield None
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_each_worker_builds_its_app_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, restored_logging: None
) -> None:
    monkeypatch.setenv("EYEWEAR_MONGODB_URL", "mongodb://127.0.0.1:9")
    monkeypatch.setenv("EYEWEAR_DATA_DIR", str(tmp_path))
    noisy = logging.getLogger("uvicorn.error")
    noisy.addHandler(logging.NullHandler())
    noisy.propagate = False
    assert isinstance(create(), FastAPI)  # nothing connects before the lifespan starts
    assert noisy.handlers == [] and noisy.propagate


def test_a_malformed_setting_stops_the_worker_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EYEWEAR_MONGODB_MAX_POOL_SIZE", "lots")
    with pytest.raises(SystemExit) as stopped:
        create()
    assert str(stopped.value).startswith("eyewear: ") and "EYEWEAR_MONGODB_MAX_POOL_SIZE" in str(stopped.value)


def test_the_ingestion_metrics_twin_accepts_every_report() -> None:
    twin = NoIngestionMetrics()
    assert twin.ingestion_rows("created", 3) is None
    assert twin.ingestion_run("failed", 1.5) is None
