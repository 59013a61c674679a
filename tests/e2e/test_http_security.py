"""Authentication and authorization through HTTP (CONTRACT.md 4.2, 4.6), with the app's real keys."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from adapters.auth.access_tokens import AccessTokenIssuer
from tests.builders import payload

PRODUCTS = "/api/v1/products"


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": "eyewear-catalog",
        "aud": "eyewear-catalog-api",
        "sub": "mallory",
        "client_id": "x",
        "iat": now,
        "exp": now + 300,
        "jti": "j-1",
        "scope": "",
        "roles": ["admin"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def an_hour_ago() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)


def assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert response.headers["content-type"] == "application/problem+json"


async def test_open_endpoints_need_no_token(anonymous_http: httpx.AsyncClient) -> None:
    for path in ("/health/live", "/health/ready", "/openapi.json", "/.well-known/jwks.json"):
        assert (await anonymous_http.get(path)).status_code == 200, path
    keys = (await anonymous_http.get("/.well-known/jwks.json")).json()["keys"]
    assert keys and all("kid" in k and "d" not in k for k in keys)


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not.a.token", "Bearer abc"]
)
async def test_missing_or_malformed_tokens_are_401(anonymous_http: httpx.AsyncClient, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    assert_401(await anonymous_http.get(PRODUCTS, headers=headers))


async def test_crafted_tokens_are_401(
    app_and_container: Any, anonymous_http: httpx.AsyncClient, issue: Callable[..., str]
) -> None:
    _, container = app_and_container
    keys = container.keys()
    ours = json.loads(json.dumps(keys.public_jwks()))["keys"][-1]
    kid = ours["kid"]
    foreign = ECKey.generate_key("P-256", parameters={"kid": kid})
    good = issue("admin")
    header, _body, signature = good.split(".")
    crafted = {
        "foreign key, our kid": jwt.encode({"alg": "ES256", "kid": kid, "typ": "at+jwt"}, claims(), foreign),
        "unknown kid": jwt.encode({"alg": "ES256", "kid": "nope", "typ": "at+jwt"}, claims(), foreign),
        "alg none": f"{b64({'alg': 'none', 'kid': kid, 'typ': 'at+jwt'})}.{b64(claims())}.",
        "HS256 with the public key": jwt.encode(
            {"alg": "HS256", "kid": kid, "typ": "at+jwt"},
            claims(),
            OctKey.import_key(json.dumps(ours).encode()),
            algorithms=["HS256"],
        ),
        "tampered payload": f"{header}.{b64(claims(roles=['admin'], sub='root'))}.{signature}",
        "expired": AccessTokenIssuer(keys, "eyewear-catalog", "eyewear-catalog-api", clock=an_hour_ago)
        .issue("tester", ["admin"], ttl_seconds=60)
        .token,
    }
    for name, token in crafted.items():
        response = await anonymous_http.get(PRODUCTS, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"', name


async def test_a_valid_token_is_accepted_whatever_its_client(
    anonymous_http: httpx.AsyncClient, issue: Callable[..., str]
) -> None:
    response = await anonymous_http.get(PRODUCTS, headers={"Authorization": f"Bearer {issue('viewer')}"})
    assert response.status_code == 200


ROLE_TABLE = [
    # (method, path, body, roles that pass, roles that get 403)
    ("GET", PRODUCTS, None, ["viewer", "editor", "catalog_manager", "admin", "ingestor", "auditor"], []),
    ("POST", PRODUCTS, payload(), ["editor", "catalog_manager", "admin"], ["viewer", "ingestor", "auditor"]),
    (
        "DELETE",
        f"{PRODUCTS}/ray-ban-rb3016",
        None,
        ["catalog_manager", "admin"],
        ["viewer", "editor", "ingestor", "auditor"],
    ),
    ("GET", "/api/v1/audit", None, ["auditor", "admin"], ["viewer", "editor", "catalog_manager", "ingestor"]),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed", "denied"), ROLE_TABLE, ids=[f"{m} {p}" for m, p, *_ in ROLE_TABLE]
)
async def test_the_role_table(
    anonymous_http: httpx.AsyncClient,
    issue: Callable[..., str],
    method: str,
    path: str,
    body: Any,
    allowed: list[str],
    denied: list[str],
) -> None:
    for role in denied:
        response = await anonymous_http.request(
            method, path, json=body, headers={"Authorization": f"Bearer {issue(role)}"}
        )
        assert response.status_code == 403, (role, response.text)
        assert response.json()["title"] == "Forbidden"
    if method == "DELETE":
        await anonymous_http.post(PRODUCTS, json=payload(), headers={"Authorization": f"Bearer {issue('admin')}"})
    for role in allowed:
        response = await anonymous_http.request(
            method, path, json=body, headers={"Authorization": f"Bearer {issue(role)}"}
        )
        # A second POST of the same product is a conflict: the permission check passed.
        assert response.status_code in (200, 201, 204, 409), (role, response.text)


async def test_a_brand_scoped_editor_writes_only_its_brands(
    anonymous_http: httpx.AsyncClient, issue: Callable[..., str]
) -> None:
    scoped = {"Authorization": f"Bearer {issue('editor', brands=('Ray-Ban',))}"}
    assert (await anonymous_http.post(PRODUCTS, json=payload(), headers=scoped)).status_code == 201
    kodo = payload("K1", "Kōdo", [{**payload()["variants"][0], "sku": "K1-A"}])
    assert (await anonymous_http.post(PRODUCTS, json=kodo, headers=scoped)).status_code == 403


async def test_denies_and_failures_are_audited_with_the_correlation_id(
    anonymous_http: httpx.AsyncClient, issue: Callable[..., str]
) -> None:
    await anonymous_http.post(
        PRODUCTS,
        json=payload(),
        headers={"Authorization": f"Bearer {issue('viewer', subject='vera')}", "X-Request-ID": "deny-1"},
    )
    await anonymous_http.get(PRODUCTS, headers={"Authorization": "Bearer junk", "X-Request-ID": "fail-1"})
    auditor = {"Authorization": f"Bearer {issue('auditor', subject='audrey')}"}
    denied = (await anonymous_http.get("/api/v1/audit", params={"actor": "vera"}, headers=auditor)).json()["items"]
    assert [(r["action"], r["decision"], r["correlation_id"]) for r in denied][-1:] == [
        ("product:write", "deny", "deny-1")
    ]
    failed = (await anonymous_http.get("/api/v1/audit", params={"action": "authenticate"}, headers=auditor)).json()
    assert any(
        r["correlation_id"] == "fail-1" and r["actor"] == "anonymous" and r["decision"] == "deny"
        for r in failed["items"]
    )
    assert all("junk" not in json.dumps(r) for r in failed["items"])
