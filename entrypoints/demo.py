"""The demo catalog: the bundled sample feed, ingested through the pipeline when the catalog is empty."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import structlog

from adapters.feeds.readers import FeedFile
from adapters.feeds.render import write_jsonl
from adapters.feeds.sample_feed import generate_rows
from application.authorization import system_caller
from domain.search import SearchQuery
from entrypoints.container import Container, UseCases, resolve

SAMPLE_FEED = Path(__file__).resolve().parents[1] / "examples" / "sample-feed.jsonl"
DEMO_ACTOR = "demo"
log = structlog.get_logger(__name__)


async def load_demo_catalog(container: Container, path: Path = SAMPLE_FEED) -> None:
    catalog = await resolve(container.catalog)
    if (await catalog.search(SearchQuery(limit=1))).items:
        log.info("demo.catalog.present")
        return
    cases: UseCases = await resolve(container.use_cases)
    with tempfile.TemporaryDirectory(prefix="eyewear-demo-") as scratch:
        if not await asyncio.to_thread(
            path.exists
        ):  # an installed package without the examples folder: the generator makes it
            path = Path(scratch) / SAMPLE_FEED.name
            write_jsonl(generate_rows(), path)
        run = await cases.ingest(FeedFile(path), system_caller(DEMO_ACTOR))
    log.info("demo.catalog.loaded", run_id=run.run_id, status=run.status.value, **run.counts.as_dict())
