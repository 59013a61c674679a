"""Tests of the streaming feed readers and writers (FEED.md, "Feed files")."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import random
import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.feeds import readers
from adapters.feeds.readers import FeedFile, FeedFormat, UnreadableFeed, UnsupportedFeed, format_for, read_rows
from adapters.feeds.render import write_csv, write_jsonl
from adapters.feeds.sample_feed import generate_rows
from adapters.html.nh3_sanitizer import Nh3Sanitizer
from domain.feed_rows import FeedRow, parse_feed_row
from domain.threats import MAX_DEPTH

SANITIZER = Nh3Sanitizer()
JSONL, CSV = FeedFormat.JSONL, FeedFormat.CSV
LINE_BREAKS = {JSONL: rb"\n", CSV: rb"\r\n|\r|\n"}  # JSON Lines splits on LF only; csv on all three


def rows_of(data: bytes, fmt: FeedFormat, gzipped: bool = False) -> list[FeedRow]:
    return list(read_rows(io.BytesIO(data), fmt, gzipped))


def physical_lines(data: bytes, fmt: FeedFormat) -> int:
    parts = re.split(LINE_BREAKS[fmt], data)
    return len(parts) - (parts[-1] == b"")


def check_rows(rows: list[FeedRow], data: bytes | None, fmt: FeedFormat) -> None:
    """The laws every reader output obeys, whatever the bytes (``data``: the decompressed file)."""
    lines = [row.line for row in rows]
    assert lines == sorted(set(lines)), "line numbers strictly increase"
    assert all(1 <= line <= (physical_lines(data, fmt) if data is not None else line) for line in lines)
    for row in rows:
        if row.fields is None:
            assert row.problem and row.problem.strip() and "\n" not in row.problem
            assert [e.code for e in parse_feed_row(row, SANITIZER).errors] == ["malformed_row"]
        else:
            assert row.problem is None and isinstance(row.fields, dict)
            assert fmt is JSONL or all(isinstance(v, str) and v for v in row.fields.values())


def test_format_for_reads_the_suffix() -> None:
    for name, expected in [("a.jsonl", (JSONL, False)), ("d/A.NDJSON.GZ", (JSONL, True)), ("a.b.csv", (CSV, False))]:
        assert format_for(name) == format_for(Path(name)) == expected
    assert format_for("a.csv.gz") == (CSV, True)
    for name in ["feed.json", "feed.csv.zip", "feed.gz", "feed", "feed.gz.csv.txt"]:
        with pytest.raises(UnsupportedFeed, match=r"\.jsonl, \.ndjson or \.csv, optionally \.gz"):
            FeedFile(name)


def test_csv_records_cells_and_line_numbers() -> None:
    data = (
        "\ufeffsku, brand ,tags\r\n"  # BOM, header names trimmed
        "A-1,Acme,a|b\r\n"
        "\r\n"
        '"A-2","Multi\r\nline, ""quoted""",\r\n'  # lines 4-5; empty cell = absent
        "A-3,Acme\r\n"  # wrong cell count
        "   \n"
        'A-4,"x"y,z\n'  # bad quoting
        "A-5,Acme,true\n"
    ).encode() + b'A-6,Caf\xe9,\nA-7,Caf\xc3\xa9,\r\rA-8,"open\nstill open\n'  # bad UTF-8; CR line breaks
    rows = rows_of(data, CSV)
    assert [(r.line, r.fields) for r in rows] == [
        (2, {"sku": "A-1", "brand": "Acme", "tags": "a|b"}),
        (4, {"sku": "A-2", "brand": 'Multi\r\nline, "quoted"'}),
        (6, None),
        (8, None),
        (9, {"sku": "A-5", "brand": "Acme", "tags": "true"}),
        (10, None),
        (11, {"sku": "A-7", "brand": "Café"}),
        (13, None),  # unterminated quote at the end of the file
    ]
    assert rows[2].problem == "the row has 2 cells, the header has 3"
    assert rows[3].problem is not None and rows[3].problem.startswith("the row is not valid CSV")
    assert rows[5].problem == "the row is not valid UTF-8"
    check_rows(rows, data, CSV)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"sku,brand,sku\nA-1,B,A-1\n", r"header \(line 1\) names the field 'sku' twice"),
        (b"\n\nsku,,brand\n", r"header \(line 3\) has no field name in column 2"),
        (b"sku,br\xffand\nA-1,B\n", r"header \(line 1\) is not valid UTF-8"),
        (b'sku,"brand\n', r"header \(line 1\) cannot be read"),
    ],
)
def test_a_bad_csv_header_fails_the_file_before_any_row(data: bytes, message: str) -> None:
    with pytest.raises(UnreadableFeed, match=message):
        next(read_rows(io.BytesIO(data), CSV))


