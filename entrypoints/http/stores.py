"""Store routes (CONTRACT.md 4.5): profiles, and the store generation data streamed as one JSON document."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from application.authorization import Caller
from application.stores import StoreData
from domain.stores import profile_to_dict
from entrypoints.container import UseCases
from entrypoints.http import schemas
from entrypoints.http.dependencies import json_body, use_cases
from entrypoints.http.security import current_caller

router = APIRouter(prefix="/api/v1", tags=["stores"], dependencies=[Depends(current_caller)])
PROBLEMS = schemas.problem_responses
#: Products per chunk of the streamed catalog.
CHUNK = 100


class StoreProfileInput(BaseModel):
    name: str = Field(examples=["Eyewear Europe"], description="1-120 characters, plain text")
    currency: str = Field(examples=["EUR"], description="ISO 4217 alpha-3")
    categories: list[Literal["eyeglasses", "sunglasses"]] = Field(default_factory=list, description="empty: all")
    brands: list[str] = Field(default_factory=list, max_length=200, description="empty: all; case-insensitive")
    include_out_of_stock: bool = False


class StoreProfileOut(StoreProfileInput):
    store_id: str = Field(examples=["eu-main"], description="1-60 of a-z, 0-9 and '-'")


class PriceRangeOut(BaseModel):
    min: str = Field(examples=["120.00"])
    max: str = Field(examples=["163.00"])
    currency: str


class StoreVariantOut(BaseModel):
    sku: str
    color_name: str
    size_label: str
    price: str = Field(examples=["163.00"], description="in the store currency")
    in_stock: bool


class StoreProductOut(BaseModel):
    product_id: str
    url_path: str = Field(examples=["/p/ray-ban-rb3016"])
    title: str = Field(examples=["Ray-Ban Clubmaster"])
    brand: str
    category: str
    frame_shape: str
    face_shapes: list[str]
    price_range: PriceRangeOut
    size_labels: list[str]
    colors: list[str]
    image_url: str | None
    variants: list[StoreVariantOut]


class CollectionOut(BaseModel):
    collection_id: str = Field(examples=["category-sunglasses", "shape-round", "brand-ray-ban"])
    title: str
    product_ids: list[str]


class StoreFacetsOut(BaseModel):
    brand: list[schemas.FacetValue]
    frame_shape: list[schemas.FacetValue]
    frame_material: list[schemas.FacetValue]
    rim_type: list[schemas.FacetValue]
    size_class: list[schemas.FacetValue]
    gender: list[schemas.FacetValue]
    face_shape: list[schemas.FacetValue]


class StoreCountsOut(BaseModel):
    products: int
    variants: int


class StoreCatalogOut(BaseModel):
    store: StoreProfileOut
    generated_at: str
    products: list[StoreProductOut]
    collections: list[CollectionOut]
    facets: StoreFacetsOut
    counts: StoreCountsOut


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


async def catalog_chunks(data: StoreData) -> AsyncIterator[bytes]:
    """``{"store", "generated_at", "products": [...], "collections", "facets", "counts"}``, products as they come."""
    try:
        yield (_json(data.head())[:-1] + ',"products":[').encode()
        batch: list[str] = []
        separator = ""
        async for entry in data.products:
            batch.append(_json(entry))
            if len(batch) == CHUNK:
                yield (separator + ",".join(batch)).encode()
                separator, batch = ",", []
        if batch:
            yield (separator + ",".join(batch)).encode()
        yield ("]," + _json(data.tail())[1:]).encode()
    finally:
        close = getattr(data.products, "aclose", None)
        if close is not None:
            await close()  # a client that went away must not leave a server cursor open


@router.put(
    "/stores/{store_id}",
    response_model=StoreProfileOut,
    responses={201: {"model": StoreProfileOut, "description": "created"}, **PROBLEMS(400, 401, 403, 422)},
    openapi_extra=schemas.body(StoreProfileInput),
)
async def put_store(
    store_id: str, request: Request, caller: Caller = Depends(current_caller), cases: UseCases = Depends(use_cases)
) -> JSONResponse:
    """Creates (201) or replaces (200) a store profile."""
    profile, created = await cases.put_store(store_id, await json_body(request), caller)
    headers = {"Location": f"/api/v1/stores/{profile.store_id}"} if created else None
    return JSONResponse(profile_to_dict(profile), status_code=201 if created else 200, headers=headers)


@router.get("/stores/{store_id}", response_model=StoreProfileOut, responses=PROBLEMS(401, 403, 404))
async def get_store(
    store_id: str, caller: Caller = Depends(current_caller), cases: UseCases = Depends(use_cases)
) -> JSONResponse:
    return JSONResponse(profile_to_dict(await cases.get_store(store_id, caller)))


@router.get("/stores/{store_id}/catalog", response_model=StoreCatalogOut, responses=PROBLEMS(401, 403, 404))
async def store_catalog(
    store_id: str, caller: Caller = Depends(current_caller), cases: UseCases = Depends(use_cases)
) -> StreamingResponse:
    """The store generation data (FEED.md): streamed, so a large store is never held in memory at once."""
    data = await cases.store_catalog(store_id, caller)
    return StreamingResponse(catalog_chunks(data), media_type="application/json")
