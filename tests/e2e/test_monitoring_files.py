"""deploy/ as the real tools read it (docs/operations.md, "Dashboards and alerts").

promtool checks the Prometheus config (and the rule files it names), the alert rules and their unit
tests, and the live ``/metrics`` of a real ``eyewear serve`` process after some traffic. Every PromQL
expression of the alert rules and of the Grafana dashboard must parse (promtool, as recording rules)
and name only metrics that the live scrape exports. A missing promtool fails: it is never a skip.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_http_ingestion import ROWS, ndjson
from tests.e2e.test_metrics import CONTRACT, EXPORTED
from tests.support.served import serve, served_env

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
CONFIG = PROMETHEUS / "prometheus.yml"
ALERTS = PROMETHEUS / "alerts.yml"
ALERT_TESTS = PROMETHEUS / "alerts.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "eyewear.json"
OPERATIONS = ROOT / "docs" / "operations.md"
PROMTOOL_TIMEOUT = 120
SEVERITIES = {"page", "ticket"}


# promtool ------------------------------------------------------------------------------------------


def promtool_path() -> str:
    found = shutil.which("promtool") or next(
        (c for c in ("/usr/bin/promtool", "/usr/sbin/promtool") if Path(c).is_file()), None
    )
    if found is None:
        pytest.fail(
            "promtool is missing: install Debian's prometheus package "
            "(`bash .ci/ensure-test-tools` does it; `make test` runs that)"
        )
    return found


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool_path(), *args], input=stdin, capture_output=True, text=True, timeout=PROMTOOL_TIMEOUT, cwd=ROOT
    )


def assert_passed(result: subprocess.CompletedProcess[str]) -> None:
    command = " ".join(str(a) for a in result.args[1:])
    assert result.returncode == 0, (
        f"promtool {command} exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


# PromQL: the metric names an expression selects ---------------------------------------------------

#: Words of PromQL that are not metric names where they stand without a "(" after them.
PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "offset", "inf", "nan", "start", "end",
}  # fmt: skip
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")  # label names and values
_RANGES = re.compile(r"\[[^\[\]]*\]")  # ranges and subqueries: durations
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")  # label lists
_IDENTIFIER = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names that ``expr`` selects: identifiers left once strings, label matchers, ranges
    and label lists are gone, less function calls, aggregations (both are followed by "(") and
    PromQL's words. A digit before an identifier makes it part of a number or duration (``1e3``,
    ``5m``). ``{__name__=...}`` selectors are refused by the callers, since they are not seen here."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    return {name for name, call in _IDENTIFIER.findall(text) if not call and name.lower() not in PROMQL_WORDS}


def exported_names(scrape: str) -> set[str]:
    """The series names that the scrape's metric families export: a counter ``x`` exports
    ``x_total``, a histogram ``x_bucket``, ``x_sum`` and ``x_count``, a gauge ``x``. The client's
    ``*_created`` series are left out: they are not metrics of CONTRACT.md 5, and multiprocess mode
    does not export them, so no rule may rely on them."""
    names: set[str] = set()
    for family in text_string_to_metric_families(scrape):
        if family.name.endswith("_created"):
            continue
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_sum", "_count")}
        else:
            names.add(family.name)
    return names


def unexported(expressions: dict[str, str], exported: set[str]) -> dict[str, set[str]]:
    """Where each expression names a metric the service does not export (or none at all)."""
    problems: dict[str, set[str]] = {}
    for where, expr in expressions.items():
        names = metric_names(expr)
        missing = names - exported
        if missing or not names or "__name__" in expr:
            problems[where] = missing or {"<no metric named>"}
    return problems


# What the files hold ------------------------------------------------------------------------------


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def dashboard_panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside (collapsed) rows too."""
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


#: Grafana's variables, replaced by values that make valid PromQL (a regex matcher takes ".*").
GRAFANA_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "job": ".*",
    "instance": ".*",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?:(.*),\s*)?(\w+)\)\s*$", re.S)