@pytest.mark.parametrize("fmt", [JSONL, CSV])
@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n \r\n\n"])
def test_empty_files_have_no_rows(fmt: FeedFormat, data: bytes) -> None:
    assert rows_of(data, fmt) == []


def test_jsonl_lines_decode_on_their_own() -> None:
    data = (
        b'\xef\xbb\xbf{"sku":"A-1","price":163.10,"n":3}\r\n'
        b" \t\n"
        b"[1,2]\n"
        b"{oops\n"
        b'{"sku":"Caf\xe9"}\n'
        b'{"a":1,"a":2}\n'
        b'{"p":NaN}\n' + b"[" * 100_000 + b"\n"
        b'{"n":' + b"9" * 5000 + b"}\n"
        b'{"sku":"A-2"}'
    )
    rows = rows_of(data, JSONL)
    assert [r.line for r in rows] == [1, 3, 4, 5, 6, 7, 8, 9, 10]
    assert rows[0].fields == {"sku": "A-1", "price": Decimal("163.10"), "n": 3}
    assert type(rows[0].fields["price"]) is Decimal
    assert [r.fields is None for r in rows] == [False] + [True] * 7 + [False]
    assert rows[1].problem == "the line holds a JSON list, not an object"
    assert rows[3].problem == "the line is not valid UTF-8 (byte 12)"
    check_rows(rows, data, JSONL)


def test_a_json_number_price_parses_like_the_string_price() -> None:
    row = next(generate_rows(styles=1, seed=5))
    as_string = json.dumps(row).encode()
    as_number = as_string.replace(f'"{row["price"]}"'.encode(), str(row["price"]).encode())
    assert as_number != as_string
    string_row, number_row = rows_of(as_string + b"\n" + as_number, JSONL)
    assert isinstance(number_row.fields, dict) and isinstance(number_row.fields["price"], Decimal)
    parsed = parse_feed_row(string_row, SANITIZER).parsed
    assert parsed and parse_feed_row(number_row, SANITIZER).parsed == dataclasses.replace(parsed, line=2)


def test_records_longer_than_the_cap_are_malformed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "MAX_RECORD_SIZE", 16)
    jsonl = b'{"sku":"ABCDEF"}\n{"sku":"ABCDEFG"}\n{"sku":"B"}\n'  # 16 bytes, 17 bytes
    assert [(r.line, r.fields) for r in rows_of(jsonl, JSONL)] == [(1, {"sku": "ABCDEF"}), (2, None), (3, {"sku": "B"})]
    assert [(r.line, r.fields) for r in rows_of(b"\xef\xbb\xbf" + jsonl[17:], JSONL)] == [(1, None), (2, {"sku": "B"})]
    csv_data = b'sku,b\nA,12345678901234567890\nC,D\n"E\n1234567890123\nX",F\nG,H\n'
    assert [(r.line, r.fields) for r in rows_of(csv_data, CSV)] == [
        (2, None),
        (3, {"sku": "C", "b": "D"}),
        (4, None),
        (6, {"sku": 'X"', "b": "F"}),  # reading resumes at the next physical line, inside the dropped record
        (7, {"sku": "G", "b": "H"}),
    ]
    with pytest.raises(UnreadableFeed, match="longer than 16"):
        rows_of(b"a" * 40 + b"\n", CSV)


