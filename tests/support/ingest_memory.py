"""Peak memory of one ingestion run over a feed file, in a fresh process (run as a script).

    python -m tests.support.ingest_memory FEED

Prints ``{"peak_rss_kib": …, "counts": {…}, "status": …}``. The process imports what
``eyewear ingest`` imports (the container), so its baseline is a real one. The catalog is a sink
that keeps only the last batch's fingerprints (to answer the read-back): the number is the
pipeline's own memory — reader, batches, the run's digests — not a database's.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import resource
import sys
from collections.abc import AsyncIterator, Collection, Sequence
from pathlib import Path

import entrypoints.container  # noqa: F401  (the real process's imports: a real baseline)
from adapters.feeds.readers import FeedFile
from adapters.feeds.render import write_jsonl
from adapters.feeds.sample_feed import generate_rows
from adapters.memory.audit_log import MemoryAuditLog
from adapters.memory.clock import FixedClock
from adapters.memory.ingestion_runs import MemoryIngestionRuns
from application.authorization import Authorizer, system_caller
from application.ingestion import IngestFeed
from domain.feed_rows import fields_hash, variant_hash
from domain.history import HistoryEntry
from domain.ports import BulkCatalog, Fingerprint, ProductWrite
from domain.product import Product
from tests.builders import SANITIZER


class SinkCatalog(BulkCatalog):
    """Knows no product and keeps no write: the pipeline's memory, measured alone."""

    def __init__(self) -> None:
        self.last: dict[str, Fingerprint] = {}
        self.written = 0

    async def fingerprints(self, product_ids: Collection[str]) -> dict[str, Fingerprint]:
        return {pid: self.last[pid] for pid in product_ids if pid in self.last}

    async def sku_owners(self, skus: Collection[str]) -> dict[str, str]:
        return {}

    async def gtin_owners(self, gtins: Collection[str]) -> dict[str, str]:
        return {}

    async def get_many(self, product_ids: Collection[str]) -> dict[str, Product]:
        return {}

    async def write_batch(self, writes: Sequence[ProductWrite]) -> None:
        self.written += len(writes)
        self.last = {}
        for write in writes:
            if write.after is not None:
                after = write.after
                hashes = {v.sku: variant_hash(v) for v in after.variants}
                self.last[after.product_id] = Fingerprint(
                    after.product_id, after.version, fields_hash(after.draft), hashes
                )

    async def count_entries(self, source: str) -> int:
        return self.written

    async def entries_from(self, source: str) -> AsyncIterator[HistoryEntry]:
        return
        yield  # an empty async generator


def write_feed(path: Path, rows: int) -> None:
    """A generated feed of ``rows`` rows (about four per style)."""
    write_jsonl(itertools.islice(generate_rows(styles=rows // 3 + 1, seed=1), rows), path)


async def measure(feed: Path) -> dict[str, object]:
    clock = FixedClock()
    ingest = IngestFeed(SinkCatalog(), MemoryIngestionRuns(), clock, SANITIZER, Authorizer(MemoryAuditLog(), clock))
    run = await ingest(FeedFile(feed), system_caller("memory-test"))
    return {
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "counts": run.counts.as_dict(),
        "status": run.status.value,
        "failed_checks": [check.name for check in run.checks if not check.passed],
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(measure(Path(sys.argv[1])))))
