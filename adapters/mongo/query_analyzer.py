"""``QueryPlanAnalyzer``: which index answers each query shape the repositories really send.

It listens to a client's commands (nothing restates the queries, so nothing can drift from the
code), folds them into shapes (the values replaced by ``?``: one plan per shape, whatever the
values), and explains one example of each shape with ``adapters.mongo.query_plans``. Used by the
query-plan contract test and by ``eyewear migrate --check``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pymongo import monitoring
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo.query_plans import explain_aggregate, explain_find

#: Commands whose filter the server plans; writes are explained as the find of their filter.
QUERY_COMMANDS = frozenset({"find", "aggregate", "update", "delete", "findAndModify", "count", "distinct"})
INDEX_STAGES = frozenset({"IXSCAN", "IDHACK", "EXPRESS_IXSCAN", "COUNT_SCAN", "DISTINCT_SCAN"})


def shape_of(value: Any) -> Any:
    """The value with every literal replaced by ``?``; field names, operators, lists' shapes and
    sort directions (they decide whether an index serves the sort) stay."""
    if isinstance(value, dict):
        return {key: item if key == "$sort" else shape_of(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        shapes = [shape_of(item) for item in value]
        return "?" if all(s == "?" for s in shapes) else shapes
    return "?"


@dataclass(frozen=True)
class Query:
    """One plannable query: what the server is asked to find, on which collection."""

    command: str
    collection: str
    filter: dict[str, Any] = field(default_factory=dict)
    sort: dict[str, Any] | None = None
    pipeline: list[dict[str, Any]] | None = None

    @property
    def shape(self) -> str:
        body: dict[str, Any] = {"filter": shape_of(self.filter)} if self.pipeline is None else {}
        if self.sort:
            body["sort"] = self.sort
        if self.pipeline is not None:
            body["pipeline"] = shape_of(self.pipeline)
        return json.dumps(body, default=str)  # key order kept: it is the index prefix order


def queries_of(command: dict[str, Any]) -> list[Query]:
    """The plannable queries of one command as the driver sent it (several for a bulk write)."""
    name = next(iter(command))
    collection = str(command[name])
    if name == "find":
        return [Query(name, collection, command.get("filter", {}), command.get("sort") or None)]
    if name == "aggregate":
        return [Query(name, collection, pipeline=list(command["pipeline"]))]
    if name == "findAndModify":
        return [Query(name, collection, command.get("query", {}), command.get("sort") or None)]
    if name in ("count", "distinct"):
        return [Query(name, collection, command.get("query", {}))]
    statements = command.get("updates", command.get("deletes", []))
    return [Query(name, collection, statement.get("q", {})) for statement in statements]


@dataclass(frozen=True)
class PlanEntry:
    collection: str
    command: str
    shape: str
    stages: tuple[str, ...]

    @property
    def uses_index(self) -> bool:
        return "COLLSCAN" not in self.stages and bool(INDEX_STAGES & set(self.stages))

    def describe(self) -> str:
        return f"{self.collection} {self.command} {self.shape} -> {' > '.join(self.stages) or 'no plan'}"


@dataclass(frozen=True)
class PlanReport:
    entries: tuple[PlanEntry, ...]
    recorded: int

    @property
    def offending(self) -> tuple[PlanEntry, ...]:
        return tuple(entry for entry in self.entries if not entry.uses_index)

    @property
    def collections(self) -> set[str]:
        return {entry.collection for entry in self.entries}


class QueryPlanAnalyzer(monitoring.CommandListener):
    """Records the queries a client sends (as its event listener, or through ``record``); explains them."""

    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in QUERY_COMMANDS:
            self.record(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None: ...

    def failed(self, event: monitoring.CommandFailedEvent) -> None: ...

    def record(self, command: dict[str, Any]) -> None:
        self.commands.append(command)

    def queries(self) -> list[Query]:
        """One example of each distinct shape, in the order first seen."""
        distinct: dict[tuple[str, str, str], Query] = {}
        for command in self.commands:
            for query in queries_of(command):
                distinct.setdefault((query.collection, query.command, query.shape), query)
        return list(distinct.values())

    async def analyze(self, database: AsyncDatabase[Any]) -> PlanReport:
        """Explains every recorded shape on ``database`` (where the indexes in question are)."""
        entries = []
        for query in self.queries():
            if query.pipeline is not None:
                stages = await explain_aggregate(database, query.collection, query.pipeline)
            else:
                sort = list(query.sort.items()) if query.sort else None
                stages = await explain_find(database, query.collection, query.filter, sort)
            entries.append(PlanEntry(query.collection, query.command, query.shape, tuple(stages)))
        return PlanReport(tuple(entries), len(self.commands))
