"""Several uvicorn workers, one ``/metrics``: with PROMETHEUS_MULTIPROC_DIR every worker's counts add up."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_cli import environment, free_port, run

REQUESTS = 24


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def wait_until_up(url: str, server: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate()[1]
        try:
            get(url)
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the workers did not start")


def worker_files(multiproc: Path) -> set[str]:
    """The pids of the workers that counted something (one ``counter_<pid>.db`` each)."""
    return {path.name.rsplit("_", 1)[-1] for path in multiproc.glob("counter_*.db")}


def live_requests(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "eyewear_http_requests_total" and sample.labels.get("route") == "/health/live"
    )


def test_two_workers_export_one_sum(mongo_url: str, tmp_path: Path) -> None:
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    port = free_port()
    env = environment(
        EYEWEAR_MONGODB_URL=mongo_url,
        EYEWEAR_MONGODB_DB=f"workers_{uuid.uuid4().hex[:8]}",
        EYEWEAR_DATA_DIR=str(tmp_path / "data"),
    )
    assert run(["migrate"], env).returncode == 0  # once, before the workers (docs/operations.md)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc)  # the workers' only: a CLI run would add its own files
    command = [sys.executable, "-m", "uvicorn", "--factory", "entrypoints.http.asgi:create"]
    server = subprocess.Popen(
        [*command, "--workers", "2", "--port", str(port), "--no-access-log"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/health/ready", server)
        before = live_requests(get(f"{base}/metrics"))
        sent = 0
        deadline = time.monotonic() + 60  # the second worker may still be starting: send until both answered
        while sent < REQUESTS or (len(worker_files(multiproc)) < 2 and time.monotonic() < deadline):
            get(f"{base}/health/live")
            sent += 1
        text = get(f"{base}/metrics")
        assert live_requests(text) == before + sent
        assert len(worker_files(multiproc)) == 2, worker_files(multiproc)  # both workers wrote their share
        pool = [
            s
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "eyewear_mongodb_pool_connections"
        ]
        assert {s.labels["state"] for s in pool} == {"open", "in_use", "idle"}
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    worker_lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    started = [line for line in worker_lines if line["event"] == "Application startup complete."]
    assert len(started) == 2 and {line["logger"] for line in started} == {"uvicorn.error"}  # JSON, as ours
