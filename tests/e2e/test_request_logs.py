"""The app's log lines as an operator reads them: JSON, one request id per request, no token."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import structlog

from entrypoints.logging_setup import configure_logging

PRODUCTS = "/api/v1/products"


@pytest.fixture
def log_stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The app's JSON logs, captured as they would reach stderr."""
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("INFO", "json")
    yield stream
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def lines_since(stream: io.StringIO, offset: int) -> list[dict[str, Any]]:
    """The service's lines; the test's own HTTP client (httpx) logs too, outside any request."""
    lines = [json.loads(line) for line in stream.getvalue()[offset:].splitlines() if line.strip()]
    return [line for line in lines if not line.get("logger", "").startswith("httpx")]


async def test_every_line_of_a_request_carries_its_request_id(
    anonymous_http: httpx.AsyncClient, issue: Callable[..., str], log_stream: io.StringIO
) -> None:
    admin = {"Authorization": f"Bearer {issue('admin')}"}
    requests: list[tuple[str, str, dict[str, str]]] = [
        ("req-denied-1", f"{PRODUCTS}?limit=1", {"Authorization": "Bearer junk"}),
        ("req-missing-2", f"{PRODUCTS}/nope", admin),
        ("req-search-3", f"{PRODUCTS}?brand=Ray-Ban", admin),
    ]
    for request_id, path, headers in requests:
        offset = len(log_stream.getvalue())
        response = await anonymous_http.get(path, headers={**headers, "X-Request-ID": request_id})
        assert response.headers["x-request-id"] == request_id
        lines = lines_since(log_stream, offset)
        assert lines, request_id
        assert {line.get("request_id") for line in lines} == {request_id}, lines
        finished = [line for line in lines if line["event"] == "http.request.finished"]
        assert len(finished) == 1
        assert finished[0]["status"] == response.status_code
        assert finished[0]["method"] == "GET"
        assert finished[0]["logger"] == "entrypoints.http.metrics_middleware"
        assert isinstance(finished[0]["duration_ms"], float)
    denied = lines_since(log_stream, 0)
    assert any(line["event"] == "auth.denied" and line["request_id"] == "req-denied-1" for line in denied)
    routes = {line["request_id"]: line["route"] for line in denied if line["event"] == "http.request.finished"}
    assert routes["req-missing-2"] == f"{PRODUCTS}/{{product_id}}"


async def test_no_request_id_leaks_into_the_next_request(
    anonymous_http: httpx.AsyncClient, log_stream: io.StringIO
) -> None:
    await anonymous_http.get("/health/live", headers={"X-Request-ID": "first-1"})
    structlog.get_logger("after").info("outside.request")
    (line,) = [ln for ln in lines_since(log_stream, 0) if ln["event"] == "outside.request"]
    assert "request_id" not in line


async def test_tokens_sent_by_a_client_never_reach_the_logs(
    anonymous_http: httpx.AsyncClient, issue: Callable[..., str], log_stream: io.StringIO
) -> None:
    valid = issue("viewer", subject="log-reader")
    tampered = valid[:-4] + ("AAAA" if not valid.endswith("AAAA") else "BBBB")
    await anonymous_http.get(PRODUCTS, headers={"Authorization": f"Bearer {valid}"})
    await anonymous_http.get(PRODUCTS, headers={"Authorization": f"Bearer {tampered}"})
    await anonymous_http.get(f"{PRODUCTS}?q={valid}", headers={"Authorization": f"Bearer {valid}"})
    await anonymous_http.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "r-s3cr3t-42"})
    text = log_stream.getvalue()
    assert text, "nothing was logged"
    for secret in (valid, tampered, valid.split(".")[2], "r-s3cr3t-42"):
        assert secret not in text
