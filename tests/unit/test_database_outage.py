"""How the HTTP layer answers while the database is out: the gate, the driver-error mapping, the probes.

The database's state comes from a stand-in for the embedded server's supervisor (a `ServerHealth`
we set) and the driver's errors are raised by a route, as the driver raises them; the real
outages, with real processes, are in tests/e2e/test_process_faults.py and
tests/integration/test_database_outage_http.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI
from pymongo.errors import (
    AutoReconnect,
    DuplicateKeyError,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
)

from adapters.embedded import ServerHealth, ServerState
from entrypoints.http import health
from entrypoints.http.database_outage import UNKNOWN_OUTAGE_RETRY_AFTER, install_database_outage, unreachable
from entrypoints.http.problems import install_problem_handlers
from entrypoints.http.request_id import RequestIdMiddleware

RESTARTING = ServerHealth(ServerState.RESTARTING, detail="pid=7 exited with code -9", retry_after=2)
FAILED = ServerHealth(ServerState.FAILED, failures=3, detail="EmbeddedServerError: the storage is gone", retry_after=7)


@dataclass
class Watch:
    health: ServerHealth = field(default_factory=ServerHealth)


@dataclass
class Calls:
    route: int = 0
    mongo_probe: int = 0
    raise_error: PyMongoError | None = None
    then_health: ServerHealth | None = None


def build(watch: Watch | None, calls: Calls) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    install_database_outage(app)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(health.router)

    async def mongo_probe() -> None:
        calls.mongo_probe += 1

    async def cache_probe() -> None:
        return None

    app.state.readiness_probes = {"mongodb": mongo_probe, "cache": cache_probe}
    app.state.database_watch = watch

    @app.get("/api/v1/products")
    async def products() -> dict[str, list[str]]:
        calls.route += 1
        if calls.then_health is not None and watch is not None:
            watch.health = calls.then_health  # the server died while this request was being served
        if calls.raise_error is not None:
            raise calls.raise_error
        return {"items": []}

    @app.post("/oauth/token")
    async def token() -> dict[str, str]:
        calls.route += 1
        return {"access_token": "x"}

    return app


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
async def http(watch: Watch, calls: Calls) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build(watch, calls), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://catalog.test") as client:
        yield client


def assert_unavailable(answer: httpx.Response, retry_after: int) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == str(retry_after)
    body = answer.json()
    assert body["type"] == "https://eyewear-catalog.dev/problems/service-unavailable"
    assert (body["status"], body["title"]) == (503, "Service unavailable")
    assert body["correlation_id"] == answer.headers["x-request-id"]


@pytest.mark.parametrize(
    "error",
    [
        ServerSelectionTimeoutError("127.0.0.1:1: [Errno 111] Connection refused, Timeout: 10s"),
        NetworkTimeout("127.0.0.1:1: timed out"),
        AutoReconnect("connection closed"),
        WaitQueueTimeoutError("no connection within 10000ms"),
        ExecutionTimeout("operation exceeded time limit", code=50),
    ],
    ids=lambda error: type(error).__name__,
)
async def test_a_driver_timeout_is_503_with_retry_after_not_500(
    http: httpx.AsyncClient, calls: Calls, error: PyMongoError
) -> None:
    calls.raise_error = error
    answer = await http.get("/api/v1/products", headers={"X-Request-ID": "outage-1"})
    assert_unavailable(answer, UNKNOWN_OUTAGE_RETRY_AFTER)
    assert answer.json()["correlation_id"] == "outage-1"


@pytest.mark.parametrize(
    "error",
    [OperationFailure("unknown operator: $frob", code=2), DuplicateKeyError("E11000 duplicate key", code=11000)],
    ids=lambda error: type(error).__name__,
)
async def test_a_driver_error_that_is_no_outage_stays_a_500(
    http: httpx.AsyncClient, calls: Calls, error: PyMongoError
) -> None:
    calls.raise_error = error
    answer = await http.get("/api/v1/products")
    assert answer.status_code == 500
    assert answer.json()["type"] == "about:blank"
    assert not unreachable(error)


async def test_a_known_outage_is_answered_before_the_route_runs(
    http: httpx.AsyncClient, watch: Watch, calls: Calls
) -> None:
    watch.health = RESTARTING
    assert_unavailable(await http.get("/api/v1/products"), 2)
    assert_unavailable(await http.post("/oauth/token"), 2)
    assert calls.route == 0, "nothing waited for the database"
    assert (await http.get("/health/live")).json() == {"status": "ok"}, "restarting is not dead"
    ready = await http.get("/health/ready")
    assert (ready.status_code, ready.json()["checks"]["mongodb"]) == (503, "error")
    assert calls.mongo_probe == 0, "a known outage needs no ping to time out"
    watch.health = ServerHealth(ServerState.RUNNING, restarts=1)
    assert (await http.get("/api/v1/products")).json() == {"items": []}
    assert (await http.get("/health/ready")).status_code == 200 and calls.mongo_probe == 1


async def test_liveness_fails_only_when_restarts_keep_failing(http: httpx.AsyncClient, watch: Watch) -> None:
    watch.health = FAILED
    live = await http.get("/health/live")
    assert live.status_code == 503
    assert live.json() == {
        "status": "failing",
        "checks": {"mongodb": "failed"},
        "detail": "EmbeddedServerError: the storage is gone",
    }
    assert_unavailable(await http.get("/api/v1/products"), 7)


async def test_a_timeout_of_a_request_that_passed_the_gate_before_the_death_gets_the_supervisors_retry_after(
    http: httpx.AsyncClient, calls: Calls
) -> None:
    calls.raise_error = ServerSelectionTimeoutError("no primary")
    calls.then_health = RESTARTING
    assert_unavailable(await http.get("/api/v1/products"), 2)


async def test_without_a_watch_only_the_driver_tells(calls: Calls) -> None:
    transport = httpx.ASGITransport(app=build(None, calls), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://catalog.test") as client:
        assert (await client.get("/health/live")).json() == {"status": "ok"}
        assert (await client.get("/api/v1/products")).status_code == 200
        calls.raise_error = NetworkTimeout("timed out")
        assert_unavailable(await client.get("/api/v1/products"), UNKNOWN_OUTAGE_RETRY_AFTER)
