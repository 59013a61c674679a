"""Hypothesis strategies that build VALID domain objects directly, without going through the parser.

Alphabets are kept small on purpose (four brands, a handful of name words, colours and tags) so that
searches, facets and brand filters in other tests hit often instead of almost never.
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from domain.enums import Category, FrameMaterial, FrameShape, Gender, RimType, UvProtection
from domain.identifiers import gtin_check_digit, parse_gtin
from domain.measurements import BRIDGE_WIDTH, LENS_HEIGHT, LENS_WIDTH, TEMPLE_LENGTH, FrameMeasurements
from domain.money import Money
from domain.ports import truncate_to_millis
from domain.product import Product, ProductDraft, Variant

BRANDS = ("Ray-Ban", "Oakley", "Kōdo", "Lindberg")
NAME_WORDS = ("Clubmaster", "Aviator", "Classic", "Round", "Metal", "Lite")
COLORS = ("Black", "Havana", "Gold", "Crystal Blue", "Matte Grey", "Tortoise")
TAGS = ("classic", "summer", "retro", "bestseller", "new", "kids-fit", "titanium")
CURRENCIES = ("EUR", "USD", "GBP", "CHF")
SKU_PREFIXES = ("RB", "OK", "KD", "LB")
DESCRIPTION_WORDS = ("light", "frame", "iconic", "handmade", "Kōdo", "spring", "hinge")
GTIN_LENGTHS = (8, 12, 13, 14)
MAX_CENTS = 10_000_000  # 100000.00, the largest price FEED.md allows
T0 = datetime(2026, 1, 1, tzinfo=UTC)

_UPPER_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# Strategies are built once at import: building them per draw costs more than drawing from them.
_SKU_ANY = st.builds(
    lambda a, b: a + b, st.sampled_from(_UPPER_DIGITS), st.text(_UPPER_DIGITS + "-", min_size=2, max_size=39)
)
_SKU_SUFFIX = st.text(_UPPER_DIGITS, min_size=1, max_size=8)


def skus(prefix: str | None = None) -> st.SearchStrategy[str]:
    """A normalised SKU: ``PREFIX-SUFFIX`` when a prefix is given, else any 3-40 chars of A-Z 0-9 '-'."""
    if prefix is None:
        return _SKU_ANY
    return _SKU_SUFFIX.map(lambda suffix: f"{prefix}-{suffix}")


def _gtin(length: int, data: str, normalised: bool) -> str:
    raw = data + str(gtin_check_digit(data))
    return parse_gtin(raw) if normalised else raw


_GTIN_DATA = st.sampled_from(GTIN_LENGTHS).flatmap(
    lambda n: st.tuples(st.just(n), st.text("0123456789", min_size=n - 1, max_size=n - 1))
)
_GTINS = {flag: _GTIN_DATA.map(lambda pair, f=flag: _gtin(*pair, f)) for flag in (True, False)}


def gtins(normalised: bool = True) -> st.SearchStrategy[str]:
    """A GTIN-8/12/13/14 with a correct GS1 check digit: 14-digit normal form, or as written if not normalised."""
    return _GTINS[normalised]


def raw_gtin_forms(normal: str) -> tuple[str, ...]:
    """Every valid written form (8/12/13/14 digits) of a 14-digit normal-form GTIN: drop leading zeros only."""
    return tuple(normal[-n:] for n in GTIN_LENGTHS if set(normal[: 14 - n]) <= {"0"})


@functools.cache
def money(currencies: tuple[str, ...] = CURRENCIES) -> st.SearchStrategy[Money]:
    """A Money of 0.01-100000.00 (Decimal, exponent -2) in one of a few currencies."""
    return st.builds(
        lambda cents, currency: Money(Decimal(cents).scaleb(-2), currency),
        st.integers(1, MAX_CENTS),
        st.sampled_from(currencies),
    )


_MEASUREMENTS = st.builds(
    FrameMeasurements,
    st.integers(*LENS_WIDTH),
    st.integers(*BRIDGE_WIDTH),
    st.integers(*TEMPLE_LENGTH),
    st.none() | st.integers(*LENS_HEIGHT),
)


def measurements() -> st.SearchStrategy[FrameMeasurements]:
    """Frame measurements within the FEED.md ranges; lens height optional."""
    return _MEASUREMENTS


_COLOR_NAMES = st.sampled_from(COLORS)
_COLOR_HEX = st.none() | st.text("0123456789ABCDEF", min_size=6, max_size=6).map(lambda h: f"#{h}")
_IMAGE_URLS = st.lists(
    st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8).map(
        lambda n: f"https://img.example.com/{n}.jpg"
    ),
    max_size=3,
    unique=True,
).map(tuple)
_STOCK = st.integers(0, 50)
_LENS_CATEGORY = st.integers(0, 4)
_UV = st.none() | st.sampled_from(UvProtection)
_OPTIONAL_GTIN = st.none() | gtins()


def _variant(draw: st.DrawFn, category: Category, sku: str, gtin: str | None, currencies: tuple[str, ...]) -> Variant:
    sunglasses = category is Category.SUNGLASSES
    return Variant(
        sku=sku,
        color_name=draw(_COLOR_NAMES),
        measurements=draw(_MEASUREMENTS),
        price=draw(money(currencies)),
        stock_quantity=draw(_STOCK),
        rx_compatible=draw(st.booleans()),
        polarized=draw(st.booleans()) if sunglasses else False,
        gtin=gtin,
        color_hex=draw(_COLOR_HEX),
        lens_category=draw(_LENS_CATEGORY) if sunglasses else None,
        uv_protection=draw(_UV) if sunglasses else None,
        image_urls=draw(_IMAGE_URLS),
    )


@st.composite
def variants(
    draw: st.DrawFn,
    category: Category,
    sku: st.SearchStrategy[str] | None = None,
    gtin: st.SearchStrategy[str | None] | None = None,
    currencies: tuple[str, ...] = CURRENCIES,
) -> Variant:
    """A Variant obeying the category rules (lens_category always and only, polarized/uv only, for sunglasses)."""
    chosen_sku = draw(sku if sku is not None else _SKU_ANY)
    chosen_gtin = draw(gtin if gtin is not None else _OPTIONAL_GTIN)
    return _variant(draw, category, chosen_sku, chosen_gtin, currencies)


_NAMES = st.lists(st.sampled_from(NAME_WORDS), min_size=1, max_size=3).map(" ".join)
_STYLE_IDS = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(("RB", "OO", "KD", "LB", "ab_", "x-")),
    st.text("0123456789", min_size=1, max_size=5),
)
_WORDS = st.lists(st.sampled_from(DESCRIPTION_WORDS), min_size=1, max_size=6).map(" ".join)
_DESCRIPTIONS = st.none() | st.one_of(
    _WORDS.map(lambda w: f"<p>{w}</p>"),
    st.tuples(_WORDS, _WORDS).map(lambda ws: f"<p>{ws[0]} <strong>{ws[1]}</strong></p>"),
    st.lists(_WORDS, min_size=1, max_size=3).map(
        lambda items: "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"
    ),
)
_TAG_LISTS = st.lists(st.sampled_from(TAGS), max_size=4, unique=True).map(tuple)
_SKU_LISTS = {prefix: st.lists(skus(prefix), min_size=1, max_size=4, unique=True) for prefix in (None, *SKU_PREFIXES)}
_GTIN_LISTS = st.lists(_OPTIONAL_GTIN, min_size=4, max_size=4)


def names() -> st.SearchStrategy[str]:
    """A product name of 1-3 words from a small vocabulary."""
    return _NAMES


def style_ids() -> st.SearchStrategy[str]:
    """A style id such as ``RB3016`` or ``ab_12`` (A-Z a-z 0-9 - _)."""
    return _STYLE_IDS


def descriptions() -> st.SearchStrategy[str | None]:
    """None, or simple HTML that the description sanitiser leaves unchanged (``<p>words</p>``, a list)."""
    return _DESCRIPTIONS


@st.composite
def drafts(
    draw: st.DrawFn,
    brand: str | None = None,
    style_id: str | None = None,
    sku_prefix: str | None = None,
    category: Category | None = None,
    currencies: tuple[str, ...] = CURRENCIES,
) -> ProductDraft:
    """A ProductDraft with 1-4 variants (sorted by SKU, SKUs and GTINs unique within the draft)."""
    chosen = category if category is not None else draw(st.sampled_from(Category))
    if sku_prefix in _SKU_LISTS:
        sku_list = draw(_SKU_LISTS[sku_prefix])
    else:
        sku_list = draw(st.lists(skus(sku_prefix), min_size=1, max_size=4, unique=True))
    gtin_list: list[str | None] = []
    for gtin in draw(_GTIN_LISTS)[: len(sku_list)]:
        gtin_list.append(None if gtin in gtin_list else gtin)
    built = [_variant(draw, chosen, s, g, currencies) for s, g in zip(sku_list, gtin_list, strict=True)]
    return ProductDraft(
        style_id=style_id if style_id is not None else draw(_STYLE_IDS),
        brand=brand if brand is not None else draw(st.sampled_from(BRANDS)),
        name=draw(_NAMES),
        category=chosen,
        frame_shape=draw(st.sampled_from(FrameShape)),
        frame_material=draw(st.sampled_from(FrameMaterial)),
        rim_type=draw(st.sampled_from(RimType)),
        variants=tuple(sorted(built, key=lambda v: v.sku)),
        gender=draw(st.sampled_from(Gender)),
        description_html=draw(_DESCRIPTIONS),
        tags=draw(_TAG_LISTS),
    )


_DRAFTS = drafts()


_MOMENTS = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31)).map(
    lambda d: truncate_to_millis(d.replace(tzinfo=UTC, fold=0))
)
_STEP_MS = st.integers(1, 10**9)


def moments() -> st.SearchStrategy[datetime]:
    """An aware UTC datetime in 2020-2030, truncated to milliseconds (the precision every store keeps)."""
    return _MOMENTS


@st.composite
def products(
    draw: st.DrawFn,
    draft: st.SearchStrategy[ProductDraft] | None = None,
    max_versions: int = 2,
    archived: bool | None = None,
) -> Product:
    """A Product via Product.create, then 0..max_versions replacements (same brand/style) and maybe archived."""
    first = draw(draft if draft is not None else _DRAFTS)
    now = draw(_MOMENTS)
    product = Product.create(first, now)
    for _ in range(draw(st.integers(0, max_versions))):
        now = now + timedelta(milliseconds=draw(_STEP_MS))
        replacement = dataclasses.replace(draw(_DRAFTS), brand=first.brand, style_id=first.style_id)
        product = product.replaced_by(replacement, now)
    if archived if archived is not None else draw(st.booleans()):
        product = product.archived(now + timedelta(milliseconds=draw(_STEP_MS)))
    return product


def _amount_text(amount: Decimal, style: int) -> str:
    """How a client may write an amount: ``163.00``, ``163`` (when whole) or the normalised ``1.5``/``1E+2``."""
    if style == 1 and amount == amount.to_integral_value():
        return str(int(amount))
    if style == 2:
        return str(amount.normalize())  # "1.5", "1E+2": still exact decimal text
    return f"{amount:.2f}"


_SPELLINGS = st.integers(0, 2)


def _variant_payload(draw: st.DrawFn, variant: Variant, category: Category) -> dict[str, Any]:
    m = variant.measurements
    spell = (str, str.lower, lambda text: f"  {text} ")
    record: dict[str, Any] = {
        "sku": spell[draw(_SPELLINGS)](variant.sku),
        "color_name": variant.color_name,
        "lens_width_mm": m.lens_width_mm,
        "bridge_width_mm": m.bridge_width_mm,
        "temple_length_mm": m.temple_length_mm,
        "price": {
            "amount": _amount_text(variant.price.amount, draw(_SPELLINGS)),
            "currency": spell[draw(_SPELLINGS)](variant.price.currency),
        },
    }
    gtin_forms = raw_gtin_forms(variant.gtin) if variant.gtin else ()
    optional: dict[str, Any] = {
        "gtin": gtin_forms[draw(_SPELLINGS) % len(gtin_forms)] if gtin_forms else None,
        "color_hex": spell[draw(_SPELLINGS)](variant.color_hex) if variant.color_hex else None,
        "lens_height_mm": m.lens_height_mm,
        "stock_quantity": variant.stock_quantity or None,
        "lens_category": variant.lens_category,
        "uv_protection": variant.uv_protection.value if variant.uv_protection else None,
        "image_urls": list(variant.image_urls) or None,
        "polarized": variant.polarized or None,
    }
    record.update({key: value for key, value in optional.items() if value is not None})
    if variant.rx_compatible != (category is Category.EYEGLASSES) or draw(st.booleans()):
        record["rx_compatible"] = variant.rx_compatible
    return record


@st.composite
def payloads_and_drafts(
    draw: st.DrawFn, draft: st.SearchStrategy[ProductDraft] | None = None
) -> tuple[dict[str, Any], ProductDraft]:
    """A valid API payload together with the ProductDraft that parse_product_payload must return for it."""
    d = draw(draft if draft is not None else _DRAFTS)
    records = [_variant_payload(draw, v, d.category) for v in d.variants]
    payload: dict[str, Any] = {
        "style_id": d.style_id,
        "brand": d.brand,
        "name": d.name,
        "category": d.category.value,
        "frame_shape": d.frame_shape.value,
        "frame_material": d.frame_material.value,
        "rim_type": d.rim_type.value,
        "variants": draw(st.permutations(records)),
    }
    if d.gender is not Gender.UNISEX or draw(st.booleans()):
        payload["gender"] = d.gender.value
    if d.description_html is not None:
        payload["description_html"] = d.description_html
    if d.tags or draw(st.booleans()):
        payload["tags"] = list(d.tags)
    return payload, d


def payloads(draft: st.SearchStrategy[ProductDraft] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """A valid API payload dict (product fields + variants with price {"amount": str, "currency": str})."""
    return payloads_and_drafts(draft).map(lambda pair: pair[0])
