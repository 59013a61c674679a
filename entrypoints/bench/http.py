"""``http.get_sku``: ``GET /api/v1/skus/{sku}`` over a real uvicorn socket against a bare endpoint.

Two uvicorn servers run in this process, on this event loop, on free loopback ports: the real
app (``create_app`` on a container of its own over the scratch database: its lifespan, its
middleware, the bearer guard, the use case, the cache) and a bare FastAPI app whose one route
returns, as pre-built bytes, the very body the real app sent for the same SKU. One keep-alive
httpx client sends sequential requests to both in alternating blocks; its own cost is in both
numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI
from starlette.responses import Response

from adapters.embedded.process import free_port
from entrypoints.bench.ingestion import BenchFailed, StoredCatalog
from entrypoints.bench.measure import Result, Sizes, side_by_side
from entrypoints.bench.session import Session
from entrypoints.container import Container
from entrypoints.http.app import create_app

HOST = "127.0.0.1"
ROTATION = 100


class _InProcessServer(uvicorn.Server):
    """Leaves signals to the bench: Ctrl-C cancels the run, whose cleanup stops the servers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(app: Any, lifespan: Literal["on", "off"]) -> AsyncIterator[str]:
    port = free_port(HOST)
    config = uvicorn.Config(app, host=HOST, port=port, log_config=None, access_log=False, lifespan=lifespan)
    server = _InProcessServer(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                raise BenchFailed(f"uvicorn did not start on {HOST}:{port}: {task.exception()!r}")
            await asyncio.sleep(0.01)
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task


def bare_app(bodies: dict[str, bytes]) -> FastAPI:
    app = FastAPI()

    @app.get("/bare/{sku}")
    async def bare(sku: str) -> Response:
        return Response(bodies[sku], media_type="application/json")

    return app


async def http_results(session: Session, sizes: Sizes, catalog: StoredCatalog) -> list[Result]:
    import httpx  # the bench extra (and the dev one) brings it

    security = await session.get("security")
    token = security.issuer.issue(subject="bench-reader", roles=["viewer"], ttl_seconds=3600).token
    owners = catalog.sku_owners
    skus = [sku for sku, _ in owners[:: max(1, len(owners) // ROTATION)][:ROTATION]]
    bodies: dict[str, bytes] = {}
    app = create_app(Container(settings=session.settings))
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        serving(app, "on") as ours_url,
        serving(bare_app(bodies), "off") as bare_url,
        httpx.AsyncClient(headers=headers, timeout=10.0) as client,
    ):
        for sku in skus:  # fills the real app's cache, and gives the bare endpoint its bodies
            response = await client.get(f"{ours_url}/api/v1/skus/{sku}")
            if response.status_code != 200:
                raise BenchFailed(f"GET /api/v1/skus/{sku} answered {response.status_code}: {response.text[:200]}")
            bodies[sku] = response.content
        n = len(skus)

        async def ours(i: int) -> object:
            response = await client.get(f"{ours_url}/api/v1/skus/{skus[i % n]}")
            if response.status_code != 200:
                raise BenchFailed(f"GET /api/v1/skus/{skus[i % n]} answered {response.status_code}")
            return response

        async def bare(i: int) -> object:
            return (await client.get(f"{bare_url}/bare/{skus[i % n]}")).raise_for_status()

        mine, theirs = await side_by_side(ours, bare, sizes=sizes)
    size = sum(len(body) for body in bodies.values()) / max(1, n)
    return [
        Result(
            "http.get_sku",
            mine.p50_us,
            theirs.p50_us,
            "µs",
            f"one keep-alive httpx client, sequential requests, {n} SKUs in turn (bodies ~{size:,.0f} bytes),"
            f" cache hits; {mine.count:,} requests per side; ours {mine.describe()}, bare endpoint"
            f" {theirs.describe()}; client and servers share this process's event loop",
        )
    ]
