"""OpenAPI documentation of the API shapes.

Bodies are parsed by the domain (one set of rules and error codes for the API and the feed), so
these models describe the contract for ``/docs`` and for schema-driven fuzzing; they do not
validate requests themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Query
from pydantic import BaseModel, Field


class Price(BaseModel):
    amount: str = Field(examples=["163.00"], description="decimal with at most 2 places, > 0, ≤ 100000")
    currency: str = Field(examples=["EUR"], description="ISO 4217 alpha-3")


class VariantInput(BaseModel):
    sku: str = Field(examples=["RB3016-W0365-51"])
    gtin: str | None = Field(default=None, examples=["08053672000016"])
    color_name: str
    color_hex: str | None = Field(default=None, examples=["#000000"])
    lens_width_mm: int = Field(ge=40, le=62)
    bridge_width_mm: int = Field(ge=14, le=24)
    temple_length_mm: int = Field(ge=120, le=155)
    lens_height_mm: int | None = Field(default=None, ge=20, le=60)
    price: Price
    stock_quantity: int = Field(default=0, ge=0)
    rx_compatible: bool | None = None
    polarized: bool = False
    lens_category: int | None = Field(default=None, ge=0, le=4, description="sunglasses only, then required")
    uv_protection: Literal["UV400", "UV380"] | None = None
    image_urls: list[str] = Field(default_factory=list, max_length=10)


class VariantOut(VariantInput):
    size_label: str = Field(examples=["51□21-145"])
    size_class: Literal["small", "medium", "large"]
    progressive_ready: bool


class ProductInput(BaseModel):
    style_id: str = Field(examples=["RB3016"])
    brand: str = Field(examples=["Ray-Ban"])
    name: str = Field(examples=["Clubmaster"])
    category: Literal["eyeglasses", "sunglasses"]
    frame_shape: Literal[
        "rectangle", "square", "round", "oval", "cat-eye", "aviator", "wayfarer", "browline", "butterfly", "geometric"
    ]
    frame_material: Literal[
        "acetate", "metal", "titanium", "stainless-steel", "tr90", "ultem", "carbon-fiber", "wood", "mixed"
    ]
    rim_type: Literal["full-rim", "semi-rimless", "rimless"]
    gender: Literal["men", "women", "unisex", "kids"] = "unisex"
    description_html: str | None = Field(default=None, max_length=10_000)
    tags: list[str] = Field(default_factory=list, max_length=20)
    variants: list[VariantInput] = Field(min_length=1)


class ProductOut(ProductInput):
    product_id: str
    face_shapes: list[str]
    status: Literal["active", "archived"]
    completeness: float
    version: int
    created_at: str
    updated_at: str
    variants: list[VariantOut]  # type: ignore[assignment]


class ProductPage(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None


class FacetValue(BaseModel):
    value: str
    count: int


class FacetsOut(BaseModel):
    brand: list[FacetValue]
    category: list[FacetValue]
    frame_shape: list[FacetValue]
    frame_material: list[FacetValue]
    rim_type: list[FacetValue]
    gender: list[FacetValue]
    size_class: list[FacetValue]
    face_shape: list[FacetValue]


class HistoryItem(BaseModel):
    version: int
    at: str
    actor: str
    source: str = Field(examples=["api", "ingestion:01J…"])
    changes: dict[str, Any]


class HistoryOut(BaseModel):
    items: list[HistoryItem]


class VariantPatch(BaseModel):
    price: Price | None = None
    stock_quantity: int | None = Field(default=None, ge=0)


class FieldProblem(BaseModel):
    field: str | None
    code: str
    message: str


class ProblemOut(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    correlation_id: str
    errors: list[FieldProblem] | None = None


@dataclass
class FilterParams:
    brand: str | None = Query(None)
    category: str | None = Query(None, description="eyeglasses | sunglasses")
    frame_shape: str | None = Query(None)
    frame_material: str | None = Query(None)
    rim_type: str | None = Query(None)
    gender: str | None = Query(None)
    size_class: str | None = Query(None, description="small | medium | large")
    face_shape: str | None = Query(None)
    min_price: str | None = Query(None, description="inclusive; any variant in range matches")
    max_price: str | None = Query(None, description="inclusive")
    currency: str | None = Query(None)
    in_stock: str | None = Query(None, description="true | false")
    q: str | None = Query(None, description="words matched as plain text, by word prefix")


@dataclass
class SearchParams(FilterParams):
    sort: str | None = Query(None, description="name | -name | price | -price | -updated_at")
    limit: str | None = Query(None, description="1-100, default 20")
    cursor: str | None = Query(None, description="next_cursor of the previous page")


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    """Resolves local ``$ref``s so the request schema stands alone inside the OpenAPI document."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(definitions[node["$ref"].rsplit("/", 1)[-1]], definitions)
        return {key: _inline(value, definitions) for key, value in node.items() if key != "$defs"}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node


def body(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline(schema, schema.get("$defs", {}))}},
        }
    }


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": ProblemOut, "content": {"application/problem+json": {}}, "description": "problem details"}
        for status in statuses
    }
