"""One SKU Genie feed row on its way into the catalog (FEED.md).

A feed reader turns bytes into ``FeedRow``s; this module turns each row into a validated variant
plus the product-level fields it carries, with every error it has (``RowError``: line, SKU,
feed field, code, message). The rules are the API's (``domain.parsing``): one rule set.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.enums import Category
from domain.errors import ErrorCode, FieldError
from domain.feed import PRODUCT_FIELDS, VARIANT_FIELDS
from domain.fields import FieldReader
from domain.identifiers import normalise_sku, product_id_for
from domain.parsing import read_product_fields, read_variant
from domain.product import ProductDraft, Variant
from domain.sanitising import HtmlSanitizer
from domain.threats import operator_keys

KNOWN_FIELDS = frozenset(PRODUCT_FIELDS) | frozenset(VARIANT_FIELDS)
#: Part of every raw digest: a release that changes what a feed record parses to (a rule, the
#: sanitiser's output, a derived field) bumps it, and every stored raw digest stops matching.
RAW_RULES_VERSION = 1


@dataclass(frozen=True, slots=True)
class FeedRow:
    """What a reader found at ``line`` (1-based physical line where the record starts).

    ``fields`` is the decoded record (CSV cells as strings, empty cells left out; JSON values as
    they were). When the record could not be decoded at all, ``fields`` is None and ``problem``
    says why: the row becomes one ``malformed_row`` error, the run goes on.
    """

    line: int
    fields: Mapping[str, Any] | None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    sku: str | None
    field: str | None
    code: str
    message: str


def row_error_to_dict(error: RowError) -> dict[str, Any]:
    """The JSON shape of CONTRACT.md 4.4 (``GET …/errors``) and of the CLI report."""
    return {
        "line": error.line,
        "sku": error.sku,
        "field": error.field,
        "code": str(error.code),
        "message": error.message,
    }


@dataclass(frozen=True, slots=True)
class ParsedRow:
    """A valid row: the product-level fields it carries and the variant it describes."""

    line: int
    product_id: str
    product_fields: Mapping[str, Any]
    variant: Variant
    #: ``fields_hash(product_fields)`` and ``variant_hash(variant)``, computed once per row.
    fields_digest: str
    variant_digest: str

    @property
    def sku(self) -> str:
        return self.variant.sku

    def draft(self, variants: tuple[Variant, ...]) -> ProductDraft:
        return ProductDraft(variants=variants, **self.product_fields)


@dataclass(slots=True)
class RowOutcome:
    """Either ``parsed`` or ``errors`` (never both empty); ``unknown`` names ignored fields."""

    parsed: ParsedRow | None
    errors: list[RowError] = field(default_factory=list)
    unknown: tuple[str, ...] = ()


def unknown_fields(fields: Mapping[str, Any]) -> tuple[str, ...]:
    """The names of a record's fields that FEED.md does not know (ignored, counted once per run)."""
    return tuple(sorted(str(key) for key in fields if key not in KNOWN_FIELDS))


@dataclass(frozen=True, slots=True)
class RawKey:
    """What the pipeline knows of a decoded record before (or instead of) parsing it: where its
    variant would be stored (``product_id``, ``sku``) and the record's ``raw_digest``."""

    product_id: str
    sku: str
    digest: str


def raw_digest(fields: Mapping[str, Any]) -> str:
    """A digest of a decoded record as read, and of the rules that parse it (``RAW_RULES_VERSION``).

    What is hashed is the pickle of the record's items sorted by key: unlike JSON (whose
    Decimals would have to become strings), it tells the number ``50`` from the string ``"50"``
    and ``Decimal("1.0")`` from ``Decimal("1.00")``, so two records that might parse differently
    never share a digest, and it costs a third of a ``repr``. Nothing is ever unpickled. The same
    row read from JSON Lines and from CSV gets two digests (the values have other types): that
    costs a parse, never a wrong answer.
    """
    data = pickle.dumps((RAW_RULES_VERSION, sorted(fields.items())), protocol=5)
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def raw_key(row: FeedRow) -> RawKey | None:
    """The record's product id, SKU and raw digest, cheaply; None when they cannot be had (the row
    is then parsed, and reported if it is invalid).

    The identities are derived as the parser derives them from values it accepts (trimmed brand
    and style id through ``product_id_for``, ``normalise_sku``) but not validated: a record is only
    ever taken for unchanged when its digest is one stored from a record that parsed, i.e. when
    it is that very record, whose values the parser accepts.
    """
    fields = row.fields
    if fields is None:
        return None
    sku, brand, style_id = fields.get("sku"), fields.get("brand"), fields.get("style_id")
    if not (isinstance(sku, str) and isinstance(brand, str) and isinstance(style_id, str)):
        return None
    product_id = product_id_for(brand.strip(), style_id.strip())
    if not product_id:
        return None
    try:
        digest = raw_digest(fields)
    except Exception:  # a value that does not pickle or keys that do not sort: parse the row
        return None
    return RawKey(product_id, normalise_sku(sku), digest)


