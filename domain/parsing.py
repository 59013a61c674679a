"""From untrusted records to validated drafts: one set of rules for the API and the feed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from domain.enums import Category, FrameMaterial, FrameShape, Gender, RimType, UvProtection
from domain.errors import ErrorCode, FieldError, RuleViolation, ThreatDetected, ValidationFailed, invalid
from domain.fields import FieldReader
from domain.identifiers import parse_gtin, parse_sku, parse_style_id, product_id_for
from domain.measurements import BRIDGE_WIDTH, LENS_HEIGHT, LENS_WIDTH, TEMPLE_LENGTH, FrameMeasurements
from domain.money import Money, parse_amount, parse_currency
from domain.product import ProductDraft, Variant
from domain.sanitising import MAX_DESCRIPTION_LENGTH, HtmlSanitizer
from domain.text import MAX_IMAGES, MAX_TAGS, parse_color_hex, parse_image_url, parse_plain_text, parse_tag
from domain.threats import operator_keys

LENS_CATEGORY = (0, 4)
MAX_VARIANTS = 500


def _text(max_length: int) -> Callable[[str], str]:
    return lambda raw: parse_plain_text(raw, max_length)


def read_product_fields(reader: FieldReader, sanitizer: HtmlSanitizer, name_key: str) -> dict[str, Any]:
    """Product-level fields; ``name_key`` is ``name`` in the API and ``model_name`` in the feed."""
    description = reader.string("description_html", _description(sanitizer), required=False)
    return {
        "style_id": reader.string("style_id", parse_style_id),
        "brand": reader.string("brand", _text(60)),
        "name": reader.string(name_key, _text(120)),
        "category": reader.choice("category", Category),
        "frame_shape": reader.choice("frame_shape", FrameShape),
        "frame_material": reader.choice("frame_material", FrameMaterial),
        "rim_type": reader.choice("rim_type", RimType),
        "gender": reader.choice("gender", Gender, required=False) or Gender.UNISEX,
        "description_html": description or None,
        "tags": reader.string_list("tags", parse_tag, MAX_TAGS),
    }


def _description(sanitizer: HtmlSanitizer) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if len(raw) > MAX_DESCRIPTION_LENGTH:
            raise RuleViolation(ErrorCode.OUT_OF_RANGE, f"is at most {MAX_DESCRIPTION_LENGTH} characters")
        return sanitizer.sanitize(raw).strip()

    return parse


def read_variant(reader: FieldReader, category: Category | None, price_reported: bool = False) -> Variant | None:
    """One SKU, in canonical feed keys (``price`` is the amount, ``currency`` beside it).

    ``price_reported``: the caller already reported the price as malformed; the rest is still read.
    """
    sku = reader.string("sku", parse_sku)
    errors_before = len(reader.errors)
    gtin = reader.string("gtin", parse_gtin, required=False)
    color_name = reader.string("color_name", _text(60))
    color_hex = reader.string("color_hex", parse_color_hex, required=False)
    lens = reader.integer("lens_width_mm", LENS_WIDTH)
    bridge = reader.integer("bridge_width_mm", BRIDGE_WIDTH)
    temple = reader.integer("temple_length_mm", TEMPLE_LENGTH)
    height = reader.integer("lens_height_mm", LENS_HEIGHT, required=False)
    raw_amount = None if price_reported else reader.raw("price", required=True)
    amount = None if raw_amount is None else reader.apply("price", parse_amount, raw_amount)
    currency = None if price_reported else reader.string("currency", parse_currency)
    stock = reader.integer("stock_quantity", (0, 10_000_000), required=False) or 0
    rx = reader.boolean("rx_compatible")
    polarized = reader.boolean("polarized") or False
    lens_category = reader.integer("lens_category", LENS_CATEGORY, required=False)
    uv = reader.choice("uv_protection", UvProtection, required=False)
    images = reader.string_list("image_urls", parse_image_url, MAX_IMAGES)
    if category is Category.SUNGLASSES and lens_category is None and not reader.present("lens_category"):
        reader.fail("lens_category", ErrorCode.MISSING_FIELD, "is required for sunglasses")
    if category is Category.EYEGLASSES:
        for key, present in (
            ("lens_category", reader.present("lens_category")),
            ("polarized", polarized),
            ("uv_protection", reader.present("uv_protection")),
        ):
            if present:
                reader.fail(key, ErrorCode.INVALID_VALUE, "applies to sunglasses only")
    if (
        sku is None
        or len(reader.errors) > errors_before
        or category is None
        or price_reported
        or None in (color_name, lens, bridge, temple, amount, currency)
    ):
        return None
    assert color_name is not None and amount is not None and currency is not None
    assert lens is not None and bridge is not None and temple is not None
    return Variant(
        sku=sku,
        gtin=gtin,
        color_name=color_name,
        color_hex=color_hex,
        measurements=FrameMeasurements(lens, bridge, temple, height),
        price=Money(amount, currency),
        stock_quantity=stock,
        rx_compatible=(category is Category.EYEGLASSES) if rx is None else rx,
        polarized=polarized,
        lens_category=lens_category,
        uv_protection=uv,
        image_urls=images,
    )


def _api_variant_record(raw: Mapping[str, Any], reader: FieldReader) -> tuple[dict[str, Any], bool]:
    """Flattens the API's ``price: {amount, currency}`` into the canonical keys.

    Returns the record and whether a malformed price was already reported.
    """
    record = dict(raw)
    price = record.pop("price", None)
    if isinstance(price, Mapping):
        record["price"] = price.get("amount")
        record["currency"] = price.get("currency")
    elif price is not None:
        field = reader.name("price")[: -len(".amount")]
        reader.errors.append(FieldError(field, ErrorCode.INVALID_VALUE, 'must be {"amount": "…", "currency": "…"}'))
        return record, True
    return record, False


def _api_field(prefix: str) -> Callable[[str], str]:
    names = {"price": "price.amount", "currency": "price.currency"}
    return lambda key: f"{prefix}{names.get(key, key)}"


def refuse_threats(payload: Any, path: str = "") -> None:
    threats = operator_keys(payload, path)
    if threats:
        raise ThreatDetected("the input carries operator keys", tuple(threats))


def parse_product_payload(payload: Any, sanitizer: HtmlSanitizer) -> ProductDraft:
    """A product as the API receives it; derived and read-only fields are ignored."""
    if not isinstance(payload, Mapping):
        error = FieldError(None, ErrorCode.INVALID_VALUE, "the body must be a JSON object")
        raise ValidationFailed("the body must be a JSON object", (error,))
    refuse_threats(payload)
    reader = FieldReader(payload)
    fields = read_product_fields(reader, sanitizer, "name")
    variants: list[tuple[int, Variant]] = []
    raw_variants = payload.get("variants")
    if not isinstance(raw_variants, list) or not raw_variants:
        reader.fail("variants", ErrorCode.MISSING_FIELD, "a product has at least one variant")
        raw_variants = []
    elif len(raw_variants) > MAX_VARIANTS:
        reader.fail("variants", ErrorCode.OUT_OF_RANGE, f"a product has at most {MAX_VARIANTS} variants")
        raw_variants = []
    for index, raw in enumerate(raw_variants):
        prefix = f"variants[{index}]."
        if not isinstance(raw, Mapping):
            reader.fail(f"variants[{index}]", ErrorCode.INVALID_VALUE, "must be an object")
            continue
        variant_reader = FieldReader({}, _api_field(prefix))
        variant_reader.data, price_reported = _api_variant_record(raw, variant_reader)
        variant = read_variant(variant_reader, fields["category"], price_reported)
        if variant is not None:
            variants.append((index, variant))
        reader.errors.extend(variant_reader.errors)
    reader.errors.extend(duplicate_errors(variants, lambda i: f"variants[{i}]."))
    if fields["brand"] and fields["style_id"] and not product_id_for(fields["brand"], fields["style_id"]):
        reader.fail("style_id", ErrorCode.INVALID_VALUE, "brand and style_id together need a letter or a digit")
    if reader.errors:
        raise invalid("the product is not valid", tuple(reader.errors))
    ordered = tuple(sorted((v for _, v in variants), key=lambda v: v.sku))
    return ProductDraft(variants=ordered, **fields)


def duplicate_errors(variants: list[tuple[int, Variant]], prefix: Callable[[int], str]) -> list[FieldError]:
    """A SKU or a GTIN may appear once per product; the later copies are the ones at fault."""
    errors: list[FieldError] = []
    seen_skus: set[str] = set()
    seen_gtins: set[str] = set()
    for index, variant in variants:
        if variant.sku in seen_skus:
            message = f"SKU {variant.sku} is listed twice"
            errors.append(FieldError(f"{prefix(index)}sku", ErrorCode.DUPLICATE_SKU, message))
        seen_skus.add(variant.sku)
        if variant.gtin is not None:
            if variant.gtin in seen_gtins:
                message = f"GTIN {variant.gtin} is listed twice"
                errors.append(FieldError(f"{prefix(index)}gtin", ErrorCode.DUPLICATE_GTIN, message))
            seen_gtins.add(variant.gtin)
    return errors
