"""Precise examples of what parse_product_payload reports: the exact field paths, codes and messages
that the property tests in test_domain_properties.py do not pin down."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from adapters.html.nh3_sanitizer import Nh3Sanitizer
from domain.errors import ErrorCode, FieldError, ValidationFailed
from domain.parsing import parse_product_payload

SANITIZER = Nh3Sanitizer()
EAN_13 = "4006381333931"  # valid GS1 check digit; normal form 04006381333931

VALID: dict[str, Any] = {
    "style_id": "RB3016",
    "brand": "Ray-Ban",
    "name": "Clubmaster",
    "category": "sunglasses",
    "frame_shape": "browline",
    "frame_material": "acetate",
    "rim_type": "full-rim",
    "description_html": "<p>The classic.</p>",
    "tags": ["classic"],
    "variants": [
        {
            "sku": "RB3016-W0365-51",
            "gtin": EAN_13,
            "color_name": "Black",
            "color_hex": "#000000",
            "lens_width_mm": 51,
            "bridge_width_mm": 21,
            "temple_length_mm": 145,
            "price": {"amount": "163.00", "currency": "EUR"},
            "lens_category": 3,
            "image_urls": ["https://img.example.com/rb3016.jpg"],
        },
        {
            "sku": "RB3016-990-49",
            "color_name": "Havana",
            "lens_width_mm": 49,
            "bridge_width_mm": 21,
            "temple_length_mm": 140,
            "price": {"amount": "153.00", "currency": "EUR"},
            "lens_category": 2,
        },
    ],
}


def payload(**changes: Any) -> dict[str, Any]:
    """A fresh copy of VALID; ``variants__0__price`` style keys change one variant field."""
    body = copy.deepcopy(VALID)
    for key, value in changes.items():
        target: Any = body
        parts = key.split("__")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        target[parts[-1]] = value
    return body


def failure(body: Any) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        parse_product_payload(body, SANITIZER)
    return caught.value


def reported(body: Any) -> set[tuple[str | None, str]]:
    return {(e.field, str(e.code)) for e in failure(body).errors}


def test_the_valid_example_parses() -> None:
    draft = parse_product_payload(payload(), SANITIZER)
    assert draft.product_id == "ray-ban-rb3016"
    assert [v.sku for v in draft.variants] == ["RB3016-990-49", "RB3016-W0365-51"]
    assert draft.variants[1].gtin == "0" + EAN_13


def test_every_error_of_a_product_is_reported_at_once() -> None:
    body = payload(style_id="bad id!", brand="<b>Ray-Ban</b>", category="goggles", tags=["Bad Tag!"])
    del body["frame_shape"]
    body["variants"][0].update(
        sku="x",
        gtin="4006381333932",
        lens_width_mm=70,
        price={"amount": "abc", "currency": "EURO"},
    )
    body["variants"][1].update(color_hex="red", temple_length_mm=100, stock_quantity=-1, rx_compatible="maybe")
    assert reported(body) == {
        ("style_id", ErrorCode.INVALID_VALUE),
        ("brand", ErrorCode.THREAT_DETECTED),
        ("category", ErrorCode.INVALID_VALUE),
        ("frame_shape", ErrorCode.MISSING_FIELD),
        ("tags", ErrorCode.INVALID_VALUE),
        ("variants[0].sku", ErrorCode.INVALID_VALUE),
        ("variants[0].gtin", ErrorCode.INVALID_GTIN),
        ("variants[0].lens_width_mm", ErrorCode.OUT_OF_RANGE),
        ("variants[0].price.amount", ErrorCode.INVALID_VALUE),
        ("variants[0].price.currency", ErrorCode.INVALID_VALUE),
        ("variants[1].color_hex", ErrorCode.INVALID_VALUE),
        ("variants[1].temple_length_mm", ErrorCode.OUT_OF_RANGE),
        ("variants[1].stock_quantity", ErrorCode.OUT_OF_RANGE),
        ("variants[1].rx_compatible", ErrorCode.INVALID_VALUE),
    }


def test_a_duplicate_sku_is_reported_on_the_later_copy() -> None:
    body = payload(variants__1__sku=" rb3016-w0365-51 ")  # same SKU once trimmed and upper-cased
    assert failure(body).errors == (
        FieldError("variants[1].sku", ErrorCode.DUPLICATE_SKU, "SKU RB3016-W0365-51 is listed twice"),
    )


def test_a_duplicate_gtin_is_found_through_the_normal_form() -> None:
    body = payload(variants__1__gtin="0" + EAN_13)  # GTIN-14 spelling of the same EAN-13
    assert failure(body).errors == (
        FieldError("variants[1].gtin", ErrorCode.DUPLICATE_GTIN, "GTIN 04006381333931 is listed twice"),
    )


@pytest.mark.parametrize("price", ["163.00", 163, ["163.00", "EUR"]])
def test_a_price_that_is_not_an_object_is_invalid_at_price(price: Any) -> None:
    assert reported(payload(variants__0__price=price)) == {("variants[0].price", ErrorCode.INVALID_VALUE)}


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        ({"amount": "163.001", "currency": "EUR"}, {("variants[0].price.amount", ErrorCode.INVALID_VALUE)}),
        ({"amount": "0", "currency": "EUR"}, {("variants[0].price.amount", ErrorCode.OUT_OF_RANGE)}),
        ({"amount": "163.00"}, {("variants[0].price.currency", ErrorCode.MISSING_FIELD)}),
        pytest.param({"currency": "EUR"}, {("variants[0].price.amount", ErrorCode.MISSING_FIELD)}),
        pytest.param(
            {"amount": {"x": 1}, "currency": "EUR"},
            {("variants[0].price.amount", ErrorCode.THREAT_DETECTED)},
        ),
    ],
)
def test_price_member_errors_name_the_member(price: dict[str, Any], expected: set[tuple[str, str]]) -> None:
    assert reported(payload(variants__0__price=price)) == expected


def test_a_description_over_10000_characters_is_out_of_range() -> None:
    assert reported(payload(description_html="x" * 10_001)) == {("description_html", ErrorCode.OUT_OF_RANGE)}
    assert parse_product_payload(payload(description_html="x" * 10_000), SANITIZER).description_html == "x" * 10_000


def test_a_description_is_sanitised_not_refused() -> None:
    body = payload(description_html='<p onclick="x()">Hi<script>alert(1)</script> <a href="javascript:x">y</a></p>')
    draft = parse_product_payload(body, SANITIZER)
    assert draft.description_html == '<p>Hi <a rel="noopener noreferrer nofollow">y</a></p>'


def test_a_description_that_sanitises_to_nothing_is_absent() -> None:
    assert parse_product_payload(payload(description_html="<script>x</script>  "), SANITIZER).description_html is None


@pytest.mark.parametrize("brand", ["<b>Ray-Ban</b>", "Ray>Ban", "<script>"])
def test_markup_in_brand_is_a_threat(brand: str) -> None:
    error = failure(payload(brand=brand)).errors
    assert error == (
        FieldError("brand", ErrorCode.THREAT_DETECTED, "markup ('<' or '>') is not allowed in plain text"),
    )


@pytest.mark.parametrize("color_name", ["Bl\x07ack", "Black\x00", "Bl\u200back", "Bla\nck"])
def test_control_characters_in_color_name_are_invalid(color_name: str) -> None:
    assert failure(payload(variants__0__color_name=color_name)).errors == (
        FieldError("variants[0].color_name", ErrorCode.INVALID_VALUE, "control characters are not allowed"),
    )


def test_more_than_20_tags_is_out_of_range() -> None:
    assert reported(payload(tags=[f"tag-{i}" for i in range(21)])) == {("tags", ErrorCode.OUT_OF_RANGE)}
    assert len(parse_product_payload(payload(tags=[f"tag-{i}" for i in range(20)]), SANITIZER).tags) == 20


@pytest.mark.parametrize("url", ["http://img.example.com/a.jpg", "https://", "ftp://x/a.jpg", "//img.example.com/a"])
def test_an_image_url_that_is_not_https_is_invalid(url: str) -> None:
    body = payload(variants__0__image_urls=["https://img.example.com/ok.jpg", url])
    assert reported(body) == {("variants[0].image_urls", ErrorCode.INVALID_VALUE)}


def test_more_than_10_image_urls_is_out_of_range() -> None:
    body = payload(variants__0__image_urls=[f"https://img.example.com/{i}.jpg" for i in range(11)])
    assert reported(body) == {("variants[0].image_urls", ErrorCode.OUT_OF_RANGE)}


def test_sunglasses_only_fields_on_eyeglasses_are_each_reported() -> None:
    body = payload(category="eyeglasses")
    body["variants"][1].update(polarized=True, uv_protection="UV400")
    assert reported(body) == {
        ("variants[0].lens_category", ErrorCode.INVALID_VALUE),
        ("variants[1].lens_category", ErrorCode.INVALID_VALUE),
        ("variants[1].polarized", ErrorCode.INVALID_VALUE),
        ("variants[1].uv_protection", ErrorCode.INVALID_VALUE),
    }


def test_a_body_that_is_not_an_object_is_refused() -> None:
    assert failure([VALID]).errors == (FieldError(None, ErrorCode.INVALID_VALUE, "the body must be a JSON object"),)


@pytest.mark.parametrize("variants", [None, [], "RB3016", {"sku": "RB3016-1"}])
def test_a_product_without_a_variant_list_is_missing_variants(variants: Any) -> None:
    assert reported(payload(variants=variants)) == {("variants", ErrorCode.MISSING_FIELD)}


def test_a_variant_that_is_not_an_object_is_invalid() -> None:
    assert reported(payload(variants=[VALID["variants"][0], "RB3016-990-49"])) == {
        ("variants[1]", ErrorCode.INVALID_VALUE)
    }


def test_regression_a_bad_price_shape_hides_the_other_errors_of_its_variant() -> None:
    body = payload(variants__0__price="163.00", variants__0__lens_width_mm=99)
    assert reported(body) == {
        ("variants[0].price", ErrorCode.INVALID_VALUE),
        ("variants[0].lens_width_mm", ErrorCode.OUT_OF_RANGE),
    }


def test_regression_a_huge_amount_with_three_decimals_crashes_the_parser() -> None:
    body = payload(variants__0__price={"amount": "1234567890123456789012345678.001", "currency": "EUR"})
    assert reported(body) == {("variants[0].price.amount", ErrorCode.INVALID_VALUE)}