def known_identity(fields: Mapping[str, Any]) -> tuple[str, str | None]:
    """The brand and GTIN of a record known to parse (its raw digest matched), for the feed-wide
    rules (brand scope, ``duplicate_gtin``): what ``parse_plain_text`` and ``parse_gtin`` return
    for values they accept, without checking again what the parser checked when the digest was
    stored (the GS1 check digit costs more than the rest of an unchanged row's rules)."""
    gtin = fields.get("gtin")
    brand: str = fields["brand"]
    return brand.strip(), gtin.strip().zfill(14) if isinstance(gtin, str) and gtin else None


def _sku_of(fields: Mapping[str, Any]) -> str | None:
    raw = fields.get("sku")
    return normalise_sku(raw) if isinstance(raw, str) and raw.strip() else None


def parse_feed_row(row: FeedRow, sanitizer: HtmlSanitizer) -> RowOutcome:
    """Validates one row on its own (feed-wide rules such as duplicates come later)."""
    if row.fields is None:
        problem = row.problem or "the row could not be read"
        return RowOutcome(None, [RowError(row.line, None, None, ErrorCode.MALFORMED_ROW, problem)])
    fields = row.fields
    sku = _sku_of(fields)
    unknown = unknown_fields(fields)
    threats = operator_keys(dict(fields))
    if threats:
        return RowOutcome(None, [_row_error(row.line, sku, threat) for threat in threats], unknown)
    reader = FieldReader(fields)
    product_fields = read_product_fields(reader, sanitizer, "model_name")
    category = product_fields["category"]
    variant = read_variant(reader, category if isinstance(category, Category) else None)
    brand, style_id = product_fields["brand"], product_fields["style_id"]
    product_id = product_id_for(brand, style_id) if brand and style_id else ""
    if brand and style_id and not product_id:
        reader.fail("style_id", ErrorCode.INVALID_VALUE, "brand and style_id together need a letter or a digit")
    if reader.errors or variant is None:
        return RowOutcome(None, [_row_error(row.line, sku, error) for error in reader.errors], unknown)
    parsed = ParsedRow(
        row.line, product_id, product_fields, variant, fields_hash(product_fields), variant_hash(variant)
    )
    return RowOutcome(parsed, [], unknown)


def _row_error(line: int, sku: str | None, error: FieldError) -> RowError:
    return RowError(line, sku, error.field, error.code, error.message)


def _digest(*parts: object) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


def variant_hash(variant: Variant) -> str:
    """A content hash of one variant: equal hashes mean an identical stored SKU."""
    m = variant.measurements
    return _digest(
        variant.sku,
        variant.gtin,
        variant.color_name,
        variant.color_hex,
        m.lens_width_mm,
        m.bridge_width_mm,
        m.temple_length_mm,
        m.lens_height_mm,
        str(variant.price.amount),
        variant.price.currency,
        variant.stock_quantity,
        variant.rx_compatible,
        variant.polarized,
        variant.lens_category,
        variant.uv_protection.value if variant.uv_protection else None,
        variant.image_urls,
    )


def fields_hash(draft_fields: Mapping[str, Any] | ProductDraft) -> str:
    """A content hash of the product-level fields a feed row carries (everything but variants)."""
    get = draft_fields.get if isinstance(draft_fields, Mapping) else lambda key: getattr(draft_fields, key)
    return _digest(
        *(
            getattr(value, "value", value)
            for value in (
                get("style_id"),
                get("brand"),
                get("name"),
                get("category"),
                get("frame_shape"),
                get("frame_material"),
                get("rim_type"),
                get("gender"),
                get("description_html"),
                tuple(get("tags") or ()),
            )
        )
    )
