"""``GET /api/v1/audit`` (CONTRACT.md 4.6) and the public keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from application.authorization import Caller
from domain.audit import AuditRecord, audit_fields
from domain.snapshot import timestamp
from entrypoints.container import UseCases
from entrypoints.http import schemas
from entrypoints.http.dependencies import use_cases
from entrypoints.http.security import current_caller

router = APIRouter(prefix="/api/v1", tags=["audit"], dependencies=[Depends(current_caller)])
keys_router = APIRouter(tags=["auth"])


def audit_to_dict(record: AuditRecord) -> dict[str, Any]:
    item = audit_fields(record)
    del item["record_id"]  # internal: the cursor carries what paging needs
    item["at"] = timestamp(record.at)
    return item


@router.get("/audit", responses=schemas.problem_responses(401, 403, 422))
async def read_audit(
    request: Request,
    actor: str | None = Query(None),
    action: str | None = Query(None),
    decision: str | None = Query(None, description="allow | deny"),
    limit: str | None = Query(None, description="1-200, default 50"),
    cursor: str | None = Query(None),
    caller: Caller = Depends(current_caller),
    cases: UseCases = Depends(use_cases),
) -> JSONResponse:
    page = await cases.read_audit(dict(request.query_params), caller)
    return JSONResponse({"items": [audit_to_dict(r) for r in page.items], "next_cursor": page.next_cursor})


@keys_router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> JSONResponse:
    """The public keys: every key that verifies, so a rotated-out signer's tokens still check, and
    every other replica's published key (ADR 0018), answered from memory: no database round trip."""
    keys = request.app.state.security.verifier.keys.public_jwks()
    return JSONResponse(keys, headers={"Cache-Control": "max-age=300"})
