"""Writers of SKU Genie feed files: the same rows as JSON Lines or as CSV (FEED.md, "Feed files").

Output is byte-stable (fixed key order, compact separators, gzip without a timestamp), so a
committed example can always be regenerated identically and diffed.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO

from domain.feed import FEED_FIELDS

Target = str | PathLike[str] | BinaryIO


@contextmanager
def _binary(target: Target) -> Iterator[BinaryIO]:
    """A stream is written as it is; a path gets its parent folders, and gzip when it ends in .gz."""
    if not isinstance(target, str | PathLike):
        yield target
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as raw:
        if path.name.lower().endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped:
                yield zipped  # type: ignore[misc]
        else:
            yield raw


@contextmanager
def _text(target: Target, newline: str) -> Iterator[io.TextIOWrapper]:
    with _binary(target) as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8", newline=newline)
        try:
            yield text
        finally:
            text.detach()  # flushes; a caller's stream stays open


def _ordered(row: Mapping[str, Any]) -> dict[str, Any]:
    """FEED.md field order; unknown keys follow, sorted, rather than being dropped silently."""
    ordered = {key: row[key] for key in FEED_FIELDS if key in row}
    ordered |= {key: row[key] for key in sorted(row) if key not in ordered}
    return ordered


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)  # the feed accepts a decimal as a string; never through a float
    raise TypeError(f"{type(value).__name__} is not a feed value")


def write_jsonl(rows: Iterable[Mapping[str, Any]], target: Target) -> int:
    """Write ``rows`` as compact UTF-8 JSON Lines in FEED.md field order; return the row count."""
    count = 0
    with _text(target, "\n") as out:
        for row in rows:
            out.write(json.dumps(_ordered(row), ensure_ascii=False, separators=(",", ":"), default=_json_default))
            out.write("\n")
            count += 1
    return count


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "|".join(_cell(item) for item in value)
    return str(value)


def write_csv(rows: Iterable[Mapping[str, Any]], target: Target, fields: Sequence[str] = FEED_FIELDS) -> int:
    """Write ``rows`` as RFC 4180 CSV with a header of ``fields``; return the row count.

    Lists are joined with ``|``, booleans are ``true``/``false``, a missing or None value is an
    empty cell; keys outside ``fields`` are not written.
    """
    count = 0
    with _text(target, "") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(fields)
        for row in rows:
            writer.writerow([_cell(row.get(field)) for field in fields])
            count += 1
    return count