def test_the_real_cap_is_one_mebibyte() -> None:
    line = b'{"d":"' + b"x" * readers.MAX_RECORD_SIZE + b'"}\n'
    rows = rows_of(line + b'{"sku":"A"}\n', JSONL)
    assert [(r.line, r.fields) for r in rows] == [(1, None), (2, {"sku": "A"})]


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".csv.gz", ".ndjson", ".csv"])
def test_feed_files_stream_again_at_each_call(tmp_path: Path, suffix: str) -> None:
    rows = list(generate_rows(styles=2, seed=7))
    path = tmp_path / f"feed{suffix}"
    (write_csv if ".csv" in suffix else write_jsonl)(rows, path)
    feed = FeedFile(path)
    assert feed.name == path.name and feed.gzipped == suffix.endswith(".gz")
    first = list(feed.rows())
    assert first == list(feed.rows())
    assert [r.fields["sku"] for r in first if r.fields] == [r["sku"] for r in rows]
    assert repr(feed).startswith("FeedFile(")


def test_feed_file_takes_an_explicit_format_and_name(tmp_path: Path) -> None:
    path = tmp_path / "upload-1234.tmp"
    path.write_bytes(gzip.compress(b"sku\nA-1\n"))
    assert FeedFile(path, FeedFormat.CSV).gzipped is False
    feed = FeedFile(path, "csv", gzipped=True, name="supplier.csv.gz")
    assert (feed.name, feed.fmt, feed.gzipped) == ("supplier.csv.gz", CSV, True)
    assert [r.fields for r in feed.rows()] == [{"sku": "A-1"}]
    assert FeedFile(tmp_path / "x.csv.gz", gzipped=False).gzipped is False
    assert FeedFile(path, name="supplier.ndjson.gz").gzipped is True


