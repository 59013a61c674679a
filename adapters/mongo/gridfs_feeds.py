"""Feed bodies in MongoDB's GridFS (bucket ``feeds``), so that any worker can execute any run.

The body is streamed in chunk by chunk as it is uploaded (never held whole), under the run id as
file name with its suffix in the metadata; an executor streams it down to its own spool (the
readers read files) and removes its copy when the run is done. The body is deleted when its run
ends, but kept for a failed run (``keep``: ``metadata.expires_at``), which ``expire`` deletes once
that passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from gridfs import AsyncGridFSBucket
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from adapters.feeds.readers import FeedFile, format_for
from adapters.files.feed_spool import FeedSpool
from application.ingestion import FeedSource
from application.run_execution import FeedMissing, FeedStore
from domain.ingestion import IngestionRun

BUCKET = "feeds"
KEEP_FAILED = timedelta(days=7)
#: The indexes GridFS needs (the driver would create the first two on the first upload) and the expiry's.
INDEXES = {
    f"{BUCKET}.files": [
        IndexModel([("filename", ASCENDING), ("uploadDate", ASCENDING)], name="filename_1_uploadDate_1"),
        IndexModel([("metadata.expires_at", ASCENDING)], name="by_expiry"),
    ],
    f"{BUCKET}.chunks": [IndexModel([("files_id", ASCENDING), ("n", ASCENDING)], name="files_id_1_n_1", unique=True)],
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


class GridFsFeeds(FeedStore):
    def __init__(
        self,
        database: AsyncDatabase[Any],
        spool: FeedSpool,
        keep_for: timedelta = KEEP_FAILED,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.bucket = AsyncGridFSBucket(database, bucket_name=BUCKET)
        self.files = database[f"{BUCKET}.files"]
        self.spool = spool
        self.keep_for = keep_for
        self.clock = clock

    async def put(self, run_id: str, suffix: str, chunks: AsyncIterator[bytes]) -> None:
        upload = self.bucket.open_upload_stream(run_id, metadata={"run_id": run_id, "suffix": suffix})
        try:
            async for chunk in chunks:
                await upload.write(chunk)
        except BaseException:
            await asyncio.shield(upload.abort())
            raise
        await upload.close()

    async def _newest(self, run_id: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = await self.files.find_one(
            {"filename": run_id}, sort=[("uploadDate", DESCENDING)]
        )
        return found

    @contextlib.asynccontextmanager
    async def opened(self, run: IngestionRun) -> AsyncIterator[FeedSource]:
        stored = await self._newest(run.run_id)
        if stored is None:
            raise FeedMissing(f"no stored feed for run {run.run_id}")
        suffix = str((stored.get("metadata") or {}).get("suffix") or ".ndjson")
        handle, path = self.spool.create(run.run_id, suffix)
        try:
            with os.fdopen(handle, "wb") as out:
                download = await self.bucket.open_download_stream(stored["_id"])
                while chunk := await download.readchunk():
                    out.write(chunk)
                await download.close()
            yield FeedFile(path, *format_for(path), name=run.source)
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)

    async def discard(self, run_id: str) -> None:
        async for stored in self.files.find({"filename": run_id}, {"_id": 1}):
            await self.bucket.delete(stored["_id"])

    async def keep(self, run_id: str) -> None:
        expires_at = self.clock() + self.keep_for
        await self.files.update_many({"filename": run_id}, {"$set": {"metadata.expires_at": expires_at}})

    async def expire(self) -> int:
        """Deletes the kept feeds whose time is up; how many."""
        deleted = 0
        async for stored in self.files.find({"metadata.expires_at": {"$lt": self.clock()}}, {"_id": 1}):
            await self.bucket.delete(stored["_id"])
            deleted += 1
        return deleted


async def ensure_feed_indexes(database: AsyncDatabase[Any]) -> list[str]:
    """For ``eyewear migrate``: the feeds bucket's indexes, created if missing."""
    changes: list[str] = []
    for name, indexes in INDEXES.items():
        existing = {index["name"] async for index in await database[name].list_indexes()}
        missing = [index for index in indexes if index.document["name"] not in existing]
        if missing:
            await database[name].create_indexes(missing)
            changes += [f"created index {name}.{index.document['name']}" for index in missing]
    return changes
