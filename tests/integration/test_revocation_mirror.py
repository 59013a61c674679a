"""The revocation mirror: another process's revocations arrive through the change stream, and a
mirror whose stream is not open never answers (MongoDB does, ADR 0010)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.errors import AutoReconnect, OperationFailure

from adapters.mongo.client import MongoOptions, create_client
from adapters.mongo.product_repository import MongoCatalog
from adapters.mongo.revocation_mirror import RevocationMirror
from adapters.mongo.revocations import MongoRevocationList


class Switchable:
    """The real revocations collection, whose change stream the test can break and keep down."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self.down = False
        self.streams: list[Any] = []

    async def watch(self, **options: Any) -> Any:
        if self.down:
            raise AutoReconnect("down, on purpose")
        stream = await self.collection.watch(**options)
        self.streams.append(stream)
        return stream

    def find(self, *args: Any, **kwargs: Any) -> Any:
        return self.collection.find(*args, **kwargs)

    async def break_stream(self) -> None:
        self.down = True
        await self.streams[-1].close()


class Unsupported:
    """A server without change streams (a standalone mongod)."""

    async def watch(self, **options: Any) -> Any:
        raise OperationFailure("The $changeStream stage is only supported on replica sets", code=40573)


def later() -> datetime:
    return datetime.now(UTC) + timedelta(minutes=15)


async def until(condition: Any, limit: float, what: str) -> float:
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() - started < limit, f"{what}: not within {limit}s"
        await asyncio.sleep(0.001)
    return time.monotonic() - started


async def live_within(mirror: RevocationMirror, limit: float = 5.0, *, live: bool = True) -> None:
    async def settled() -> bool:
        return mirror.live is live

    await until(settled, limit, "the mirror is live" if live else "the mirror noticed")


@pytest.fixture
async def elsewhere(mongo_url: str, mongo_catalog: MongoCatalog) -> AsyncIterator[MongoRevocationList]:
    """Another process's view: its own client, no mirror."""
    client: Any = create_client(mongo_url, MongoOptions())
    yield MongoRevocationList(client[mongo_catalog.database.name])
    await client.close()


async def test_a_revocation_made_elsewhere_is_mirrored_within_a_second(
    mongo_catalog: MongoCatalog, elsewhere: MongoRevocationList
) -> None:
    mirror = RevocationMirror.on(mongo_catalog.database)
    here = MongoRevocationList(mongo_catalog.database, mirror=mirror)
    await mirror.start()
    try:
        assert mirror.live
        for n in range(20):
            jti = f"elsewhere-{n}"
            assert not await here.is_revoked(jti)
            await elsewhere.revoke(jti, later())
            await until(lambda jti=jti: mirror.is_revoked(jti), 1.0, "mirrored")
            assert await here.is_revoked(jti)
        assert mirror.live  # every answer above came from memory
    finally:
        await mirror.stop()


async def test_the_revoking_process_refuses_at_once(mongo_catalog: MongoCatalog) -> None:
    """The mirror follows a collection nobody writes to, so only ``revoke`` itself can teach it."""
    mirror = RevocationMirror(mongo_catalog.database["revoked_tokens_unwritten"])
    here = MongoRevocationList(mongo_catalog.database, mirror=mirror)
    await mirror.start()
    try:
        assert mirror.live
        await here.revoke("mine", later())
        assert await mirror.is_revoked("mine")
        assert await here.is_revoked("mine")
    finally:
        await mirror.stop()


async def test_while_the_stream_is_down_checks_read_mongodb_and_a_reopening_reloads(
    mongo_catalog: MongoCatalog, elsewhere: MongoRevocationList
) -> None:
    collection = Switchable(mongo_catalog.database["revoked_tokens"])
    mirror = RevocationMirror(collection)
    here = MongoRevocationList(mongo_catalog.database, mirror=mirror)
    await elsewhere.revoke("before-start", later())
    await mirror.start()
    try:
        assert mirror.live and await mirror.is_revoked("before-start")  # the first snapshot

        await collection.break_stream()
        await live_within(mirror, live=False)
        await elsewhere.revoke("while-down", later())
        assert not await mirror.is_revoked("while-down")  # memory missed it…
        assert await here.is_revoked("while-down")  # …so the check fell through to MongoDB
        assert not await here.is_revoked("never")

        collection.down = False
        await live_within(mirror)
        assert await mirror.is_revoked("while-down")  # committed before the reopening: the snapshot
        assert await here.is_revoked("while-down") and await here.is_revoked("before-start")
    finally:
        await mirror.stop()
    assert not mirror.live
    await elsewhere.revoke("after-stop", later())
    assert await here.is_revoked("after-stop")  # a stopped mirror never answers


async def test_without_change_streams_every_check_reads_mongodb(
    mongo_catalog: MongoCatalog, elsewhere: MongoRevocationList
) -> None:
    mirror = RevocationMirror(Unsupported())
    here = MongoRevocationList(mongo_catalog.database, mirror=mirror)
    started = time.monotonic()
    await mirror.start()
    try:
        assert time.monotonic() - started < 1.0  # no waiting for a stream that will never come
        assert not mirror.live
        await elsewhere.revoke("elsewhere", later())
        assert await here.is_revoked("elsewhere")
        await here.revoke("here", later())
        assert await here.is_revoked("here")
    finally:
        await mirror.stop()


async def test_a_deletion_unrevokes_and_a_drop_forgets_everything(mongo_catalog: MongoCatalog) -> None:
    mirror = RevocationMirror.on(mongo_catalog.database)
    await mirror.remember("a", later())
    await mirror.remember("b", later())
    await mirror.apply({"operationType": "delete", "documentKey": {"_id": "a"}})
    assert not await mirror.is_revoked("a") and await mirror.is_revoked("b")
    await mirror.apply(
        {
            "operationType": "update",
            "documentKey": {"_id": "c"},
            "fullDocument": None,
            "updateDescription": {"updatedFields": {"expires_at": later()}},
        }
    )
    assert await mirror.is_revoked("c")
    await mirror.apply({"operationType": "drop"})
    assert not await mirror.is_revoked("b") and not await mirror.is_revoked("c")
