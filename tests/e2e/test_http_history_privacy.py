"""The history API shows what changed, never the stored copies ingestion keeps to undo a run."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import httpx

from domain.history import ingestion_source, record_change
from domain.ports import ProductWrite
from entrypoints.container import Container, resolve
from tests.builders import T0, product


async def test_history_items_leave_out_previous_and_reverts(
    http: httpx.AsyncClient, app_and_container: tuple[Any, Container]
) -> None:
    _, container = app_and_container
    catalog = await resolve(container.catalog)
    created = product()
    changed = created.replaced_by(dataclasses.replace(created.draft, name="Club"), T0 + timedelta(seconds=1))
    source = ingestion_source("run-1")
    await catalog.write_batch([ProductWrite(None, created, record_change(None, created, "ingestor", source, True))])
    entry = record_change(created, changed, "ingestor", source, keep_previous=True, reverts=True)
    await catalog.write_batch([ProductWrite(created, changed, entry)])
    assert [e.previous for e in await catalog.entries(created.product_id)] == [None, created]
    response = await http.get(f"/api/v1/products/{created.product_id}/history")
    assert response.status_code == 200
    items = response.json()["items"]
    assert [set(item) for item in items] == [{"version", "at", "actor", "source", "changes"}] * 2
    assert [(item["version"], item["source"]) for item in items] == [(1, source), (2, source)]
    assert "previous" not in response.text and "reverts" not in response.text