def promql_of(grafana_expr: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in GRAFANA_VARIABLES, f"unknown Grafana variable ${name} in {grafana_expr!r}"
        return GRAFANA_VARIABLES[name]

    return _VARIABLE.sub(value, grafana_expr)


def dashboard_expressions(board: dict[str, Any]) -> dict[str, str]:
    """Panel queries and query variables (``label_values(selector, label)``: its selector), as PromQL."""
    found: dict[str, str] = {}
    for panel in dashboard_panels(board):
        for target in panel.get("targets", []):
            found[f"panel {panel['id']} {panel['title']!r} {target['refId']}"] = promql_of(target["expr"])
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = _LABEL_VALUES.match(query)
        assert match and match.group(1), f"variable {variable['name']}: not label_values(selector, label): {query!r}"
        found[f"variable {variable['name']}"] = promql_of(match.group(1))
    return found


def alert_expressions() -> dict[str, str]:
    return {f"alert {rule['alert']}": rule["expr"] for rule in alert_rules()}


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for line in markdown.splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            text = re.sub(r"[^\w\- ]", "", heading.group(1).lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


# A live scrape ------------------------------------------------------------------------------------


async def finished(http: httpx.AsyncClient, run_id: str, headers: dict[str, str]) -> dict[str, Any]:
    for _ in range(600):
        report = (await http.get(f"/api/v1/ingestions/{run_id}", headers=headers)).json()
        if report["status"] not in ("queued", "running"):
            return dict(report)
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


async def traffic(http: httpx.AsyncClient, admin: dict[str, str], viewer: dict[str, str]) -> None:
    """A little of everything the metrics count: an ingestion run, reads (a cache miss, then hits), a
    search, an auth failure, an authorization denied, a threat."""
    started = await http.post(
        "/api/v1/ingestions", content=ndjson(ROWS[:6]), headers={**admin, "Content-Type": "application/x-ndjson"}
    )
    assert started.status_code == 202, started.text
    assert (await finished(http, started.json()["run_id"], admin))["status"] == "succeeded"
    for _ in range(3):
        assert (await http.get(f"/api/v1/skus/{ROWS[0]['sku']}", headers=viewer)).status_code == 200
    search = await http.get("/api/v1/products", params={"brand": ROWS[0]["brand"]}, headers=viewer)
    assert search.status_code == 200 and search.json()["items"], search.text
    assert (await http.get("/api/v1/products", headers={"Authorization": "Bearer junk"})).status_code == 401
    refused = await http.delete(f"/api/v1/products/{search.json()['items'][0]['product_id']}", headers=viewer)
    assert refused.status_code == 403, refused.text
    assert (await http.get("/api/v1/products?brand[$ne]=x", headers=viewer)).status_code == 400


@pytest.fixture(scope="module")
async def live_scrape(mongo_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """``GET /metrics`` of a real ``eyewear serve`` process, after ``traffic``."""
    async with serve(served_env(mongo_url, tmp_path_factory.mktemp("monitoring"))) as served:
        admin = {"Authorization": f"Bearer {served.token('admin', subject='monitoring-admin')}"}
        viewer = {"Authorization": f"Bearer {served.token('viewer', subject='monitoring-viewer')}"}
        async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
            await traffic(http, admin, viewer)
            response = await http.get("/metrics")
    assert response.status_code == 200
    yield response.text


def samples(scrape: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(scrape)
        for s in family.samples
        if s.name == name
    }


# The tests ----------------------------------------------------------------------------------------


def test_promtool_accepts_the_scrape_config_and_the_rule_files_it_names() -> None:
    result = promtool("check", "config", str(CONFIG))
    assert_passed(result)
    assert "alerts.yml" in result.stdout, result.stdout  # `check config` checked the rule file too
    config = yaml.safe_load(CONFIG.read_text())
    assert "alerts.yml" in config["rule_files"]
    jobs = [job for job in config["scrape_configs"] if job.get("metrics_path", "/metrics") == "/metrics"]
    assert jobs and all(job.get("static_configs") or job.get("dns_sd_configs") for job in jobs), config
    assert all(group["targets"] for job in jobs for group in job.get("static_configs", [])), config
    assert all(sd["names"] and sd["port"] for job in jobs for sd in job.get("dns_sd_configs", [])), config


def test_promtool_accepts_the_alert_rules() -> None:
    result = promtool("check", "rules", str(ALERTS))
    assert_passed(result)
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout, result.stdout


def test_the_alert_rules_pass_their_promtool_unit_tests() -> None:
    assert_passed(promtool("test", "rules", str(ALERT_TESTS)))


def test_every_alert_has_a_for_a_severity_and_a_runbook_in_operations_md() -> None:
    anchors = github_anchors(OPERATIONS.read_text())
    rules = alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules)
    for rule in rules:
        name = rule["alert"]
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{name}: no `for:`"
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook_url"} <= set(annotations), name
        page, _, anchor = annotations["runbook_url"].partition("#")
        assert page == "docs/operations.md" and anchor in anchors, (
            f"{name}: no heading for {annotations['runbook_url']}"
        )


def test_every_alert_has_a_case_that_fires_it_and_one_that_does_not() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert fires == names, f"no firing case for {names - fires}; unknown: {fires - names}"
    assert silent == names, f"no silent case for {names - silent}; unknown: {silent - names}"


def test_a_live_metrics_scrape_passes_promtool_check_metrics(live_scrape: str) -> None:
    # The traffic reached the families (a check of an empty scrape would prove little).
    assert samples(live_scrape, "eyewear_ingestion_runs_total")[(("status", "succeeded"),)] >= 1
    assert samples(live_scrape, "eyewear_cache_requests_total")[(("result", "hit"),)] >= 1
    assert sum(samples(live_scrape, "eyewear_auth_failures_total").values()) >= 1
    assert samples(live_scrape, "eyewear_authz_decisions_total")[(("decision", "deny"),)] >= 1
    assert sum(samples(live_scrape, "eyewear_threats_detected_total").values()) >= 1
    assert samples(live_scrape, "eyewear_ingestion_duration_seconds_count")[()] >= 1
    for name in CONTRACT:
        series = name + "_count" if CONTRACT[name][0] == "histogram" else name
        assert samples(live_scrape, series), f"{series} has no sample after the traffic"
    assert_passed(promtool("check", "metrics", stdin=live_scrape))


def test_every_expression_of_the_alerts_and_the_dashboard_parses(tmp_path: Path) -> None:
    expressions = alert_expressions() | dashboard_expressions(dashboard())
    rules = [
        {"record": f"eyewear_monitoring_check:expression_{i}", "expr": expr}
        for i, expr in enumerate(expressions.values())
    ]
    scratch = tmp_path / "expressions.rules.yml"
    scratch.write_text(yaml.safe_dump({"groups": [{"name": "expressions", "rules": rules}]}, sort_keys=False))
    result = promtool("check", "rules", str(scratch))
    assert_passed(result)
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout, result.stdout


def test_every_expression_names_only_metrics_the_service_exports(live_scrape: str) -> None:
    exported = exported_names(live_scrape)
    for name, (kind, _) in CONTRACT.items():
        assert (name + "_bucket" if kind == "histogram" else name) in exported, name
    expressions = alert_expressions() | dashboard_expressions(dashboard())
    assert unexported(expressions, exported) == {}


def test_the_name_check_finds_a_metric_the_service_does_not_export() -> None:
    exported = {"eyewear_cache_requests_total", "eyewear_http_request_duration_seconds_bucket"}
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(eyewear_http_request_duration_seconds_bucket{route=~"/a b"}'
        "[5m]))) > 1e3 and on (job) sum(rate(eyewear_cache_requests_total[5m] offset 5m)) by (job) > bool 0.5"
    )
    assert metric_names(expr) == {"eyewear_http_request_duration_seconds_bucket", "eyewear_cache_requests_total"}
    misspelt = {"typo": "sum(rate(eyewear_cache_request_total[5m]))", "none": "vector(1)", "by name": '{__name__="x"}'}
    assert unexported(misspelt, exported) == {
        "typo": {"eyewear_cache_request_total"},
        "none": {"<no metric named>"},
        "by name": {"<no metric named>"},
    }
    assert promql_of('rate(x_total{job=~"$job", instance=~"${instance}"}[$__rate_interval])') == (
        'rate(x_total{job=~".*", instance=~".*"}[1m])'
    )


def test_the_dashboard_takes_its_data_source_from_a_variable_and_shows_every_exported_metric() -> None:
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    sources = list(datasources(board))
    assert sources and all(s == {"type": "prometheus", "uid": "${datasource}"} for s in sources), sources
    panels = [p for p in dashboard_panels(board) if p["type"] != "row"]
    assert len({p["id"] for p in dashboard_panels(board)}) == len(list(dashboard_panels(board)))
    for panel in panels:
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']}: no unit"
        assert panel["targets"] and panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["gridPos"]["x"] >= 0 and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        for target in panel["targets"]:
            assert '$job"' in target["expr"] and '$instance"' in target["expr"], target["expr"]
    shown = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for panel in panels
        for target in panel["targets"]
        for name in metric_names(promql_of(target["expr"]))
    }
    assert shown == set(EXPORTED), shown ^ set(EXPORTED)  # section 5, and the two backlog gauges beyond it


def datasources(node: Any) -> Iterable[Any]:
    """Every ``datasource`` value anywhere in the dashboard (none may name a fixed uid)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield value
            else:
                yield from datasources(value)
    elif isinstance(node, list):
        for item in node:
            yield from datasources(item)
