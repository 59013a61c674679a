"""The catalog's use cases behind any entrypoint: a job, a notebook, another service's worker.

``open_catalog`` does what ``eyewear serve`` does before it takes requests (resources started,
migrations applied) and what it does when it stops (resources closed, the embedded server stopped
when this process started it), and hands over the same ``UseCases`` the HTTP routes call. Every use
case authorizes its caller and audits the decision, whoever calls it: give it a ``Caller`` built from
the principal the embedding service authenticated (``caller_for``), or ``system_caller`` for trusted
maintenance work.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from adapters.mongo.migrations import migrate
from application.authorization import Caller
from domain.rbac import Principal, parse_roles
from entrypoints.container import Container, UseCases, resolve
from entrypoints.settings import Settings, load_settings


@dataclass(frozen=True)
class EmbeddedCatalog:
    """The use cases, and the container behind them (for what the use cases do not cover)."""

    cases: UseCases
    container: Container


def caller_for(subject: str, roles: Iterable[str], brands: Iterable[str] = (), correlation_id: str = "-") -> Caller:
    """A caller with these role names (unknown names grant nothing) and brand scope."""
    principal = Principal(subject=subject, roles=parse_roles(roles), brands=frozenset(brands))
    return Caller(principal, correlation_id)


@contextlib.asynccontextmanager
async def open_catalog(settings: Settings | None = None) -> AsyncIterator[EmbeddedCatalog]:
    """The catalog on ``settings`` (default: the ``EYEWEAR_*`` environment), open for the block."""
    container = Container(settings=settings or load_settings())
    await container.init_resources()  # type: ignore[misc]
    try:
        await migrate(await resolve(container.database))
        yield EmbeddedCatalog(await resolve(container.use_cases), container)
    finally:
        await container.shutdown_resources()  # type: ignore[misc]
