"""``auth.verify``: the resource protector's per-request cost, without HTTP, against bare joserfc.

Ours is exactly what a request pays before its route runs: the bearer guard
(``entrypoints.http.security.current_caller``: the abuse check, the token's signature, type and
claims, the principal, the revocation list, the threat screen) on a request object built
beforehand, then the permission decision of the domain (``domain.rbac.decide``). The audit append
of the use case is not in it (the read results show it). The baseline decodes the same token
with ``joserfc.jwt.decode`` and the same key, then validates the same claims.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from joserfc import jwt
from joserfc.jwt import JWTClaimsRegistry
from starlette.requests import Request

from adapters.auth.access_tokens import VERIFIED_TOKENS
from application.authorization import Caller
from domain.rbac import AccessRequest, Permission, decide
from entrypoints.bench.ingestion import BenchFailed
from entrypoints.bench.measure import Result, Sizes, side_by_side
from entrypoints.bench.session import Session
from entrypoints.http.security import ANONYMOUS, current_caller

TOKEN_TTL = 3600


def revocation_source(revocations: Any) -> str:
    """What answered the timed revocation checks, named honestly: the list the container gave the
    guard, and whether its memory mirror (ADR 0010) or a server round trip answered."""
    name = type(revocations).__name__
    mirror = getattr(revocations, "mirror", None)
    if mirror is not None:
        return f"{name} from its change-stream mirror" if mirror.live else f"{name}, mirror not live: MongoDB find_one"
    if getattr(revocations, "redis", None) is not None:
        return f"{name}: Redis GET"
    return f"{name}: MongoDB find_one"


def request_with(token: str, path: str, security: Any) -> Request:
    """The ASGI scope a GET carries into the guard (the app reached through ``scope["app"]``)."""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "app": SimpleNamespace(state=SimpleNamespace(security=security)),
        "state": {"request_id": "bench"},
    }
    return Request(scope)


async def auth_results(session: Session, sizes: Sizes) -> list[Result]:
    security = await session.get("security")
    settings = session.settings
    issued = security.issuer.issue(subject="bench-reader", roles=["viewer"], ttl_seconds=TOKEN_TTL)
    token = issued.token
    resource = "sku:BENCH-0001"
    request = request_with(token, "/api/v1/skus/BENCH-0001", security)
    key = security.keys.signing_key
    claims = JWTClaimsRegistry(
        leeway=30,
        iss={"essential": True, "value": settings.jwt_issuer},
        aud={"essential": True, "value": settings.jwt_audience},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
        client_id={"essential": True},
    )

    async def ours(_: int) -> object:
        caller = await current_caller(request)
        if not decide(caller.principal, AccessRequest(Permission.PRODUCT_READ, resource)).allowed:
            raise BenchFailed("the bench token was refused the read permission")
        return caller

    async def bare(_: int) -> object:
        decoded = jwt.decode(token, key.public, algorithms=[key.alg])
        claims.validate(decoded.claims)
        return decoded

    await ours(0)  # refuses loudly now rather than after thousands of calls
    revocations = await session.get("revocations")  # the singleton the guard's verifier holds
    before = revocation_source(revocations)
    anonymous = Caller(ANONYMOUS, "bench", "127.0.0.1")
    reader = Caller(security.verifier.verify_without_revocation(token), "bench", "127.0.0.1")

    # More distinct tokens than the verifier remembers, used in turn: each is verified from
    # scratch (signature included), what a token's first request costs.
    fresh = [
        security.issuer.issue(subject=f"bench-{i}", roles=["viewer"], ttl_seconds=TOKEN_TTL).token
        for i in range(VERIFIED_TOKENS + VERIFIED_TOKENS // 2)
    ]

    async def token_check(i: int) -> object:
        return security.verifier.verify_without_revocation(fresh[i % len(fresh)])

    async def revocation(_: int) -> object:
        return await revocations.is_revoked(issued.jti)

    async def screen(_: int) -> object:
        await security.screen.refuse_if_blocked(security.screen.keys(anonymous))
        return await security.screen.screen(request, reader, f"GET {request.url.path}")

    mine, theirs, tokens, revoked, screens = await side_by_side(
        ours, bare, token_check, revocation, screen, sizes=sizes
    )
    after = revocation_source(revocations)
    source = before if before == after else f"{before}, then {after}"
    return [
        Result(
            "auth.verify",
            mine.p50_us,
            theirs.p50_us,
            "µs",
            f"{key.alg} token; {mine.count:,} calls per side; ours {mine.describe()}, baseline {theirs.describe()};"
            f" the signature is checked on a token's first use only ({VERIFIED_TOKENS:,} verified tokens"
            f" remembered per process); its layers, interleaved (p50): a token's first use (signature + type"
            f" + claims + principal) {tokens.p50_us:,.0f} µs,"
            f" revocation lookup ({source}) {revoked.p50_us:,.0f} µs, abuse checks + threat"
            f" screen {screens.p50_us:,.0f} µs",
        )
    ]
