"""Fuzzing the HTTP API from its own OpenAPI schema (schemathesis) against a real server process.

Whatever the generated input, the service answers without a 5xx, and its errors are problem+json
with the request's correlation id. Each case gets a token of its own subject, so that threat
strikes earned by one generated input do not shut the fuzzer out (the 429 path has its own test).
"""

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

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from adapters.auth.access_tokens import AccessTokenIssuer
from adapters.auth.keys import SigningKeys

EXAMPLES_PER_OPERATION = 12


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_ready(base: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, "serve exited"
        try:
            with urllib.request.urlopen(f"{base}/health/ready", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError("serve did not answer in 60 s")


def test_no_input_makes_the_api_fail(tmp_path: Path, mongo_url: str) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EYEWEAR_")}
    env.update(
        EYEWEAR_DATA_DIR=str(tmp_path),
        EYEWEAR_MONGODB_URL=mongo_url,
        EYEWEAR_MONGODB_DB=f"fuzz_{uuid.uuid4().hex[:8]}",
        EYEWEAR_LOG_LEVEL="WARNING",
    )
    server = subprocess.Popen(
        [sys.executable, "-c", "from entrypoints.cli import main; main()", "serve", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, server)
        with urllib.request.urlopen(f"{base}/openapi.json", timeout=5) as response:
            schema = schemathesis.openapi.from_dict(json.loads(response.read()))
        issuer = AccessTokenIssuer(SigningKeys.load_or_generate(tmp_path), "eyewear-catalog", "eyewear-catalog-api")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 12
        for operation in operations:
            for mode in GenerationMode:  # inputs that fit the schema, and inputs that break it
                exercise(operation, mode, base, issuer)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


def exercise(operation: Any, mode: GenerationMode, base: str, issuer: AccessTokenIssuer) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case: Any) -> None:
        token = issuer.issue(f"fuzz-{uuid.uuid4().hex[:8]}", ["admin"], ttl_seconds=300).token
        response = case.call(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        label = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
        assert response.status_code < 500, label
        headers = {k.lower(): v[0] if isinstance(v, list) else v for k, v in response.headers.items()}
        if response.status_code >= 400 and case.path.startswith("/api/"):
            assert headers["content-type"] == "application/problem+json", label
            assert response.json()["correlation_id"] == headers["x-request-id"], label

    try:
        check()
    except Unsatisfiable:
        # An operation without inputs has nothing to break: only the negative mode can say so.
        assert mode is GenerationMode.NEGATIVE, operation.label
