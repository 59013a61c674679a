"""The app as users run it: built by the real container, on the real (test) MongoDB server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from entrypoints.container import Container, resolve
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.conftest import empty


@pytest.fixture(scope="session")
async def app_and_container(mongo_url: str) -> AsyncIterator[tuple[Any, Container]]:
    settings = Settings(mongodb_url=mongo_url, mongodb_db=f"eyewear_e2e_{uuid.uuid4().hex[:8]}")
    container = Container(settings=settings)
    app = create_app(container)
    async with app.router.lifespan_context(app):
        yield app, container
        database = await resolve(container.database)
        await database.client.drop_database(database.name)


@pytest.fixture
async def http(app_and_container: tuple[Any, Container]) -> AsyncIterator[httpx.AsyncClient]:
    app, container = app_and_container
    await empty(await resolve(container.database))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://catalog.test") as client:
        yield client
