"""Tokens across replicas (CONTRACT.md section 6, ADR 0018), with two real ``eyewear serve``
processes: separate data dirs (each generates its own key), no keys file, one MongoDB database;
revocations also with a shared Redis (nothing else depends on it).

- a token issued by A (``eyewear token`` on A's data dir, ``/oauth/token`` on A) is accepted by B;
- both replicas' ``/.well-known/jwks.json`` list both keys, and a replica gone for good leaves its
  key published and its tokens valid;
- a token revoked on one replica is refused by the other from the next request (strictly with
  Redis; through B's change-stream mirror without it: measured, and bounded here by 1 s);
- a key that was never registered, or retired, or removed from the registry, is refused.

The measurements are printed (``pytest -s tests/e2e/test_replica_tokens.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import statistics
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from pymongo import AsyncMongoClient

from adapters.auth.access_tokens import AccessTokenIssuer
from adapters.auth.key_registry import RegisteredKey
from adapters.auth.key_ring import LOOKUP_INTERVAL_SECONDS, REFRESH_SECONDS
from adapters.auth.keys import KEY_FILE_NAME, SigningKeys, generate_key
from adapters.mongo.signing_keys import MongoKeyRegistry
from tests.support.served import EYEWEAR, Served, serve, served_env

PRODUCTS, TOKEN, REVOKE, JWKS = "/api/v1/products", "/oauth/token", "/oauth/revoke", "/.well-known/jwks.json"
TRIALS = 10
#: Without Redis a revocation reaches another replica through its change stream: this bounds it.
MIRROR_BOUND_SECONDS = 1.0


@dataclass
class Replicas:
    a: Served
    b: Served
    mode: str
    database: Any
    client: tuple[str, str]

    def kid(self, replica: Served) -> str:
        return SigningKeys.load(Path(replica.env["EYEWEAR_DATA_DIR"]) / KEY_FILE_NAME).signing_kid


def clients_create(env: dict[str, str], *roles: str) -> tuple[str, str]:
    args = [*EYEWEAR, "clients", "create", "--name", "replica test", *(a for r in roles for a in ("--role", r))]
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=True, timeout=60)
    created = json.loads(done.stdout)
    return created["client_id"], created["client_secret"]


@contextlib.asynccontextmanager
async def two_replicas(mongo_url: str, root: Path, mode: str, **extra: str) -> AsyncIterator[Replicas]:
    env_a = served_env(mongo_url, root / "a", **extra)
    env_b = env_a | {"EYEWEAR_DATA_DIR": str(root / "b")}
    mongo: Any = AsyncMongoClient(mongo_url, tz_aware=True)
    try:
        async with serve(env_a) as a, serve(env_b) as b:
            client = clients_create(env_a, "viewer")
            yield Replicas(a, b, mode, mongo[env_a["EYEWEAR_MONGODB_DB"]], client)
    finally:
        await mongo.drop_database(env_a["EYEWEAR_MONGODB_DB"])
        await mongo.close()


@pytest.fixture(scope="module")
async def replicas(mongo_url: str, tmp_path_factory: Any) -> AsyncIterator[Replicas]:
    async with two_replicas(mongo_url, tmp_path_factory.mktemp("replicas"), "without redis") as pair:
        yield pair


@pytest.fixture(scope="module", params=["without redis", "with redis"])
async def revoking_replicas(
    request: pytest.FixtureRequest, replicas: Replicas, mongo_url: str, tmp_path_factory: Any
) -> AsyncIterator[Replicas]:
    """Only revocations depend on Redis: the other tests run on the pair without it."""
    if request.param == "without redis":
        yield replicas
        return
    root, redis_url = tmp_path_factory.mktemp("replicas_redis"), request.getfixturevalue("redis_url")
    async with two_replicas(mongo_url, root, "with redis", EYEWEAR_REDIS_URL=redis_url) as pair:
        yield pair


def issued_on(replica: Served, subject: str) -> str:
    """What ``eyewear token`` on the replica's data dir prints (the same key file, the same issuer),
    without a child process per token."""
    keys = SigningKeys.load(Path(replica.env["EYEWEAR_DATA_DIR"]) / KEY_FILE_NAME)
    issuer = AccessTokenIssuer(keys, "eyewear-catalog", "eyewear-catalog-api")
    return issuer.issue(subject, ["viewer"], ttl_seconds=900).token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def status(replica: Served, token: str) -> int:
    async with httpx.AsyncClient(base_url=replica.url, timeout=10) as http:
        return (await http.get(PRODUCTS, params={"limit": "1"}, headers=bearer(token))).status_code


async def oauth_token(replica: Served, client: tuple[str, str]) -> str:
    async with httpx.AsyncClient(base_url=replica.url, timeout=10) as http:
        answer = await http.post(TOKEN, data={"grant_type": "client_credentials"}, auth=client)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


async def published_kids(replica: Served) -> set[str]:
    async with httpx.AsyncClient(base_url=replica.url, timeout=10) as http:
        keys = (await http.get(JWKS)).json()["keys"]
    assert all("d" not in key and key["alg"] in ("ES256", "Ed25519", "EdDSA") for key in keys)
    return {key["kid"] for key in keys}


def signed_by(key: ECKey, kid: str, ttl: int = 600) -> str:
    now = int(time.time())
    claims = {
        "iss": "eyewear-catalog",
        "aud": "eyewear-catalog-api",
        "sub": "replica-test",
        "client_id": "replica-test",
        "iat": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(16),
        "scope": "",
        "roles": ["viewer"],
    }
    return jwt.encode({"alg": "ES256", "kid": kid, "typ": "at+jwt"}, claims, key, algorithms=["ES256"])


async def test_every_replica_publishes_every_key(replicas: Replicas) -> None:
    a, b = replicas.a, replicas.b
    both = {replicas.kid(a), replicas.kid(b)}
    assert both <= await published_kids(b), "B read A's key when it started"
    started = time.monotonic()
    while not both <= await published_kids(a):  # A started first: it learns of B on its next refresh
        assert time.monotonic() - started < REFRESH_SECONDS + 5, "A never listed B's key"
        await asyncio.sleep(0.1)


async def test_a_token_issued_by_one_replica_is_accepted_by_the_other(replicas: Replicas) -> None:
    a, b = replicas.a, replicas.b
    assert replicas.kid(a) != replicas.kid(b), "each data dir signs with its own key"
    from_cli = a.token("viewer", subject="cli-on-a")  # ``eyewear token`` on A's data dir
    assert await status(b, from_cli) == 200
    assert await status(a, b.token("viewer", subject="cli-on-b")) == 200
    from_oauth = await oauth_token(a, replicas.client)  # a client registered with ``eyewear clients create``
    assert await status(b, from_oauth) == 200
    assert await status(b, from_oauth[:-4] + "AAAA") == 401, "tampered is tampered, whoever signed it"


async def test_a_replica_gone_for_good_leaves_its_key_and_tokens_valid(replicas: Replicas, tmp_path: Path) -> None:
    """An ephemeral replica that served, minted a token and vanished with its disk."""
    async with serve(replicas.a.env | {"EYEWEAR_DATA_DIR": str(tmp_path / "c")}) as c:
        kid = SigningKeys.load(tmp_path / "c" / KEY_FILE_NAME).signing_kid
        ready = time.monotonic()  # C registered its key before it answered ready
        while kid not in await published_kids(replicas.a):  # no token of C's reaches A: the refresh
            assert time.monotonic() - ready < REFRESH_SECONDS + 5, "A never listed C's key"
            await asyncio.sleep(0.05)
        print(f"\nA listed the key of a new replica {time.monotonic() - ready:.2f} s after it was ready")
        token = c.token("viewer", subject="cli-on-c")
    assert c.process.returncode is not None, "C has exited"
    assert await status(replicas.b, token) == 200
    assert kid in await published_kids(replicas.b)
    registered = {key.kid: key for key in await MongoKeyRegistry(replicas.database).active(datetime.now(UTC))}
    assert registered[kid].retire_at >= registered[kid].last_seen + timedelta(days=1), "kept a token lifetime"


async def test_a_revocation_on_one_replica_is_refused_by_the_other_from_the_next_request(
    revoking_replicas: Replicas,
) -> None:
    replicas = revoking_replicas
    a, b = replicas.a, replicas.b
    delays: list[float] = []
    firsts: list[int] = []
    async with httpx.AsyncClient(base_url=a.url, timeout=10) as on_a, httpx.AsyncClient(base_url=b.url) as on_b:
        for trial in range(TRIALS):
            token = await oauth_token(a, replicas.client) if trial % 2 else issued_on(a, f"t{trial}")
            assert (await on_b.get(PRODUCTS, headers=bearer(token))).status_code == 200  # B remembers it now
            auth = replicas.client if trial % 2 else None  # by the client, or by mere possession
            revoked = await on_a.post(REVOKE, data={"token": token}, auth=auth)
            assert revoked.status_code == 200, revoked.text
            done = time.monotonic()
            answer = await b_status(on_b, token)
            firsts.append(answer)
            while answer != 401:
                assert answer == 200
                assert time.monotonic() - done < MIRROR_BOUND_SECONDS, "B never refused the revoked token"
                await asyncio.sleep(0.001)
                answer = await b_status(on_b, token)
            delays.append(time.monotonic() - done)
            assert await status(a, token) == 401
        # And the other way round: B revokes a token of A's key (B looks the key up to find the jti).
        token = await oauth_token(a, replicas.client)
        assert (await on_b.post(REVOKE, data={"token": token}, auth=replicas.client)).status_code == 200
        assert await _refused_within(a, token, MIRROR_BOUND_SECONDS)
    refused_at_once = firsts.count(401)
    print(
        f"\n[{replicas.mode}] revoked on A, refused by B: {refused_at_once}/{TRIALS} on the very next request; "
        f"until refused: median {statistics.median(delays) * 1000:.1f} ms, max {max(delays) * 1000:.1f} ms"
    )
    if replicas.mode == "with redis":
        assert firsts == [401] * TRIALS, "with Redis every replica refuses a revocation at once"


async def b_status(http: httpx.AsyncClient, token: str) -> int:
    return (await http.get(PRODUCTS, params={"limit": "1"}, headers=bearer(token))).status_code


async def _refused_within(replica: Served, token: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await status(replica, token) == 401:
            return True
        await asyncio.sleep(0.01)
    return False


async def test_a_key_not_registered_retired_or_removed_is_refused(replicas: Replicas) -> None:
    b = replicas.b
    registry = MongoKeyRegistry(replicas.database)
    now = datetime.now(UTC)

    def key_pair() -> tuple[ECKey, str]:
        key = generate_key()
        assert isinstance(key, ECKey) and key.kid
        return key, key.kid

    stranger, stranger_kid = key_pair()
    assert await status(b, signed_by(stranger, stranger_kid)) == 401, "never registered"
    forged = signed_by(stranger, replicas.kid(replicas.a))
    assert await status(b, forged) == 401, "A's kid, another key"

    retired, retired_kid = key_pair()
    jwk = retired.as_dict(private=False)
    await registry.register(RegisteredKey.seen(retired_kid, "ES256", jwk, now - timedelta(days=2), timedelta(days=1)))
    assert await status(b, signed_by(retired, retired_kid)) == 401, "retired: its owner was last seen 2 days ago"

    live, live_kid = key_pair()
    await registry.register(RegisteredKey.seen(live_kid, "ES256", live.as_dict(private=False), now, timedelta(days=1)))
    token = signed_by(live, live_kid)
    assert await status(b, token) == 200, "registered a moment ago: looked up, then remembered"
    assert live_kid in await published_kids(b)
    assert await registry.remove(live_kid)
    removed = time.monotonic()
    while await status(b, token) == 200:
        assert time.monotonic() - removed < REFRESH_SECONDS + 5, "B kept a removed key"
        await asyncio.sleep(0.1)
    print(
        f"\n[{replicas.mode}] a key removed from the registry was refused by B after {time.monotonic() - removed:.2f} s"
    )
    assert live_kid not in await published_kids(b)

    started = time.monotonic()
    garbage = [signed_by(stranger, secrets.token_hex(8)) for _ in range(30)]
    answers = await asyncio.gather(*(status(b, token) for token in garbage))
    elapsed = time.monotonic() - started
    assert answers == [401] * 30
    assert elapsed < 30 * LOOKUP_INTERVAL_SECONDS, "made-up kids share their registry reads"
    print(f"[{replicas.mode}] 30 concurrent tokens with made-up kids: all 401 in {elapsed:.2f} s")
