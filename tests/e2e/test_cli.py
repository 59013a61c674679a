"""The ``eyewear`` command as users run it: real processes, real servers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
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


def get_json(url: str, token: str | None = None) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_serve_demo_on_the_embedded_default(tmp_path: Path) -> None:
    """No MongoDB URL: the embedded server starts, the sample catalog loads, the printed token works."""
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
    printed: list[str] = []
    try:
        assert server.stdout is not None
        while not printed or not printed[-1].startswith("Try:"):
            line = server.stdout.readline()
            assert line, f"serve exited early: {server.stderr.read() if server.stderr else ''}"
            printed.append(line.strip())
        token = printed[printed.index(next(p for p in printed if p.startswith("Demo admin token"))) + 1]
        assert get_json(f"{base}/health/ready")["status"] == "ok"
        facets = get_json(f"{base}/api/v1/products/facets", token)
        assert sum(f["count"] for f in facets["category"]) >= 80
        assert {f["value"] for f in facets["category"]} == {"eyeglasses", "sunglasses"}
        runs = get_json(f"{base}/api/v1/ingestions", token)["items"]  # the demo went through the pipeline
        assert [(r["status"], r["source"], r["counts"]["rows"]) for r in runs] == [
            ("succeeded", "sample-feed.jsonl", 382)
        ]
        try:
            get_json(f"{base}/api/v1/products/facets")
            raise AssertionError("the API answered without a token")
        except urllib.error.HTTPError as refused:
            assert refused.code == 401
        with urllib.request.urlopen(f"{base}/docs", timeout=5) as docs:
            assert docs.status == 200
        record = json.loads((tmp_path / "data" / "mongo-server.json").read_text())
        assert record["url"].startswith("mongodb://127.0.0.1:")
        try:
            get_json(f"{base}/api/v1/products", token[:-4] + "AAAA")
        except urllib.error.HTTPError as tampered:
            assert tampered.code == 401
    finally:
        server.send_signal(signal.SIGINT)
        _, logs = server.communicate(timeout=30)
    assert f"API docs at {base}/docs" in printed
    assert token not in logs and token[:-4] not in logs, "no token ever reaches the logs"
    assert not (tmp_path / "data" / "mongo-server.json").exists(), "the owner stops its embedded server"


def test_token_prints_only_a_token_that_the_service_accepts(tmp_path: Path) -> None:
    from adapters.auth.access_tokens import AccessTokenVerifier
    from adapters.auth.keys import SigningKeys
    from adapters.memory.revocations import MemoryRevocationList

    env = environment(EYEWEAR_DATA_DIR=str(tmp_path))
    result = run(["token", "--subject", "sku-genie", "--role", "editor", "--brand", "Ray-Ban", "--ttl", "60"], env)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and token.count(".") == 2
    verifier = AccessTokenVerifier(
        SigningKeys.load_or_generate(tmp_path), "eyewear-catalog", "eyewear-catalog-api", MemoryRevocationList()
    )
    principal = asyncio.run(verifier.verify(token))
    assert (principal.subject, sorted(principal.roles), sorted(principal.brands)) == (
        "sku-genie",
        ["editor"],
        ["Ray-Ban"],
    )
    assert oct((tmp_path / "signing-keys.json").stat().st_mode & 0o777) == "0o600"
    bad = run(["token", "--subject", "x", "--role", "overlord"], env)
    assert bad.returncode == 2 and "unknown role 'overlord'" in bad.stderr and "Traceback" not in bad.stderr
