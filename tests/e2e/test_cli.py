"""The ``eyewear`` command as users run it: real processes, real servers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

EYEWEAR = [sys.executable, "-c", "from entrypoints.cli import main; main()"]


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EYEWEAR, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def environment(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EYEWEAR_")}
    env.update(values)
    return env


def test_migrate_is_idempotent_and_says_what_it_changed(mongo_url: str) -> None:
    env = environment(EYEWEAR_MONGODB_URL=mongo_url, EYEWEAR_MONGODB_DB=f"cli_{uuid.uuid4().hex[:8]}")
    first = run(["migrate"], env)
    assert first.returncode == 0, first.stderr
    assert "created collection products" in first.stdout
    assert "created index products.sku_unique" in first.stdout
    second = run(["migrate"], env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "nothing to change: the database is up to date"


def test_a_malformed_setting_stops_start_up_with_one_line_naming_it() -> None:
    result = run(["migrate"], environment(EYEWEAR_MONGODB_MAX_POOL_SIZE="lots"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "EYEWEAR_MONGODB_MAX_POOL_SIZE" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_database_is_one_line_not_a_traceback() -> None:
    env = environment(
        EYEWEAR_MONGODB_URL="mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300", EYEWEAR_MONGODB_TIMEOUT_MS="500"
    )
    result = run(["migrate"], env)
    assert result.returncode == 1
    assert result.stderr.startswith("eyewear: migration failed")
    assert "Traceback" not in result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_serve_demo_on_the_embedded_default(tmp_path: Path) -> None:
    """No MongoDB URL: the embedded server starts, the sample catalog loads, /docs answers."""
    port = free_port()
    env = environment(EYEWEAR_DATA_DIR=str(tmp_path / "data"), EYEWEAR_LOG_FORMAT="console")
    server = subprocess.Popen(
        [*EYEWEAR, "serve", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                ready = get_json(f"{base}/health/ready")
                break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "serve did not answer in 60 s"
                time.sleep(0.3)
        assert ready["status"] == "ok"
        facets = get_json(f"{base}/api/v1/products/facets")
        assert sum(f["count"] for f in facets["category"]) >= 80
        assert {f["value"] for f in facets["category"]} == {"eyeglasses", "sunglasses"}
        with urllib.request.urlopen(f"{base}/docs", timeout=5) as docs:
            assert docs.status == 200
        record = json.loads((tmp_path / "data" / "mongo-server.json").read_text())
        assert record["url"].startswith("mongodb://127.0.0.1:")
    finally:
        server.send_signal(signal.SIGINT)
        out, _err = server.communicate(timeout=30)
    assert f"{base}/docs" in out
    assert not (tmp_path / "data" / "mongo-server.json").exists(), "the owner stops its embedded server"
