"""Query-plan inspection: which stages the server would run for a query shape.

The explain helpers under ``QueryPlanAnalyzer`` (adapters/mongo/query_analyzer.py), which the
query-plan tests and ``eyewear migrate --check`` use.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase


def plan_stages(plan: Any) -> list[str]:
    """Every ``stage`` in a winning plan tree, depth first."""
    stages: list[str] = []
    if isinstance(plan, dict):
        if "stage" in plan:
            stages.append(str(plan["stage"]))
        for key in ("inputStage", "queryPlan", "winningPlan"):
            if key in plan:
                stages += plan_stages(plan[key])
        for child in plan.get("inputStages", []):
            stages += plan_stages(child)
    return stages


def winning_plan(explained: dict[str, Any]) -> Any:
    if "queryPlanner" in explained:
        return explained["queryPlanner"]["winningPlan"]
    for stage in explained.get("stages", []):  # aggregate explain: the $cursor stage holds the plan
        if "$cursor" in stage:
            return stage["$cursor"]["queryPlanner"]["winningPlan"]
    raise ValueError("the explain output holds no query planner section")


async def explain_find(
    database: AsyncDatabase[Any],
    collection: str,
    filter: dict[str, Any],
    sort: list[tuple[str, int]] | None = None,
    limit: int | None = None,
) -> list[str]:
    command: dict[str, Any] = {"find": collection, "filter": filter}
    if sort:
        command["sort"] = dict(sort)
    if limit:
        command["limit"] = limit
    explained = await database.command("explain", command, verbosity="queryPlanner")
    return plan_stages(winning_plan(explained))


async def explain_aggregate(database: AsyncDatabase[Any], collection: str, pipeline: list[dict[str, Any]]) -> list[str]:
    explained = await database.command(
        "explain", {"aggregate": collection, "pipeline": pipeline, "cursor": {}}, verbosity="queryPlanner"
    )
    return plan_stages(winning_plan(explained))
