"""Tests of the sample SKU Genie feed generator.

The FEED.md rules are restated here on purpose, independently of the generator's own tables:
if the generator (or its vocabulary) drifts from the contract, these tests notice.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.feeds.sample_feed import generate_rows, main, write_jsonl

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED_FEED = REPO_ROOT / "examples" / "sample-feed.jsonl"

FIELDS = (
    "sku",
    "gtin",
    "style_id",
    "brand",
    "model_name",
    "category",
    "frame_shape",
    "frame_material",
    "rim_type",
    "gender",
    "color_name",
    "color_hex",
    "lens_width_mm",
    "bridge_width_mm",
    "temple_length_mm",
    "lens_height_mm",
    "price",
    "currency",
    "stock_quantity",
    "rx_compatible",
    "polarized",
    "lens_category",
    "uv_protection",
    "description_html",
    "image_urls",
    "tags",
)
REQUIRED = (
    "sku",
    "style_id",
    "brand",
    "model_name",
    "category",
    "frame_shape",
    "frame_material",
    "rim_type",
    "color_name",
    "lens_width_mm",
    "bridge_width_mm",
    "temple_length_mm",
    "price",
    "currency",
)
CATEGORIES = {"eyeglasses", "sunglasses"}
SHAPES = {
    "rectangle",
    "square",
    "round",
    "oval",
    "cat-eye",
    "aviator",
    "wayfarer",
    "browline",
    "butterfly",
    "geometric",
}
MATERIALS = {"acetate", "metal", "titanium", "stainless-steel", "tr90", "ultem", "carbon-fiber", "wood", "mixed"}
RIMS = {"full-rim", "semi-rimless", "rimless"}
GENDERS = {"men", "women", "unisex", "kids"}
PRODUCT_FIELDS = (
    "model_name",
    "category",
    "frame_shape",
    "frame_material",
    "rim_type",
    "gender",
    "description_html",
    "tags",
)
SUN_ONLY = ("polarized", "lens_category", "uv_protection")

SKU_RE = re.compile(r"[A-Z0-9][A-Z0-9-]{2,39}")
STYLE_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")
HEX_RE = re.compile(r"#[0-9A-Fa-f]{6}")
PRICE_RE = re.compile(r"\d+\.\d{2}")
TAG_RE = re.compile(r"[a-z0-9-]{1,30}")
HTML_TAG_RE = re.compile(r"<(/?)([A-Za-z0-9]+)([^>]*)>")
ALLOWED_HTML = {"p", "strong", "em", "ul", "li", "br", "a"}


def gs1_valid(code: str) -> bool:
    """Recompute the GS1 check digit: weights 3,1,3,… from the rightmost data digit."""
    if not code.isdigit() or len(code) not in (8, 12, 13, 14):
        return False
    data, check = code[:-1], int(code[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(data)))
    return (10 - total % 10) % 10 == check


def is_text(value: object, max_len: int) -> bool:
    """FEED.md text rule: 1..max_len characters, no markup, no control characters."""
    return (
        isinstance(value, str)
        and 1 <= len(value) <= max_len
        and not set(value) & set("<>")
        and not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value)
    )


def is_int_in(value: object, low: int, high: int) -> bool:
    """An integer in range; bool is rejected although it subclasses int."""
    return type(value) is int and low <= value <= high


def html_problems(html: str) -> list[str]:
    """Tags outside p/strong/em/ul/li/br/a, or an attribute other than an https href on <a>."""
    problems = []
    for closing, name, attrs in HTML_TAG_RE.findall(html):
        if name not in ALLOWED_HTML:
            problems.append(f"tag {name}")
        elif name == "a" and not closing:
            if not re.fullmatch(r'\s+href="https://[^"\s]+"', attrs):
                problems.append(f"a attrs {attrs!r}")
        elif attrs.strip():
            problems.append(f"{name} attrs {attrs!r}")
    return problems


def row_problems(row: dict[str, object]) -> list[str]:
    """Every FEED.md rule a single row breaks (empty list = valid)."""
    p = [f"missing {f}" for f in REQUIRED if f not in row]
    p += [f"unknown field {f}" for f in row if f not in FIELDS]
    if p:
        return p
    sku = row["sku"]
    if not (isinstance(sku, str) and SKU_RE.fullmatch(sku)):
        p.append(f"sku {sku!r}")
    if "gtin" in row and not (isinstance(row["gtin"], str) and len(row["gtin"]) == 13 and gs1_valid(row["gtin"])):
        p.append(f"gtin {row['gtin']!r}")
    if not (isinstance(row["style_id"], str) and STYLE_RE.fullmatch(row["style_id"])):
        p.append("style_id")
    for field, max_len in (("brand", 60), ("model_name", 120), ("color_name", 60)):
        if not is_text(row[field], max_len):
            p.append(field)
    for field, allowed in (
        ("category", CATEGORIES),
        ("frame_shape", SHAPES),
        ("frame_material", MATERIALS),
        ("rim_type", RIMS),
        ("gender", GENDERS),
    ):
        if field in row and row[field] not in allowed:
            p.append(f"{field} {row[field]!r}")
    if "color_hex" in row and not (isinstance(row["color_hex"], str) and HEX_RE.fullmatch(row["color_hex"])):
        p.append("color_hex")
    for field, low, high in (
        ("lens_width_mm", 40, 62),
        ("bridge_width_mm", 14, 24),
        ("temple_length_mm", 120, 155),
        ("lens_height_mm", 20, 60),
        ("stock_quantity", 0, 40),
    ):
        if field in row and not is_int_in(row[field], low, high):
            p.append(f"{field} {row[field]!r}")
    price = row["price"]
    if not (isinstance(price, str) and PRICE_RE.fullmatch(price) and 0 < Decimal(price) <= 100000):
        p.append(f"price {price!r}")
    if row["currency"] not in {"EUR", "USD"}:
        p.append("currency")
    for field in ("rx_compatible", "polarized"):
        if field in row and not isinstance(row[field], bool):
            p.append(field)
    if row["category"] == "sunglasses":
        if not is_int_in(row.get("lens_category"), 0, 4):
            p.append("sunglasses need lens_category 0-4")
        if "uv_protection" in row and row["uv_protection"] not in {"UV400", "UV380"}:
            p.append("uv_protection")
    else:
        p += [f"eyeglasses with {f}" for f in SUN_ONLY if f in row]
    if "description_html" in row:
        html = row["description_html"]
        p += ["description_html"] if not (isinstance(html, str) and 0 < len(html) <= 10000) else []
        p += html_problems(str(html))
    urls = row.get("image_urls", ["https://images.example.com/x.jpg"])
    if not (
        isinstance(urls, list)
        and 1 <= len(urls) <= 3
        and all(isinstance(u, str) and u.startswith("https://images.example.com/") for u in urls)
    ):
        p.append("image_urls")
    tags = row.get("tags", ["x"])
    if not (
        isinstance(tags, list) and 1 <= len(tags) <= 4 and all(isinstance(t, str) and TAG_RE.fullmatch(t) for t in tags)
    ):
        p.append("tags")
    return p


@pytest.fixture(scope="module")
def rows() -> list[dict[str, object]]:
    return list(generate_rows())


def by_style(rows: list[dict[str, object]]) -> dict[tuple[object, object], list[dict[str, object]]]:
    styles: dict[tuple[object, object], list[dict[str, object]]] = defaultdict(list)
    for row in rows:
        styles[row["brand"], row["style_id"]].append(row)
    return styles


def test_gtin_checker_agrees_with_known_codes() -> None:
    assert gs1_valid("4006381333931")  # the textbook EAN-13
    assert gs1_valid("036000291452")  # a UPC-A
    assert not gs1_valid("4006381333932")


@pytest.mark.parametrize(
    "change",
    [
        {"sku": "rb-1"},
        {"sku": "-AB1"},
        {"gtin": "4006381333932"},
        {"style_id": "a b"},
        {"brand": "<b>Bold</b>"},
        {"color_name": "Black\x07"},
        {"frame_shape": "heart"},
        {"lens_width_mm": 63},
        {"bridge_width_mm": 13},
        {"temple_length_mm": True},
        {"price": 12.5},
        {"price": "0.00"},
        {"price": "9.999"},
        {"currency": "GBP"},
        {"stock_quantity": -1},
        {"lens_category": 2},
        {"description_html": "<p onclick='x'>hi</p>"},
        {"description_html": '<a href="http://x.example">x</a>'},
        {"description_html": "<script>x</script>"},
        {"tags": ["Has Space"]},
        {"image_urls": ["http://images.example.com/a.jpg"]},
        {"extra": 1},
    ],
)
def test_the_rule_check_rejects_broken_rows(rows: list[dict[str, object]], change: dict[str, object]) -> None:
    eyeglasses = next(r for r in rows if r["category"] == "eyeglasses")
    assert row_problems(eyeglasses) == []
    assert row_problems({**eyeglasses, **change}) != []


def test_same_arguments_give_the_same_rows(rows: list[dict[str, object]]) -> None:
    assert list(generate_rows()) == rows
    assert list(generate_rows(styles=90, seed=2026)) == rows
    small = json.dumps(list(generate_rows(styles=12, seed=5)), ensure_ascii=False)
    assert json.dumps(list(generate_rows(styles=12, seed=5)), ensure_ascii=False) == small


def test_a_different_seed_gives_different_rows(rows: list[dict[str, object]]) -> None:
    assert list(generate_rows(seed=2027)) != rows


def test_every_row_follows_the_feed_rules(rows: list[dict[str, object]]) -> None:
    problems = {str(row["sku"]): row_problems(row) for row in rows}
    assert {sku: p for sku, p in problems.items() if p} == {}


@pytest.mark.parametrize(("styles", "seed"), [(10, 1), (40, 7), (150, 99)])
def test_other_sizes_and_seeds_stay_valid(styles: int, seed: int) -> None:
    other = list(generate_rows(styles=styles, seed=seed))
    assert [r["sku"] for r in other if row_problems(r)] == []
    assert len({r["sku"] for r in other}) == len(other)
    assert len(by_style(other)) == styles
    assert {r["frame_shape"] for r in other} == SHAPES  # coverage holds from 10 styles on


def test_skus_and_gtins_are_unique(rows: list[dict[str, object]]) -> None:
    skus = [str(r["sku"]).strip().upper() for r in rows]
    gtins = [str(r["gtin"]).zfill(14) for r in rows if "gtin" in r]
    assert len(set(skus)) == len(skus)
    assert len(set(gtins)) == len(gtins)


def test_product_level_fields_agree_within_a_style(rows: list[dict[str, object]]) -> None:
    for key, variants in by_style(rows).items():
        for field in (*PRODUCT_FIELDS, "currency"):
            assert len({json.dumps(v.get(field)) for v in variants}) == 1, (key, field)


def test_variants_are_colours_times_sizes(rows: list[dict[str, object]]) -> None:
    for key, variants in by_style(rows).items():
        colours = {v["color_name"] for v in variants}
        sizes = {v["lens_width_mm"] for v in variants}
        assert 2 <= len(colours) <= 4, key
        assert 1 <= len(sizes) <= 2, key
        assert len(variants) == len(colours) * len(sizes), key


def test_coverage(rows: list[dict[str, object]]) -> None:
    assert 300 <= len(rows) <= 450
    assert len(by_style(rows)) >= 80
    assert len({r["brand"] for r in rows}) >= 6
    assert any(not str(r["brand"]).isascii() for r in rows)  # exercises slugging
    assert {r["category"] for r in rows} == CATEGORIES
    assert {r["frame_shape"] for r in rows} == SHAPES
    assert {r["frame_material"] for r in rows} == MATERIALS
    assert {r["rim_type"] for r in rows} == RIMS
    assert {r["gender"] for r in rows} == GENDERS
    assert {r["currency"] for r in rows} == {"EUR", "USD"}


def test_optional_fields_are_sometimes_present_and_sometimes_absent(rows: list[dict[str, object]]) -> None:
    for field in ("gtin", "color_hex", "lens_height_mm", "rx_compatible", "description_html", "image_urls", "tags"):
        present = sum(field in r for r in rows)
        assert 0 < present < len(rows), field
    assert sum("gtin" in r for r in rows) > len(rows) / 2  # most rows carry a GTIN
    assert {r["rx_compatible"] for r in rows if "rx_compatible" in r} == {True, False}
    assert any(r["stock_quantity"] == 0 for r in rows)
    assert any(is_int_in(r["stock_quantity"], 1, 40) for r in rows)
    sun = [r for r in rows if r["category"] == "sunglasses"]
    assert any(r.get("polarized") is True for r in sun)
    assert any("uv_protection" in r for r in sun) and any("uv_protection" not in r for r in sun)
    categories = [r["lens_category"] for r in sun]
    assert sum(c in (2, 3) for c in categories) > len(categories) / 2


def test_write_jsonl_writes_compact_ordered_utf8_lines(tmp_path: Path) -> None:
    rows = list(generate_rows(styles=15, seed=3))
    target = tmp_path / "nested" / "feed.jsonl"
    assert write_jsonl(target, reversed([dict(reversed(list(r.items()))) for r in rows])) == len(rows)
    raw = target.read_bytes()
    assert raw.endswith(b"\n") and b"\r" not in raw
    lines = raw.decode("utf-8").splitlines()
    assert [json.loads(line) for line in lines] == rows[::-1]
    for line in lines:
        keys = list(json.loads(line))
        assert keys == [f for f in FIELDS if f in keys]  # FEED.md order whatever the input order
        # compact separators, non-ASCII written as UTF-8 rather than escaped
        assert line == json.dumps(json.loads(line), ensure_ascii=False, separators=(",", ":"))


def test_committed_example_is_what_the_generator_writes(tmp_path: Path) -> None:
    fresh = tmp_path / "sample-feed.jsonl"
    assert main([str(fresh)]) == 0
    assert COMMITTED_FEED.read_bytes() == fresh.read_bytes(), (
        "examples/sample-feed.jsonl drifted: run `python -m adapters.feeds.sample_feed`"
    )
    assert "Kōdo" in COMMITTED_FEED.read_text(encoding="utf-8")


def test_main_writes_the_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([]) == 0
    assert (tmp_path / "examples" / "sample-feed.jsonl").read_bytes() == COMMITTED_FEED.read_bytes()
