"""A configured MongoDB (no supervisor to ask) that dies: the driver's timeout becomes a 503, not a 500."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx

from entrypoints.container import Container, resolve
from entrypoints.http.app import create_app
from entrypoints.http.database_outage import UNKNOWN_OUTAGE_RETRY_AFTER
from entrypoints.settings import Settings
from tests.support.servers import mongo_process

TIMEOUT_MS = 1500


def uncached() -> str:
    """A search no cache has seen, so that it must ask the database."""
    return f"/api/v1/products?limit=1&brand=b{uuid.uuid4().hex[:12]}"


async def test_a_dead_configured_database_answers_503_after_the_client_timeout_and_200_once_back(
    tmp_path: Path,
) -> None:
    with mongo_process(persistent=True) as server:
        settings = Settings(
            mongodb_url=server.url,
            mongodb_db=f"eyewear_outage_{uuid.uuid4().hex[:8]}",
            mongodb_timeout_ms=TIMEOUT_MS,
            data_dir=tmp_path,
        )
        container = Container(settings=settings)
        app = create_app(container)
        async with app.router.lifespan_context(app):
            assert app.state.database_watch is None, "a configured URL has no embedded supervisor"
            token = container.token_issuer().issue(subject="ops", roles=["admin"], ttl_seconds=600).token
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(transport=transport, base_url="http://catalog.test", headers=headers) as http:
                assert (await http.get(uncached())).status_code == 200
                server.kill()
                started = time.monotonic()
                answer = await http.get(uncached())
                waited = time.monotonic() - started
                assert answer.status_code == 503, answer.text
                assert answer.headers["retry-after"] == str(UNKNOWN_OUTAGE_RETRY_AFTER)
                assert answer.headers["content-type"] == "application/problem+json"
                assert answer.json()["correlation_id"] == answer.headers["x-request-id"]
                assert waited < 4 * TIMEOUT_MS / 1000, f"bounded by the client timeout, took {waited:.1f}s"
                assert (await http.get("/health/ready")).status_code == 503
                assert (await http.get("/health/live")).status_code == 200, "a remote outage is not ours to fix"
                server.start()  # same port: the client reconnects by itself
                deadline = time.monotonic() + 30
                while (await http.get(uncached())).status_code != 200:
                    assert time.monotonic() < deadline, "the API did not come back with the database"
                    await asyncio.sleep(0.05)
            database = await resolve(container.database)
            await database.client.drop_database(database.name)
