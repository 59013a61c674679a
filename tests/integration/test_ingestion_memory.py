"""A large feed does not need more memory than a small one: the pipeline streams (issue: 5 000 vs 50 000 rows).

Each size runs in a fresh process that imports what ``eyewear ingest`` imports; peak RSS is
compared. What may grow is the run's digests (about 60 bytes per SKU and GTIN, and per product):
a few MB for 50 000 rows, against a baseline near 100 MB; rows and products are never all held.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.ingest_memory import write_feed

pytestmark = pytest.mark.slow


def peak(feed: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.ingest_memory", str(feed)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_peak_memory_does_not_grow_with_the_feed(tmp_path: Path) -> None:
    results = {}
    for rows in (5_000, 50_000):
        feed = tmp_path / f"feed-{rows}.jsonl.gz"
        write_feed(feed, rows)
        results[rows] = peak(feed)
        counts = results[rows]["counts"]
        assert counts["rows"] == counts["created"] == rows, "every row went through every stage"
        assert results[rows]["failed_checks"] == []
    small, large = results[5_000]["peak_rss_kib"], results[50_000]["peak_rss_kib"]
    assert large <= 1.2 * small, f"peak RSS {small} KiB for 5 000 rows, {large} KiB for 50 000"
