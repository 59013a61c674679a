"""deploy/compose.yaml cannot be run here (no Docker engine), so what it says to eyewear is checked
against the code instead: every setting it sets exists and is valid, every eyewear command line in
it parses, and Prometheus scrapes the ports that those command lines open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from entrypoints.cli import app
from entrypoints.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
PROMETHEUS: dict[str, Any] = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
EYEWEAR_SERVICES = {
    name: service
    for name, service in COMPOSE["services"].items()
    if service.get("image") == COMPOSE["x-eyewear"]["image"]
}


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_eyewear_services_are_the_replicas_the_workers_and_the_migration() -> None:
    commands = {service["command"][0] for service in EYEWEAR_SERVICES.values()}
    assert commands == {"serve", "worker", "migrate"}


@pytest.mark.parametrize("name", sorted(EYEWEAR_SERVICES))
def test_every_setting_a_service_gets_is_a_setting_of_the_code_with_a_valid_value(name: str) -> None:
    environment: dict[str, str] = {key: str(value) for key, value in EYEWEAR_SERVICES[name]["environment"].items()}
    known = {f"{Settings.model_config['env_prefix']}{field}".upper() for field in Settings.model_fields}
    assert set(environment) <= known, f"not settings of the code: {sorted(set(environment) - known)}"
    settings = Settings(**{key.removeprefix("EYEWEAR_").lower(): value for key, value in environment.items()})
    assert settings.broker_url and settings.mongodb_url, "scale-out needs the job engine and a shared MongoDB"


@pytest.mark.parametrize("name", sorted(EYEWEAR_SERVICES))
def test_every_eyewear_command_line_parses_with_the_cli(name: str) -> None:
    command = [str(part) for part in EYEWEAR_SERVICES[name]["command"]]
    subcommand = typer.main.get_command(app).commands[command[0]]  # type: ignore[attr-defined]
    by_option = {option: param.name for param in subcommand.params for option in param.opts}
    with subcommand.make_context(command[0], command[1:]) as context:  # raises on an unknown option or a bad value
        given = dict(zip(command[1::2], command[2::2], strict=True))  # every option here takes a value
        assert {option: str(context.params[by_option[option]]) for option in given} == given


def test_prometheus_scrapes_each_replica_and_each_workers_metrics_port() -> None:
    jobs = {job["job_name"]: job for job in PROMETHEUS["scrape_configs"]}
    replicas = {name: service for name, service in EYEWEAR_SERVICES.items() if service["command"][0] == "serve"}
    targets = set(jobs["eyewear-catalog"]["static_configs"][0]["targets"])
    assert targets == {f"{name}:{_option(service['command'], '--port')}" for name, service in replicas.items()}
    worker = EYEWEAR_SERVICES["worker"]["command"]
    (discovered,) = jobs["eyewear-worker"]["dns_sd_configs"]
    assert discovered["names"] == ["worker"] and discovered["port"] == int(_option(worker, "--metrics-port"))
    assert _option(worker, "--metrics-host") == "0.0.0.0", "another container must reach the port"
