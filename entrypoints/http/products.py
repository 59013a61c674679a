"""Catalog routes (CONTRACT.md 4.3). Routes translate HTTP to use cases and back; no rules here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from application.authorization import Caller
from domain.history import HistoryEntry
from domain.product import Product
from domain.search import FacetCount
from domain.snapshot import product_to_dict, timestamp
from entrypoints.container import UseCases
from entrypoints.http import schemas
from entrypoints.http.dependencies import json_body, required_version, use_cases
from entrypoints.http.security import current_caller

router = APIRouter(prefix="/api/v1", tags=["catalog"], dependencies=[Depends(current_caller)])
PROBLEMS = schemas.problem_responses


def product_response(product: Product, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        product_to_dict(product), status_code=status, headers={"ETag": f'"{product.version}"', **(headers or {})}
    )


def history_to_dict(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "version": entry.version,
        "at": timestamp(entry.at),
        "actor": entry.actor,
        "source": entry.source,
        "changes": entry.changes,
    }


def facets_to_dict(facets: dict[str, list[FacetCount]]) -> dict[str, Any]:
    return {name: [{"value": f.value, "count": f.count} for f in values] for name, values in facets.items()}


def _query(request: Request) -> dict[str, str]:
    return dict(request.query_params)


@router.post(
    "/products",
    status_code=201,
    responses=PROBLEMS(401, 403, 409, 422),
    openapi_extra=schemas.body(schemas.ProductInput),
    response_model=schemas.ProductOut,
)
async def create_product(
    request: Request, caller: Caller = Depends(current_caller), cases: UseCases = Depends(use_cases)
) -> JSONResponse:
    product = await cases.create_product(await json_body(request), caller)
    return product_response(product, 201, {"Location": f"/api/v1/products/{product.product_id}"})


@router.get("/products", response_model=schemas.ProductPage, responses=PROBLEMS(401, 403, 422))
async def search_products(
    request: Request,
    params: schemas.SearchParams = Depends(),
    caller: Caller = Depends(current_caller),
    cases: UseCases = Depends(use_cases),
) -> JSONResponse:
    page = await cases.search(_query(request), caller)
    return JSONResponse({"items": [product_to_dict(p) for p in page.items], "next_cursor": page.next_cursor})


@router.get("/products/facets", response_model=schemas.FacetsOut, responses=PROBLEMS(401, 403, 422))
async def product_facets(
    request: Request,
    params: schemas.FilterParams = Depends(),
    caller: Caller = Depends(current_caller),
    cases: UseCases = Depends(use_cases),
) -> JSONResponse:
    return JSONResponse(facets_to_dict(await cases.facets(_query(request), caller)))


@router.get("/products/{product_id}", response_model=schemas.ProductOut, responses=PROBLEMS(401, 403, 404))
async def get_product(
    product_id: str, caller: Caller = Depends(current_caller), cases: UseCases = Depends(use_cases)
) -> JSONResponse:
    return product_response(await cases.get_product(product_id, caller))


@router.put(
    "/products/{product_id}",
    response_model=schemas.ProductOut,
    responses=PROBLEMS(401, 403, 404, 409, 412, 422, 428),
    openapi_extra=schemas.body(schemas.ProductInput),
)
async def replace_product(
    product_id: str,
    request: Request,
    version: int = Depends(required_version),
    caller: Caller = Depends(current_caller),
    cases: UseCases = Depends(use_cases),
) -> JSONResponse:
    payload = await json_body(request)
    return product_response(await cases.replace_product(product_id, payload, version, caller))


@router.delete("/products/{product_id}", status_code=204, responses=PROBLEMS(401, 403, 404))
async def archive_product(
    product_id: str, caller: Caller = Depends(current_caller), cases: UseCases = Depends(use_cases)
) -> Response:
    await cases.archive_product(product_id, caller)
    return Response(status_code=204)


@router.get("/products/{product_id}/history", response_model=schemas.HistoryOut, responses=PROBLEMS(401, 403, 404))
async def product_history(
    product_id: str, caller: Caller = Depends(current_caller), cases: UseCases = Depends(use_cases)
) -> JSONResponse:
    entries = await cases.get_history(product_id, caller)
    return JSONResponse({"items": [history_to_dict(e) for e in entries]})


@router.get("/skus/{sku}", response_model=schemas.ProductOut, responses=PROBLEMS(401, 403, 404))
async def get_by_sku(
    sku: str, caller: Caller = Depends(current_caller), cases: UseCases = Depends(use_cases)
) -> JSONResponse:
    return product_response(await cases.get_by_sku(sku, caller))


@router.patch(
    "/skus/{sku}",
    response_model=schemas.ProductOut,
    responses=PROBLEMS(401, 403, 404, 412, 422, 428),
    openapi_extra=schemas.body(schemas.VariantPatch),
)
async def patch_sku(
    sku: str,
    request: Request,
    version: int = Depends(required_version),
    caller: Caller = Depends(current_caller),
    cases: UseCases = Depends(use_cases),
) -> JSONResponse:
    payload = await json_body(request)
    return product_response(await cases.patch_variant(sku, payload, version, caller))
