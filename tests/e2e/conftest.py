"""The app as users run it: built by the real container, on the real (test) MongoDB server."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from entrypoints.container import Container, resolve
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.conftest import empty


@pytest.fixture(scope="session")
async def app_and_container(mongo_url: str) -> AsyncIterator[tuple[Any, Container]]:
    with tempfile.TemporaryDirectory(prefix="eyewear-e2e-") as data_dir:
        settings = Settings(
            mongodb_url=mongo_url, mongodb_db=f"eyewear_e2e_{uuid.uuid4().hex[:8]}", data_dir=Path(data_dir)
        )
        container = Container(settings=settings)
        app = create_app(container)
        async with app.router.lifespan_context(app):
            yield app, container
            database = await resolve(container.database)
            await database.client.drop_database(database.name)


@pytest.fixture(scope="session")
def issue(app_and_container: tuple[Any, Container]) -> Callable[..., str]:
    """Signs a token with the app's own keys: ``issue("editor", brands=["Ray-Ban"])``."""
    _, container = app_and_container
    issuer = container.token_issuer()

    def make(*roles: str, subject: str = "tester", brands: tuple[str, ...] = (), ttl: int = 600) -> str:
        return str(issuer.issue(subject=subject, roles=list(roles), brands=list(brands), ttl_seconds=ttl).token)

    return make


@pytest.fixture
async def anonymous_http(app_and_container: tuple[Any, Container]) -> AsyncIterator[httpx.AsyncClient]:
    app, container = app_and_container
    await empty(await resolve(container.database))
    # Emptied behind the app's back: its cache would learn of it from the change stream a few ms on.
    await (await resolve(container.cache_store)).clear()
    (await resolve(container.brand_names)).forget()  # the brands collection was emptied too
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://catalog.test") as client:
        yield client


@pytest.fixture
def http(anonymous_http: httpx.AsyncClient, issue: Callable[..., str]) -> httpx.AsyncClient:
    """A client that sends an admin token (subject ``tester``) with every request."""
    anonymous_http.headers["Authorization"] = f"Bearer {issue('admin')}"
    return anonymous_http
