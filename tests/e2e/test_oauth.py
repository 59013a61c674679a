"""The OAuth endpoints through HTTP (CONTRACT 4.1): client_credentials, rotating refresh, RFC 7009."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from application.authorization import system_caller
from domain.audit import AuditQuery
from domain.rbac import Role
from entrypoints.container import Container, resolve
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.builders import payload

TOKEN, REVOKE, PRODUCTS = "/oauth/token", "/oauth/revoke", "/api/v1/products"
Client = tuple[str, str]


@pytest.fixture
def register(app_and_container: tuple[Any, Container]) -> Callable[..., Any]:
    """Registers a client through the real use case: ``await register("viewer", brands=[...])``."""
    _, container = app_and_container

    async def make(*roles: str, brands: tuple[str, ...] = (), name: str = "Shop sync") -> Client:
        use_case = await resolve(container.register_client)
        done = await use_case(name, [Role(r) for r in roles], brands, system_caller("tests"))
        return done.client.client_id, done.secret

    return make


async def token(http: httpx.AsyncClient, client: Client, **form: str) -> httpx.Response:
    return await http.post(TOKEN, data={"grant_type": "client_credentials", **form}, auth=client)


async def refresh(http: httpx.AsyncClient, client: Client, refresh_token: str) -> httpx.Response:
    return await http.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": refresh_token}, auth=client)


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


async def test_client_credentials_with_basic_gives_a_token_that_carries_the_clients_roles(
    anonymous_http: httpx.AsyncClient, register: Callable[..., Any]
) -> None:
    client = await register("viewer")
    response = await token(anonymous_http, client)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "viewer"
    assert body["expires_in"] == 900
    assert body["refresh_token"]
    headers = bearer(body["access_token"])
    assert (await anonymous_http.get(PRODUCTS, headers=headers)).status_code == 200
    assert (await anonymous_http.post(PRODUCTS, json=payload(), headers=headers)).status_code == 403


async def test_client_credentials_with_form_fields(
    anonymous_http: httpx.AsyncClient, register: Callable[..., Any]
) -> None:
    client_id, secret = await register("editor", brands=("Ray-Ban",))
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    response = await anonymous_http.post(TOKEN, data=form)
    assert response.status_code == 200, response.text
    headers = bearer(response.json()["access_token"])
    assert (await anonymous_http.post(PRODUCTS, json=payload(), headers=headers)).status_code == 201
    other_brand = payload("OX8156", brand="Oakley")
    assert (await anonymous_http.post(PRODUCTS, json=other_brand, headers=headers)).status_code == 403


async def test_a_requested_scope_narrows_the_roles_and_never_widens_them(
    anonymous_http: httpx.AsyncClient, register: Callable[..., Any]
) -> None:
    admin = await register("admin")
    narrowed = await token(anonymous_http, admin, scope="viewer")
    assert narrowed.json()["scope"] == "viewer"
    headers = bearer(narrowed.json()["access_token"])
    assert (await anonymous_http.get("/api/v1/audit", headers=headers)).status_code == 403
    viewer = await register("viewer")
    assert_oauth_error(await token(anonymous_http, viewer, scope="admin"), 400, "invalid_scope")
    assert_oauth_error(await token(anonymous_http, viewer, scope="superuser"), 400, "invalid_scope")
    partly = await token(anonymous_http, viewer, scope="viewer auditor")
    assert partly.json()["scope"] == "viewer"


async def test_wrong_or_missing_credentials_are_invalid_client_401(
    anonymous_http: httpx.AsyncClient, register: Callable[..., Any]
) -> None:
    client_id, secret = await register("viewer")
    for attempt in (
        await token(anonymous_http, (client_id, secret + "x")),
        await token(anonymous_http, ("nobody-123", secret)),
        await anonymous_http.post(TOKEN, data={"grant_type": "client_credentials", "client_id": client_id}),
        await anonymous_http.post(
            TOKEN, data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": "nope"}
        ),
    ):
        assert_oauth_error(attempt, 401, "invalid_client")
        assert attempt.headers["www-authenticate"].startswith("Basic ")
        assert secret not in attempt.text


async def test_malformed_requests(anonymous_http: httpx.AsyncClient, register: Callable[..., Any]) -> None:
    client = await register("viewer")
    assert_oauth_error(await token(anonymous_http, client, grant_type="password"), 400, "unsupported_grant_type")
    no_grant = await anonymous_http.post(TOKEN, data={"scope": "viewer"}, auth=client)
    assert_oauth_error(no_grant, 400, "invalid_request")
    as_json = await anonymous_http.post(TOKEN, json={"grant_type": "client_credentials"}, auth=client)
    assert_oauth_error(as_json, 400, "invalid_request")
    repeated = await anonymous_http.post(
        TOKEN,
        content="grant_type=client_credentials&grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=client,
    )
    assert_oauth_error(repeated, 400, "invalid_request")
    missing = await anonymous_http.post(TOKEN, data={"grant_type": "refresh_token"}, auth=client)
    assert_oauth_error(missing, 400, "invalid_request")
    both_ways = await token(anonymous_http, client, client_id=client[0], client_secret=client[1])
    assert_oauth_error(both_ways, 400, "invalid_request")
    not_utf8 = "Basic " + base64.b64encode(b"\xff\xfe:x").decode()
    garbled = await anonymous_http.post(
        TOKEN, data={"grant_type": "client_credentials"}, headers={"Authorization": not_utf8}
    )
    assert_oauth_error(garbled, 401, "invalid_client")


async def test_refresh_rotates_and_a_replay_kills_the_whole_family(
    anonymous_http: httpx.AsyncClient, register: Callable[..., Any]
) -> None:
    client = await register("catalog_manager")
    first = (await token(anonymous_http, client)).json()
    second = (await refresh(anonymous_http, client, first["refresh_token"])).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["scope"] == "catalog_manager"
    assert (await anonymous_http.get(PRODUCTS, headers=bearer(second["access_token"]))).status_code == 200
    assert_oauth_error(await refresh(anonymous_http, client, first["refresh_token"]), 400, "invalid_grant")
    # The replay revoked the family: the newest refresh token and its access token are dead too.
    assert_oauth_error(await refresh(anonymous_http, client, second["refresh_token"]), 400, "invalid_grant")
    assert (await anonymous_http.get(PRODUCTS, headers=bearer(second["access_token"]))).status_code == 401
    # A new client_credentials grant starts a new family.
    assert (await token(anonymous_http, client)).status_code == 200


async def test_a_refresh_may_narrow_the_scope_and_the_family_keeps_its_grant(
    anonymous_http: httpx.AsyncClient, register: Callable[..., Any]
) -> None:
    client = await register("catalog_manager")
    first = (await token(anonymous_http, client)).json()
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "scope": "viewer"}
    narrowed = (await anonymous_http.post(TOKEN, data=form, auth=client)).json()
    assert narrowed["scope"] == "viewer"
    assert (
        await anonymous_http.post(PRODUCTS, json=payload(), headers=bearer(narrowed["access_token"]))
    ).status_code == 403
    again = (await refresh(anonymous_http, client, narrowed["refresh_token"])).json()
    assert again["scope"] == "catalog_manager"


async def test_an_expired_refresh_token_is_refused(
    anonymous_http: httpx.AsyncClient, register: Callable[..., Any], app_and_container: tuple[Any, Container]
) -> None:
    client = await register("viewer")
    issued = (await token(anonymous_http, client)).json()
    database = await resolve(app_and_container[1].database)
    past = datetime.now(UTC) - timedelta(seconds=1)
    await database["refresh_tokens"].update_many({}, {"$set": {"expires_at": past}})
    expired = await refresh(anonymous_http, client, issued["refresh_token"])
    assert_oauth_error(expired, 400, "invalid_grant")
    assert "expired" in expired.json()["error_description"]


async def test_concurrent_refreshes_of_one_token_are_a_replay(
    anonymous_http: httpx.AsyncClient, register: Callable[..., Any]
) -> None:
    """One exchange at most wins the atomic ``use``; the others are replays, which end the family
    (the winner's new token included, whether or not its answer left before the revocation)."""
    client = await register("viewer")
    first = (await token(anonymous_http, client)).json()
    answers = await asyncio.gather(*(refresh(anonymous_http, client, first["refresh_token"]) for _ in range(4)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses in ([200, 400, 400, 400], [400, 400, 400, 400])
    for answer in answers:
        if answer.status_code == 200:
            dead = await refresh(anonymous_http, client, answer.json()["refresh_token"])
            assert_oauth_error(dead, 400, "invalid_grant")
        else:
            assert answer.json()["error"] == "invalid_grant"


async def test_a_refresh_token_belongs_to_its_client(
    anonymous_http: httpx.AsyncClient, register: Callable[..., Any]
) -> None:
    owner, thief = await register("viewer"), await register("viewer", name="Other")
    issued = (await token(anonymous_http, owner)).json()
    assert_oauth_error(await refresh(anonymous_http, thief, issued["refresh_token"]), 400, "invalid_grant")
    wider = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"], "scope": "admin"}
    assert_oauth_error(await anonymous_http.post(TOKEN, data=wider, auth=owner), 400, "invalid_scope")
    assert (await refresh(anonymous_http, owner, issued["refresh_token"])).status_code == 200  # not consumed


async def test_revoking_an_access_token_refuses_it_from_the_next_request(
    anonymous_http: httpx.AsyncClient, register: Callable[..., Any]
) -> None:
    client = await register("viewer")
    for auth in (client, None):  # the client's secret, or the token alone (possession)
        access = (await token(anonymous_http, client)).json()["access_token"]
        assert (await anonymous_http.get(PRODUCTS, headers=bearer(access))).status_code == 200
        revoked = await anonymous_http.post(
            REVOKE, data={"token": access, "token_type_hint": "access_token"}, auth=auth
        )
        assert revoked.status_code == 200, revoked.text
        assert (await anonymous_http.get(PRODUCTS, headers=bearer(access))).status_code == 401


async def test_revoking_a_refresh_token_ends_its_family(
    anonymous_http: httpx.AsyncClient, register: Callable[..., Any]
) -> None:
    client = await register("viewer")
    issued = (await token(anonymous_http, client)).json()
    revoked = await anonymous_http.post(REVOKE, data={"token": issued["refresh_token"]}, auth=client)
    assert revoked.status_code == 200
    assert_oauth_error(await refresh(anonymous_http, client, issued["refresh_token"]), 400, "invalid_grant")
    assert (await anonymous_http.get(PRODUCTS, headers=bearer(issued["access_token"]))).status_code == 401


async def test_revocation_edge_cases(anonymous_http: httpx.AsyncClient, register: Callable[..., Any]) -> None:
    client, other = await register("viewer"), await register("viewer", name="Other")
    for garbage in ("garbage", "a.b.c", "x" * 500):
        assert (await anonymous_http.post(REVOKE, data={"token": garbage})).status_code == 200
    assert (
        await anonymous_http.post(REVOKE, data={"token": "garbage", "token_type_hint": "id_token"})
    ).status_code == 200
    assert_oauth_error(await anonymous_http.post(REVOKE, data={}), 400, "invalid_request")
    issued = (await token(anonymous_http, client)).json()
    wrong = await anonymous_http.post(REVOKE, data={"token": issued["access_token"]}, auth=(client[0], "bad"))
    assert_oauth_error(wrong, 401, "invalid_client")
    foreign = await anonymous_http.post(REVOKE, data={"token": issued["refresh_token"]}, auth=other)
    assert_oauth_error(foreign, 400, "invalid_grant")
    assert (await refresh(anonymous_http, client, issued["refresh_token"])).status_code == 200


async def test_every_grant_and_refusal_is_audited_without_secrets(
    anonymous_http: httpx.AsyncClient, register: Callable[..., Any], app_and_container: tuple[Any, Container]
) -> None:
    client_id, secret = await register("viewer")
    issued = (await token(anonymous_http, (client_id, secret))).json()
    await token(anonymous_http, (client_id, "wrong-secret"))
    await refresh(anonymous_http, (client_id, secret), issued["refresh_token"])
    await refresh(anonymous_http, (client_id, secret), issued["refresh_token"])  # a replay
    await anonymous_http.post(REVOKE, data={"token": issued["access_token"]})
    audit = await resolve(app_and_container[1].audit_log)
    records = (await audit.query(AuditQuery(limit=200))).items
    mine = sorted((r.action, r.decision.value) for r in records if r.actor == client_id)
    assert mine == [
        ("threat_detected", "deny"),  # the replay
        ("token_issued", "allow"),
        ("token_issued", "allow"),
        ("token_refused", "deny"),  # the wrong secret
        ("token_refused", "deny"),  # the replay
    ]
    assert any(r.action == "token_revoked" and r.actor == "anonymous" for r in records)
    for record in records:
        for value in (secret, "wrong-secret", issued["access_token"], issued["refresh_token"]):
            assert value not in record.reason and value not in record.resource


def run_cli(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EYEWEAR_")} | env
    command = [sys.executable, "-c", "from entrypoints.cli import main; main()", *args]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120, check=False)


async def test_clients_create_prints_a_secret_that_works_and_is_stored_only_hashed(
    mongo_url: str, tmp_path: Path
) -> None:
    db = f"cli_oauth_{uuid.uuid4().hex[:8]}"
    env = {"EYEWEAR_MONGODB_URL": mongo_url, "EYEWEAR_MONGODB_DB": db, "EYEWEAR_DATA_DIR": str(tmp_path)}
    args = ["clients", "create", "--name", "Nightly ingest", "--role", "ingestor", "--role", "viewer"]
    created = await asyncio.to_thread(run_cli, args, **env)
    assert created.returncode == 0, created.stderr
    printed = json.loads(created.stdout)
    assert set(printed) == {"client_id", "client_secret"}
    assert printed["client_id"].startswith("nightly-ingest-")

    settings = Settings(mongodb_url=mongo_url, mongodb_db=db, data_dir=tmp_path)
    container = Container(settings=settings)
    app = create_app(container)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://catalog.test") as http:
            response = await token(http, (printed["client_id"], printed["client_secret"]))
            assert response.status_code == 200, response.text
            assert response.json()["scope"] == "ingestor viewer"
        database = await resolve(container.database)
        stored = await database["oauth_clients"].find_one({"_id": printed["client_id"]})
        assert stored is not None and stored["secret_hash"].startswith("scrypt$")
        assert printed["client_secret"] not in repr(stored)
        audited = await database["audit_log"].find_one({"action": "client:manage"})
        assert audited is not None and audited["decision"] == "allow"
        await database.client.drop_database(db)


def test_clients_create_refuses_an_unknown_role_in_one_line(mongo_url: str) -> None:
    result = run_cli(["clients", "create", "--name", "x", "--role", "root"], EYEWEAR_MONGODB_URL=mongo_url)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().count("\n") == 0 and "unknown role 'root'" in result.stderr
