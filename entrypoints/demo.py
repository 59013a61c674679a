"""The demo catalog: the bundled sample feed, loaded when the catalog is empty."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import structlog

from adapters.feeds.sample_feed import generate_rows
from application.authorization import system_caller
from application.sample_loader import load_sample
from domain.search import SearchQuery
from entrypoints.container import Container, UseCases, resolve

SAMPLE_FEED = Path(__file__).resolve().parents[1] / "examples" / "sample-feed.jsonl"
DEMO_ACTOR = "demo"
log = structlog.get_logger(__name__)


def sample_rows(path: Path = SAMPLE_FEED) -> Iterator[dict[str, Any]]:
    """The committed sample file; the generator makes the same rows where the file is not shipped."""
    if not path.exists():
        yield from generate_rows()
        return
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


async def load_demo_catalog(container: Container) -> None:
    catalog = await resolve(container.catalog)
    if (await catalog.search(SearchQuery(limit=1))).items:
        log.info("demo.catalog.present")
        return
    cases: UseCases = await resolve(container.use_cases)
    created, problems = await load_sample(sample_rows(), cases.create_product, system_caller(DEMO_ACTOR))
    log.info("demo.catalog.loaded", products=created, refused=len(problems))
    for problem in problems:
        log.warning("demo.product.refused", detail=problem)
