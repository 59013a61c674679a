"""Use the eyewear catalog from plain Python, without HTTP: ingest a feed file, search, read a product.

    python examples/embed.py [FEED]      # default: examples/sample-feed.jsonl

It runs on the settings of the environment (``EYEWEAR_*``): with none, on the embedded database in
``./.eyewear``, which it starts and stops. See docs/embedding.md.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from adapters.feeds.readers import FeedFile
from application.authorization import system_caller
from domain.snapshot import product_to_dict
from entrypoints.embedding import caller_for, open_catalog
from entrypoints.logging_setup import configure_logging

SAMPLE = Path(__file__).with_name("sample-feed.jsonl")


async def main(feed: Path) -> int:
    configure_logging("WARNING", "console")  # the service's logs on stderr; this example's output on stdout
    async with open_catalog() as catalog:
        cases = catalog.cases
        # A trusted job of ours loads the feed (authorized and audited as "embed-example", an admin).
        run = await cases.ingest(FeedFile(feed), system_caller("embed-example"))
        print(f"run {run.run_id}: {run.status.value}, {run.counts.rows} rows, {run.counts.created} created")
        if run.status.value != "succeeded":
            return 1
        # A shop's request, on behalf of the user our service authenticated: a viewer.
        shopper = caller_for("shop-frontend", ["viewer"])
        page = await cases.search({"category": "sunglasses", "sort": "price", "limit": "3"}, shopper)
        for product in page.items:
            cheapest = min(variant.price.amount for variant in product.variants)
            print(f"{product.product_id}: {product.brand} {product.name}, from {cheapest}")
        if page.items:
            first = await cases.get_product(page.items[0].product_id, shopper)
            sizes = sorted({variant["size_label"] for variant in product_to_dict(first)["variants"]})
            print(f"{first.product_id} sizes: {', '.join(sizes)}")
        facets = await cases.facets({}, shopper)
        print("brands:", ", ".join(f"{value.value} ({value.count})" for value in facets["brand"][:3]))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE)))
