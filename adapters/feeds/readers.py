"""Streaming readers of SKU Genie feed files (FEED.md, "Feed files"): bytes in, ``FeedRow``s out.

Files may hold millions of rows, so nothing here reads a whole file: JSON Lines is read one
physical line at a time and CSV one record at a time, each capped at ``MAX_RECORD_SIZE`` (a CSV
cell also at the csv module's ``field_size_limit``, 131072 characters). A record that cannot be
decoded becomes ``FeedRow(line, None, problem)`` and reading goes on (after an over-long or
broken CSV record, at the next physical line). Only a problem with the whole file raises
``UnreadableFeed``: a CSV header that cannot be read, repeats a name or lacks one (before any
row), a corrupt gzip stream (after the rows already yielded), or more than ``MAX_BLANK_LINES``
blank lines. An empty file has no rows.

Blank lines are ignored (FEED.md) but counted: a megabyte of gzip inflates to a gigabyte of empty
lines, each free to skip yet together hours of work that produce no row. Past the limit the feed
is refused as a whole, so the work a file can cause stays proportional to the rows it holds.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import zlib
from collections.abc import Iterator
from decimal import Decimal
from enum import StrEnum
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO

from domain.feed_rows import FeedRow

#: The longest record kept: bytes of a JSON line, characters of a CSV record (all its lines).
MAX_RECORD_SIZE = 1 << 20
#: Blank lines tolerated in one feed (a trailing newline or a few separators are normal; a flood is not).
MAX_BLANK_LINES = 10_000
_SKIP_CHUNK = 1 << 16
_JSON_WHITESPACE = b" \t\r\n"


class FeedFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


_SUFFIXES = {".jsonl": FeedFormat.JSONL, ".ndjson": FeedFormat.JSONL, ".csv": FeedFormat.CSV}


class UnsupportedFeed(ValueError):
    """The file name does not say which feed format it holds."""


class UnreadableFeed(ValueError):
    """The file as a whole cannot be read (bad CSV header, corrupt gzip stream, a flood of blank lines)."""


class _BlankLines:
    """Counts the blank lines of one feed and refuses the feed past ``limit``."""

    __slots__ = ("count", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def skip(self, line: int) -> None:
        self.count += 1
        if self.count > self.limit:
            raise UnreadableFeed(
                f"more than {self.limit} blank lines (the last at line {line}): the feed is refused as a whole"
            )


def format_for(path_or_name: str | PathLike[str]) -> tuple[FeedFormat, bool]:
    """The format and compression a file name announces (suffixes compared case-insensitively)."""
    name = Path(path_or_name).name
    base = name.lower()
    gzipped = base.endswith(".gz")
    base = base.removesuffix(".gz")
    for suffix, fmt in _SUFFIXES.items():
        if base.endswith(suffix):
            return fmt, gzipped
    raise UnsupportedFeed(f"{name!r} is not a feed file: the name must end in .jsonl, .ndjson or .csv, optionally .gz")


class FeedFile:
    """A feed file on disk; ``rows()`` streams it anew at each call (a run may read it twice)."""

    __slots__ = ("fmt", "gzipped", "max_blank_lines", "name", "path")

    def __init__(
        self,
        path: str | PathLike[str],
        fmt: FeedFormat | str | None = None,
        gzipped: bool | None = None,
        *,
        name: str | None = None,
        max_blank_lines: int = MAX_BLANK_LINES,
    ) -> None:
        self.path = Path(path)
        self.max_blank_lines = max_blank_lines
        self.name = name or self.path.name
        if fmt is None:
            fmt, named_gzip = format_for(self.name)
            gzipped = named_gzip if gzipped is None else gzipped
        self.fmt = FeedFormat(fmt)
        self.gzipped = self.name.lower().endswith(".gz") if gzipped is None else gzipped

    def __repr__(self) -> str:
        return f"FeedFile({str(self.path)!r}, {self.fmt.value!r}, gzipped={self.gzipped})"

    def rows(self) -> Iterator[FeedRow]:
        with self.path.open("rb") as stream:
            yield from read_rows(stream, self.fmt, self.gzipped, max_blank_lines=self.max_blank_lines)


def read_rows(
    stream: BinaryIO, fmt: FeedFormat | str, gzipped: bool = False, *, max_blank_lines: int = MAX_BLANK_LINES
) -> Iterator[FeedRow]:
    """Stream the rows of ``stream`` (which stays open: the caller owns it)."""
    read = _jsonl_rows if FeedFormat(fmt) is FeedFormat.JSONL else _csv_rows
    blanks = _BlankLines(max_blank_lines)
    if not gzipped:
        yield from read(stream, blanks)
        return
    with gzip.GzipFile(fileobj=stream, mode="rb") as unzipped:
        try:
            yield from read(unzipped, blanks)  # type: ignore[arg-type]
        except (gzip.BadGzipFile, EOFError, zlib.error) as error:
            raise UnreadableFeed(f"the gzip stream is corrupt: {error}") from error


# JSON Lines


class _DuplicateKey(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKey("an object repeats a key")
    return obj


def _json_row(line: int, raw: bytes) -> FeedRow:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return FeedRow(line, None, f"the line is not valid UTF-8 (byte {error.start + 1})")
    try:
        value = json.loads(text, parse_float=Decimal, parse_constant=_no_constant, object_pairs_hook=_object)
    except json.JSONDecodeError as error:
        return FeedRow(line, None, f"the line is not valid JSON: {error.msg} (column {error.colno})")
    except (ValueError, RecursionError) as error:
        return FeedRow(line, None, f"the line is not valid JSON: {' '.join(str(error).split())}")
    if not isinstance(value, dict):
        return FeedRow(line, None, f"the line holds a JSON {type(value).__name__}, not an object")
    return FeedRow(line, value)


def _jsonl_rows(stream: BinaryIO, blanks: _BlankLines) -> Iterator[FeedRow]:
    line = 0
    while raw := stream.readline(MAX_RECORD_SIZE + 1):
        line += 1
        if len(raw) > MAX_RECORD_SIZE and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = stream.readline(_SKIP_CHUNK)
            yield FeedRow(line, None, f"the line is longer than {MAX_RECORD_SIZE} bytes")
            continue
        if line == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        if raw.strip(_JSON_WHITESPACE):
            yield _json_row(line, raw)
        else:
            blanks.skip(line)


# CSV


class _TooLong(Exception):
    pass


class _Lines:
    """The physical lines of a text stream for ``csv.reader``: counted, and capped per record.

    A class rather than a generator, because it raises ``_TooLong`` through the csv reader and
    must go on serving lines afterwards.
    """

    def __init__(self, text: io.TextIOBase) -> None:
        self.text = text
        self.count = 0
        self.size = 0

    def begin_record(self) -> int:
        self.size = 0
        return self.count + 1

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.text.readline(MAX_RECORD_SIZE + 1)
        if not line:
            raise StopIteration
        self.count += 1
        self.size += len(line)
        if self.size > MAX_RECORD_SIZE:
            while line and not line.endswith(("\n", "\r")):
                line = self.text.readline(_SKIP_CHUNK)
            raise _TooLong(f"the record is longer than {MAX_RECORD_SIZE} characters")
        return line


def _valid_utf8(cells: list[str]) -> bool:
    """Undecodable bytes were kept as lone surrogates (``surrogateescape``); UTF-8 has none."""
    try:
        "".join(cells).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _header(cells: list[str], line: int) -> tuple[str, ...]:
    if not _valid_utf8(cells):
        raise UnreadableFeed(f"the CSV header (line {line}) is not valid UTF-8")
    names = tuple(cell.strip() for cell in cells)
    seen: set[str] = set()
    for column, name in enumerate(names, start=1):
        if not name:
            raise UnreadableFeed(f"the CSV header (line {line}) has no field name in column {column}")
        if name in seen:
            raise UnreadableFeed(f"the CSV header (line {line}) names the field {name!r} twice")
        seen.add(name)
    return names


def _csv_row(line: int, header: tuple[str, ...], cells: list[str]) -> FeedRow:
    if len(cells) != len(header):
        return FeedRow(line, None, f"the row has {len(cells)} cells, the header has {len(header)}")
    if not _valid_utf8(cells):
        return FeedRow(line, None, "the row is not valid UTF-8")
    return FeedRow(line, {name: cell for name, cell in zip(header, cells, strict=True) if cell != ""})


def _csv_rows(stream: BinaryIO, blanks: _BlankLines) -> Iterator[FeedRow]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        lines = _Lines(text)
        records = csv.reader(lines, strict=True)
        header: tuple[str, ...] | None = None
        while True:
            start = lines.begin_record()
            try:
                cells = next(records)
            except StopIteration:
                return
            except (csv.Error, _TooLong) as error:
                problem = str(error) if isinstance(error, _TooLong) else f"the row is not valid CSV: {error}"
                if header is None:
                    raise UnreadableFeed(f"the CSV header (line {start}) cannot be read: {error}") from None
                yield FeedRow(start, None, problem)
                continue
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                blanks.skip(start)
                continue
            if header is None:
                header = _header(cells, start)
            else:
                yield _csv_row(start, header, cells)
    finally:
        text.detach()  # the caller owns ``stream``: closing the wrapper would close it
