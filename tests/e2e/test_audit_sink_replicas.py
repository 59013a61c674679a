"""CONTRACT.md section 6: ``GET /api/v1/audit`` on any replica lists the decisions of every replica
within 1 s, with either ``EYEWEAR_AUDIT_SINK``. Two apps, each built by its own container with its
own data dir, share one database; one decides, the other lists. And with the database sink, a
decision whose record MongoDB did not take is not answered (CONTRACT.md 4.2: fail closed)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from entrypoints.container import Container, resolve
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.integration.test_bulk_faults import fail_point

PROMISE = 1.0
APP = "eyewear-catalog"  # the app's client names itself so: the fail points aim at its inserts


@contextlib.asynccontextmanager
async def replica(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Container]]:
    container = Container(settings=settings)
    app = create_app(container)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://replica.test") as client:
            yield client, container


def bearer(container: Container, subject: str, role: str) -> dict[str, str]:
    issued = container.token_issuer().issue(subject=subject, roles=[role], ttl_seconds=300)
    return {"Authorization": f"Bearer {issued.token}"}


@pytest.mark.parametrize("sink", ["database", "journal"])
async def test_a_replica_lists_the_decisions_another_made(mongo_url: str, tmp_path: Path, sink: str) -> None:
    base = Settings(mongodb_url=mongo_url, mongodb_db=f"eyewear_replicas_{uuid.uuid4().hex[:8]}", audit_sink=sink)
    one, other = (base.model_copy(update={"data_dir": tmp_path / name}) for name in ("one", "other"))
    async with replica(one) as (deciding, deciding_app), replica(other) as (listing, listing_app):
        viewer = bearer(deciding_app, "vicky", "viewer")
        auditor = bearer(listing_app, "audrey", "auditor")
        assert (await deciding.get("/api/v1/products/nobody-nothing", headers=viewer)).status_code == 404
        assert (await deciding.post("/api/v1/products", json={}, headers=viewer)).status_code == 403
        answered = time.monotonic()
        while True:
            listed = await listing.get("/api/v1/audit", params={"actor": "vicky"}, headers=auditor)
            waited = time.monotonic() - answered
            items = listed.json()["items"]
            if sink == "database" or len(items) == 2 or waited > PROMISE:
                break  # the database sink must show them at the first look
            await asyncio.sleep(0.02)
        assert sorted((item["action"], item["decision"]) for item in items) == [
            ("product:read", "allow"),
            ("product:write", "deny"),
        ]
        assert waited < PROMISE
        # The database sink keeps nothing on the replica's disk (ephemeral disks).
        assert (one.data_dir / "audit-journal").is_dir() == (sink == "journal")
        database = await resolve(deciding_app.database)
        await database.client.drop_database(database.name)


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ({"errorCode": 2}, 500),  # refused: a fault, as a synchronous insert's was
        ({"closeConnection": True}, 503),  # MongoDB unreachable, after the retries: retry later
    ],
)
async def test_with_the_database_sink_a_decision_mongodb_did_not_store_is_not_answered(
    mongo_url: str, tmp_path: Path, fault: dict[str, object], status: int
) -> None:
    settings = Settings(
        mongodb_url=mongo_url,
        mongodb_db=f"eyewear_unaudited_{uuid.uuid4().hex[:8]}",
        audit_sink="database",
        data_dir=tmp_path,
        mongodb_timeout_ms=1000,  # each attempt of the insert gives up after it (the sink retries for 5 s)
    )
    async with replica(settings) as (http, container):
        viewer = bearer(container, "fenella", "viewer")
        database = await resolve(container.database)
        async with fail_point(database.client, ["insert"], "alwaysOn", app=APP, **fault):
            refused = await http.get("/api/v1/products/nobody-nothing", headers=viewer)
        assert refused.status_code == status, refused.text
        assert await database["audit_log"].count_documents({"actor": "fenella"}) == 0
        answered = await http.get("/api/v1/products/nobody-nothing", headers=viewer)
        assert answered.status_code == 404  # MongoDB takes inserts again: so does the sink
        assert await database["audit_log"].count_documents({"actor": "fenella"}) == 1
        await database.client.drop_database(database.name)