@pytest.mark.parametrize("fmt", [JSONL, CSV])
def test_a_corrupt_gzip_stream_fails_after_the_rows_already_read(fmt: FeedFormat) -> None:
    rng = random.Random(1)
    rows = [{"sku": f"S-{i}", "brand": "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=60))} for i in range(3000)]
    buffer = io.BytesIO()
    (write_jsonl if fmt is JSONL else write_csv)(rows, buffer)
    zipped = gzip.compress(buffer.getvalue())
    truncated, bad_crc = zipped[: len(zipped) // 2], zipped[:-8] + bytes([zipped[-8] ^ 1]) + zipped[-7:]
    for corrupt, message in ((truncated, "ended before the end-of-stream"), (bad_crc, "CRC check failed")):
        got: list[FeedRow] = []
        with pytest.raises(UnreadableFeed, match=f"the gzip stream is corrupt: .*{message}"):
            got.extend(read_rows(io.BytesIO(corrupt), fmt, gzipped=True))
        assert got and all(row.fields for row in got)
        assert [r.fields["sku"] for r in got if r.fields] == [r["sku"] for r in rows[: len(got)]]
    assert len(got) == len(rows)  # a bad checksum is only found at the end: every row was yielded before


def test_writers_render_values_and_keep_caller_streams_open(tmp_path: Path) -> None:
    row = {"sku": "A-1", "price": Decimal("9.90"), "tags": ["a", "b"], "polarized": False, "gtin": None, "zz": 1}
    csv_out, jsonl_out = io.BytesIO(), io.BytesIO()
    assert write_csv([row], csv_out, fields=("sku", "price", "tags", "polarized", "gtin", "rx_compatible")) == 1
    assert csv_out.getvalue() == b"sku,price,tags,polarized,gtin,rx_compatible\r\nA-1,9.90,a|b,false,,\r\n"
    assert write_jsonl([row], jsonl_out) == 1
    assert (
        jsonl_out.getvalue() == b'{"sku":"A-1","gtin":null,"price":"9.90","polarized":false,"tags":["a","b"],"zz":1}\n'
    )
    assert not csv_out.closed and not jsonl_out.closed
    with pytest.raises(TypeError, match="set is not a feed value"):
        write_jsonl([{"tags": {"a"}}], io.BytesIO())
    first, second = tmp_path / "a" / "feed.csv.gz", tmp_path / "b" / "feed.csv.gz"
    write_csv([row], first)
    write_csv([row], second)
    assert first.read_bytes() == second.read_bytes()  # no timestamp in the gzip header


@given(st.binary(max_size=300))
def test_jsonl_reader_yields_one_row_per_non_blank_line_for_any_bytes(data: bytes) -> None:
    rows = rows_of(data, JSONL)
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    assert [r.line for r in rows] == [n for n, line in enumerate(lines, start=1) if line.strip(b" \t\r\n")]
    check_rows(rows, data, JSONL)


@given(
    st.binary(max_size=300) | st.lists(st.sampled_from([b"a", b",", b'"', b"\n", b"\r", b"\xff", b"b,c"])).map(b"".join)
)
def test_csv_reader_never_raises_but_for_a_bad_header(data: bytes) -> None:
    got: list[FeedRow] = []
    try:
        got.extend(read_rows(io.BytesIO(data), CSV))
    except UnreadableFeed as error:
        assert not got and "CSV header" in str(error)
    check_rows(got, data, CSV)


@given(st.sampled_from([JSONL, CSV]), st.binary(max_size=300), st.integers(0, 400), st.binary(max_size=4))
def test_gzip_readers_raise_nothing_but_unreadable_feed(
    fmt: FeedFormat, payload: bytes, cut: int, noise: bytes
) -> None:
    zipped = gzip.compress(payload)
    corrupt = zipped[:cut] + noise + zipped[cut + len(noise) :]
    for data, plain in ((payload, None), (corrupt, None), (zipped, payload)):
        got: list[FeedRow] = []
        try:
            got.extend(read_rows(io.BytesIO(data), fmt, gzipped=True))
        except UnreadableFeed:
            assert plain is None or fmt is CSV
        check_rows(got, plain, fmt)  # corrupt deflate data may inflate to other lines than the payload's


# Not generated: lone surrogates (not UTF-8) and NUL (Python 3.11's csv reader refuses it: malformed_row).
CHARS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
CELL_TEXT = st.text(CHARS, max_size=20) | st.sampled_from([",", '"', 'say "hi", then', "2\nlines", "cr\r\nlf", "a\rcr"])
# Non-blank: FieldReader drops blank parts of "a| |b" but rejects a blank item of a JSON list.
TAG = st.text(CHARS.filter(lambda c: c != "|"), min_size=1).filter(str.strip)
TEXT_FIELDS = st.sampled_from(["brand", "model_name", "color_name", "description_html"])
EDITS = st.lists(
    st.tuples(st.integers(0, 99), TEXT_FIELDS, CELL_TEXT)
    | st.tuples(st.integers(0, 99), st.just("tags"), st.lists(TAG)),
    max_size=8,
)


def outcomes(data: bytes, fmt: FeedFormat) -> list[object]:
    result = []
    for row in rows_of(data, fmt):
        outcome = parse_feed_row(row, SANITIZER)
        parsed = dataclasses.replace(outcome.parsed, line=0) if outcome.parsed else None
        result.append((parsed, [(e.sku, e.field, e.code, e.message) for e in outcome.errors], outcome.unknown))
    return result


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(0, 10**6), EDITS)
def test_csv_and_jsonl_renderings_describe_the_same_catalog(styles: int, seed: int, edits: list) -> None:
    rows = list(generate_rows(styles=styles, seed=seed))
    for index, field, value in edits:
        rows[index % len(rows)][field] = value
    as_csv, as_jsonl = io.BytesIO(), io.BytesIO()
    assert write_csv(rows, as_csv) == write_jsonl(rows, as_jsonl) == len(rows)
    from_csv, from_jsonl = outcomes(as_csv.getvalue(), CSV), outcomes(as_jsonl.getvalue(), JSONL)
    assert len(from_csv) == len(rows)
    assert from_csv == from_jsonl
    assert edits or all(parsed for parsed, _, _ in from_csv)  # the sample rows are valid as they are


BLANKS = st.sampled_from([b"\n", b"  \n", b"\t\r\n", b"\r\n"])


@settings(max_examples=60)
@given(
    st.sampled_from([JSONL, CSV]),
    st.booleans(),
    st.integers(0, 3),
    st.lists(st.tuples(st.integers(0, 12), BLANKS), min_size=1, max_size=12),
)
def test_blank_lines_are_skipped_and_counted_up_to_the_limit(
    fmt: FeedFormat, gzipped: bool, limit: int, layout: list[tuple[int, bytes]]
) -> None:
    """Rows keep their physical line numbers across blank lines; one blank line past the limit
    refuses the feed as a whole, and nothing but ``UnreadableFeed`` is raised."""
    body = [b"sku,brand\n"] if fmt is CSV else []
    expected: list[int] = []
    blank_count = 0
    for run, blank in layout:
        body.extend([blank] * run)
        blank_count += run
        body.append(b"X1,Nordvik\n" if fmt is CSV else b'{"sku": "X1"}\n')
        expected.append(len(body))
    data = b"".join(body)
    stream = io.BytesIO(gzip.compress(data) if gzipped else data)
    if blank_count <= limit:
        rows = list(read_rows(stream, fmt, gzipped, max_blank_lines=limit))
        assert [row.line for row in rows] == expected
        assert all(row.fields is not None for row in rows)
        return
    read: list[FeedRow] = []
    with pytest.raises(UnreadableFeed, match=f"more than {limit} blank lines"):
        read.extend(read_rows(stream, fmt, gzipped, max_blank_lines=limit))
    assert len(read) < len(expected)  # refused as it reads: no row after the blank line that tipped it


def test_a_megabyte_of_gzipped_blank_lines_is_refused_after_the_limit() -> None:
    """The attack: a 1 MB gzip of newlines inflates to about a gigabyte; the reader stops at the limit."""
    bomb = gzip.compress(b"\n" * (64 << 20), compresslevel=9)  # 64 MiB of newlines, ~64 KiB compressed
    stream = io.BytesIO(bomb)
    with pytest.raises(UnreadableFeed, match=f"more than {readers.MAX_BLANK_LINES} blank lines"):
        list(read_rows(stream, JSONL, gzipped=True))
    assert stream.tell() < len(bomb), "the reader stopped early instead of inflating the whole file"


def nested_line(depth: int, kind: str) -> bytes:
    """A JSON Lines record whose ``sku`` value nests ``depth`` containers deep."""
    opening, closing = (b"[", b"]") if kind == "array" else (b'{"k": ', b"}")
    return b'{"sku": ' + opening * depth + b"1" + closing * depth + b"}\n"


@settings(max_examples=40)
@given(st.integers(0, 20_000), st.sampled_from(["array", "object"]))
def test_a_record_nested_to_any_depth_is_a_row_or_its_error_never_a_crash(depth: int, kind: str) -> None:
    """Past the decoder's recursion limit the line is malformed; below it the record is read and the
    domain refuses the container as a threat (FEED.md ``threat_detected``), on the same line."""
    data = nested_line(depth, kind) + b'{"sku": "NEXT"}\n'
    rows = rows_of(data, JSONL)
    check_rows(rows, data, JSONL)
    assert [row.line for row in rows] == [1, 2] and rows[1].fields == {"sku": "NEXT"}
    codes = {error.code for error in parse_feed_row(rows[0], SANITIZER).errors}
    if rows[0].fields is None:
        assert codes == {"malformed_row"}
    else:  # an object where a scalar belongs is a threat (FEED.md), so is nesting past MAX_DEPTH levels
        threat = (kind == "object" and depth > 0) or depth + 1 > MAX_DEPTH  # the row is the first level
        assert ("threat_detected" in codes) is threat
