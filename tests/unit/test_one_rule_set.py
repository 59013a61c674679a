"""FEED.md: the API and the feed share one rule set. Whatever a feed row stores, the API takes back:
a product read from the API (the body GET returns) and written again parses to the very product
the feed stored, whatever its text fields spell (``$where``, ``function() {}``, any Unicode)."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from adapters.feeds.sample_feed import generate_rows
from domain.feed_rows import FeedRow, parse_feed_row
from domain.parsing import parse_product_payload
from domain.product import Product
from domain.snapshot import product_to_dict
from tests.builders import SANITIZER, T0

BASE = {key: value for key, value in next(generate_rows(styles=1, seed=5)).items()}
TEXT_FIELDS = ("brand", "model_name", "color_name", "style_id")
SUSPICIOUS = st.sampled_from(["$where", "$where: 1", "function() { return 1 }", "{$gt: ''}", "a.b", "sleep(5000)"])
texts = st.one_of(SUSPICIOUS, st.text(max_size=70), st.from_regex(r"[A-Za-z0-9 $.{}()'\"-]{1,60}", fullmatch=True))


@given(st.dictionaries(st.sampled_from(TEXT_FIELDS), texts, min_size=1))
@example({"color_name": "$where"}).via("the value that locked editors out")
@example({"model_name": "function() { return sleep(5000) }"})
def test_the_api_accepts_every_product_a_feed_row_stored(changes: dict[str, Any]) -> None:
    outcome = parse_feed_row(FeedRow(1, {**BASE, **changes}), SANITIZER)
    if outcome.parsed is None:
        return  # the feed refused it: nothing stored, nothing to take back
    stored = Product.create(outcome.parsed.draft((outcome.parsed.variant,)), T0)
    body = product_to_dict(stored)  # exactly what GET answers
    assert parse_product_payload(body, SANITIZER) == stored.draft
