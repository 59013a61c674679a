"""Ingestion routes (CONTRACT.md 4.4): a feed in the body, the run in the background.

The caller is authorized before a byte of the body is read; the body is then streamed to the feed
store (this host's spool, or MongoDB with a job engine; never held in memory), the run recorded as
queued and submitted to the run queue: executed by this process's consumer, or by a worker
(CONTRACT.md section 6). A killed process leaves its files to the next sweep (``FeedSpool``) and its
runs to the next process that looks at them (``RunLeases``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from application.authorization import Caller
from domain.feed_rows import row_error_to_dict
from domain.ingestion import ErrorPolicy, run_report
from entrypoints.container import Runs, UseCases
from entrypoints.http import schemas
from entrypoints.http.dependencies import use_cases
from entrypoints.http.problems import Problem
from entrypoints.http.security import current_caller

router = APIRouter(prefix="/api/v1", tags=["ingestion"], dependencies=[Depends(current_caller)])
PROBLEMS = schemas.problem_responses
log = structlog.get_logger(__name__)

#: Feeds are large: this route accepts bodies up to this size (the rest of the API stays at 1 MiB).
MAX_FEED_BYTES = 512 * 1024 * 1024
_SUFFIXES = {
    "application/x-ndjson": ".ndjson",
    "application/jsonl": ".jsonl",
    "application/json-lines": ".jsonl",
    "text/csv": ".csv",
}


def _suffix(request: Request) -> str:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    suffix = _SUFFIXES.get(media)
    if suffix is None:
        accepted = ", ".join(sorted(_SUFFIXES))
        raise Problem(415, f"send the feed as one of: {accepted} (gzip with Content-Encoding: gzip)")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        return suffix + ".gz"
    if encoding not in ("", "identity"):
        raise Problem(415, f"Content-Encoding {encoding!r} is not supported; use gzip or none")
    return suffix


@router.post(
    "/ingestions",
    status_code=202,
    responses=PROBLEMS(401, 403, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
async def start_ingestion(
    request: Request,
    dry_run: bool = Query(False),
    error_policy: ErrorPolicy = Query(ErrorPolicy.SKIP_INVALID),
    caller: Caller = Depends(current_caller),
    cases: UseCases = Depends(use_cases),
) -> JSONResponse:
    suffix = _suffix(request)
    source_name = request.headers.get("x-feed-name", "").strip() or f"upload{suffix}"
    run = await cases.ingest.admit(source_name, caller, dry_run, error_policy, source_field="X-Feed-Name")
    runs: Runs = request.app.state.runs
    await runs.feeds.put(run.run_id, suffix, request.stream())
    try:
        run = await cases.ingest.enqueue(run, hold=not runs.elsewhere)
    except BaseException:
        await asyncio.shield(runs.feeds.discard(run.run_id))
        raise
    try:
        await runs.queue.submit(run.run_id)
    except Exception as error:  # the run is recorded: the next sweep submits it again
        log.warning("ingestion.run.submit_failed", run_id=run.run_id, error=type(error).__name__)
    location = f"/api/v1/ingestions/{run.run_id}"
    return JSONResponse(run_report(run), status_code=202, headers={"Location": location})


@router.get("/ingestions", responses=PROBLEMS(401, 403, 422))
async def list_runs(
    limit: int = Query(20, ge=1, le=100),
    caller: Caller = Depends(current_caller),
    cases: UseCases = Depends(use_cases),
) -> dict[str, Any]:
    runs = await cases.list_runs(caller, limit)
    return {"items": [run_report(run) for run in runs]}


@router.get("/ingestions/{run_id}", responses=PROBLEMS(401, 403, 404))
async def get_run(
    run_id: str, caller: Caller = Depends(current_caller), cases: UseCases = Depends(use_cases)
) -> dict[str, Any]:
    return run_report(await cases.get_run(run_id, caller))


@router.get("/ingestions/{run_id}/errors", responses=PROBLEMS(401, 403, 404, 422))
async def run_errors(
    run_id: str,
    cursor: str | None = Query(None),
    caller: Caller = Depends(current_caller),
    cases: UseCases = Depends(use_cases),
) -> dict[str, Any]:
    page = await cases.run_errors(run_id, caller, cursor)
    return {"items": [row_error_to_dict(error) for error in page.items], "next_cursor": page.next_cursor}


@router.post("/ingestions/{run_id}/rollback", responses=PROBLEMS(401, 403, 404, 409))
async def rollback_run(
    run_id: str,
    force: bool = Query(False),
    caller: Caller = Depends(current_caller),
    cases: UseCases = Depends(use_cases),
) -> dict[str, Any]:
    return run_report(await cases.rollback(run_id, caller, force))
