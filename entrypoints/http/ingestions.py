"""Ingestion routes (CONTRACT.md 4.4): a feed in the body, the run in the background.

The caller is authorized before a byte of the body is read; the body is then streamed to a file
in the data dir's spool (never held in memory), the run recorded, and executed by a background
task that owns the file and deletes it when done. A killed process leaves its files to the next
sweep (``FeedSpool``) and its runs to the next process that looks at them (``RunLeases``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

import structlog
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from adapters.feeds.readers import FeedFile, format_for
from adapters.files.feed_spool import FeedSpool
from application.authorization import Caller
from domain.feed_rows import row_error_to_dict
from domain.ingestion import ErrorPolicy, IngestionRun, run_report
from entrypoints.container import UseCases
from entrypoints.http import schemas
from entrypoints.http.dependencies import use_cases
from entrypoints.http.problems import Problem
from entrypoints.http.security import current_caller

router = APIRouter(prefix="/api/v1", tags=["ingestion"], dependencies=[Depends(current_caller)])
PROBLEMS = schemas.problem_responses
log = structlog.get_logger(__name__)

#: Feeds are large: this route accepts bodies up to this size (the rest of the API stays at 1 MiB).
MAX_FEED_BYTES = 512 * 1024 * 1024
#: Seconds between cancellations of a run at shutdown until it has seen one (see ``stop_background_runs``).
CANCEL_AGAIN_AFTER = 0.05
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


async def _spool(request: Request, run_id: str, suffix: str) -> Path:
    spool: FeedSpool = request.app.state.spool
    handle, path = spool.create(run_id, suffix)
    try:
        with os.fdopen(handle, "wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
    except BaseException:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    return path


def _background(request: Request) -> dict[asyncio.Task[Any], asyncio.Event]:
    """The runs going on, each with the event it sets once it has seen its cancellation."""
    tasks: dict[asyncio.Task[Any], asyncio.Event] | None = getattr(request.app.state, "ingestion_tasks", None)
    if tasks is None:
        tasks = {}
        request.app.state.ingestion_tasks = tasks
    return tasks


async def _execute(
    cases: UseCases, run: IngestionRun, path: Path, source_name: str, caller: Caller, stopping: asyncio.Event
) -> None:
    try:
        with structlog.contextvars.bound_contextvars(run_id=run.run_id):
            # The format comes from the spooled file's suffix; the run's source is the client's name.
            feed = FeedFile(path, *format_for(path), name=source_name)
            await cases.ingest.execute(run, feed, caller)
    except asyncio.CancelledError:
        stopping.set()
        await cases.ingest.abandon(run.run_id)
        raise
    except Exception:  # execute() turns data and storage problems into a failed run; this is a bug
        log.exception("ingestion.run.crashed", run_id=run.run_id)
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)


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
    path = await _spool(request, run.run_id, suffix)
    try:
        run = await cases.ingest.enqueue(run)
    except BaseException:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    stopping = asyncio.Event()
    task = asyncio.create_task(_execute(cases, run, path, source_name, caller, stopping))
    tasks = _background(request)
    tasks[task] = stopping
    task.add_done_callback(lambda done: tasks.pop(done, None))
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


async def stop_background_runs(app: Any) -> None:
    """At shutdown: running feeds are cancelled and recorded as interrupted (a re-run converges).

    The cancellation is repeated until the run has seen it: one can be lost inside the driver
    (PyMongo waits with ``asyncio.wait_for``, which on Python 3.11 drops a cancellation that
    arrives as the awaited read completes), and the run would then go on to its end.
    """
    tasks: dict[asyncio.Task[Any], asyncio.Event] = getattr(app.state, "ingestion_tasks", {})
    for task in list(tasks):
        task.cancel()
    for task, stopping in list(tasks.items()):
        while not task.done() and not stopping.is_set():
            await asyncio.wait({task}, timeout=CANCEL_AGAIN_AFTER)
            if not stopping.is_set():
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
