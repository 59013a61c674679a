"""``/docs`` and ``/redoc`` of a real ``eyewear serve``, rendered by headless Chromium (Debian's, installed
by ``make test``) that can reach no host but this one: Swagger UI and ReDoc come from the installed
package, and the operations, with the token flow of ``POST /oauth/token``, are on the page.

A page whose assets came from a CDN renders nothing here (the last test shows it on FastAPI's own
default docs), so these tests fail if the service ever goes back to one.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from adapters.embedded.process import free_port
from tests.e2e.test_cli import run
from tests.support.served import Served, serve, served_env

ARTIFACTS = Path(__file__).resolve().parents[2] / ".test-artifacts"
#: Every name a page might resolve fails, but this machine's own address: no CDN, whatever the network.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    OFFLINE,
    "--virtual-time-budget=20000",
]


def chromium() -> str:
    found = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(found).exists(), "Debian's chromium is missing: make test installs it (.ci/ensure-test-tools)"
    return found


def browse(url: str, *extra: str) -> str:
    """What Chromium renders of ``url`` (the DOM after its scripts ran), or writes (a screenshot)."""
    with tempfile.TemporaryDirectory(prefix="eyewear-chromium-") as profile:
        done = subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, url],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def swagger_operations(dom: str) -> set[str]:
    """The operations Swagger UI rendered: the path of every ``opblock``."""
    return set(re.findall(r'class="opblock-summary-path"[^>]*data-path="([^"]+)"', dom))


@pytest.fixture
async def served(mongo_url: str, tmp_path: Path) -> AsyncIterator[Served]:
    async with serve(served_env(mongo_url, tmp_path / "data")) as process:
        yield process


async def test_swagger_ui_renders_every_operation_offline_with_the_token_flow(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as http:
        page = (await http.get("/docs")).text
        document = (await http.get("/openapi.json")).json()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page) + re.findall(r"url: '([^']+)'", page)
    assert assets and all(asset.startswith("/") for asset in assets), f"assets from another host: {assets}"

    dom = browse(f"{served.url}/docs", "--dump-dom")
    rendered = swagger_operations(dom)
    expected = {path for path in document["paths"]}
    assert expected <= rendered, f"not rendered: {sorted(expected - rendered)}"
    assert 'class="btn authorize' in dom, "no Authorize button: the security schemes are missing"

    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "docs-offline.png"
    browse(f"{served.url}/docs", "--window-size=1280,2400", f"--screenshot={screenshot}")
    assert screenshot.stat().st_size > 50_000, "the screenshot is (nearly) blank"
    print(f"/docs rendered offline: {len(rendered)} operations, screenshot {screenshot}")


async def test_redoc_renders_offline(served: Served) -> None:
    dom = browse(f"{served.url}/redoc", "--dump-dom")
    assert "redoc-wrap" in dom or 'class="menu-content"' in dom, "ReDoc did not render"
    assert "/api/v1/products/{product_id}" in dom and "/oauth/token" in dom


async def test_authorize_gets_a_token_from_the_declared_token_url(served: Served, tmp_path: Path) -> None:
    """What Swagger UI's "Authorize" does with the declared flow: POST the client's id and secret to
    ``tokenUrl`` (HTTP Basic), then send the token as a bearer token; the operations accept it."""
    async with httpx.AsyncClient(base_url=served.url) as http:
        document = (await http.get("/openapi.json")).json()
        flow = document["components"]["securitySchemes"]["clientCredentials"]["flows"]["clientCredentials"]
        assert set(flow["scopes"]) >= {"viewer", "admin"}
        operation = document["paths"]["/api/v1/products"]["get"]
        assert {"clientCredentials": []} in operation["security"] and {"bearerToken": []} in operation["security"]
        registered = run(["clients", "create", "--name", "swagger", "--role", "viewer"], served.env)
        assert registered.returncode == 0, registered.stderr
        client = json.loads(registered.stdout)
        token = await http.post(
            flow["tokenUrl"],
            data={"grant_type": "client_credentials", "scope": "viewer"},
            auth=(client["client_id"], client["client_secret"]),
        )
        assert token.status_code == 200, token.text
        listed = await http.get("/api/v1/products", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
        assert listed.status_code == 200


@contextlib.contextmanager
def cdn_docs() -> Iterator[str]:
    """FastAPI's own default docs page (Swagger UI from jsDelivr), served on this machine."""
    app = FastAPI(title="CDN docs")

    @app.get("/things")
    async def things() -> dict[str, str]:
        return {}

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the CDN docs app did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_docs_page_from_a_cdn_renders_nothing_here() -> None:
    """The check above has teeth: with its assets on another host, a docs page shows no operation."""
    with cdn_docs() as url:
        page = httpx.get(f"{url}/docs").text
        assert "cdn.jsdelivr.net" in page  # FastAPI's default
        assert swagger_operations(browse(f"{url}/docs", "--dump-dom")) == set()
