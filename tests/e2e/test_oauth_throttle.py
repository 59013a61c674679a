"""The token endpoint's throttle through HTTP (ADR 0014), on an app of its own: the real container
with a clock the tests move, a counting secret hasher (state, not timing, proves that a 429 ran no
secret check), and peers set per request (``request.client.host``, as uvicorn reports the socket)."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from dependency_injector import providers

from adapters.memory.clock import FixedClock
from application.authorization import system_caller
from domain.audit import AuditQuery, AuditRecord
from domain.rbac import Role
from entrypoints.container import Container, resolve
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.support.oauth_throttle import REVOKE, TOKEN, Client, CountingHasher, assert_throttled, token, wrong


@dataclass
class ThrottledApp:
    app: Any
    container: Container
    clock: FixedClock
    hasher: CountingHasher
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def peer(self, address: str) -> httpx.AsyncClient:
        """An HTTP client whose requests come from ``address``."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 40_000))
        client = httpx.AsyncClient(transport=transport, base_url="http://catalog.test")
        self.clients.append(client)
        return client

    async def register(self, *roles: str) -> Client:
        use_case = await resolve(self.container.register_client)
        done = await use_case("Throttle probe", [Role(r) for r in roles or ("viewer",)], (), system_caller("tests"))
        return done.client.client_id, done.secret

    async def records(self, actor: str) -> list[AuditRecord]:
        audit = await resolve(self.container.audit_log)
        return list((await audit.query(AuditQuery(actor=actor, limit=200))).items)

    def failures(self, reason: str) -> float:
        registry = self.container.metrics().registry
        return registry.get_sample_value("eyewear_auth_failures_total", {"reason": reason}) or 0.0


@pytest.fixture(scope="module")
async def throttled(mongo_url: str) -> AsyncIterator[ThrottledApp]:
    with tempfile.TemporaryDirectory(prefix="eyewear-throttle-") as data_dir:
        settings = Settings(
            mongodb_url=mongo_url, mongodb_db=f"eyewear_throttle_{uuid.uuid4().hex[:8]}", data_dir=Path(data_dir)
        )
        container = Container(settings=settings)
        clock, hasher = FixedClock(start=datetime.now(UTC)), CountingHasher()
        container.clock.override(providers.Object(clock))
        container.hasher.override(providers.Object(hasher))
        app = create_app(container)
        async with app.router.lifespan_context(app):
            state = ThrottledApp(app, container, clock, hasher)
            yield state
            for client in state.clients:
                await client.aclose()
            database = await resolve(container.database)
            await database.client.drop_database(database.name)


async def test_wrong_secrets_get_429_with_retry_after_before_any_secret_check_and_every_refusal_is_audited(
    throttled: ThrottledApp,
) -> None:
    client = await throttled.register()
    http = throttled.peer("198.51.100.10")
    checks, refused_before = throttled.hasher.checks, throttled.failures("client_throttled")
    answers = [await token(http, wrong(client)) for _ in range(12)]
    assert [a.status_code for a in answers] == [401] * 5 + [429] * 7
    assert throttled.hasher.checks - checks == 5, "a throttled request ran the secret check"
    for answer in answers[5:]:
        assert_throttled(answer, retry_after=60)
    right_secret = await token(http, client)  # blocked too: the check is what the block saves
    assert_throttled(right_secret)
    assert throttled.hasher.checks - checks == 5
    assert throttled.failures("client_throttled") - refused_before == 8

    records = await throttled.records(client[0])
    refused = [r for r in records if r.action == "token_refused"]
    assert len(refused) == 13 and all(r.decision.value == "deny" for r in refused)
    assert sum("invalid_client" in r.reason for r in refused) == 5
    throttled_reasons = [r.reason for r in refused if "temporarily_unavailable" in r.reason]
    assert len(throttled_reasons) == 8 and all("throttled: pair blocked for" in r for r in throttled_reasons)
    threats = [r for r in records if r.action == "threat_detected"]
    assert [t.reason for t in threats] == ["client_auth_brute_force"]
    assert all(r.client_ip == "198.51.100.10" for r in records)
    assert all(client[1] not in r.reason and "not-the-secret" not in r.reason for r in records)

    throttled.clock.advance(60)
    assert (await token(http, client)).status_code == 200
    again = [await token(http, wrong(client)) for _ in range(6)]
    assert [a.status_code for a in again] == [401] * 5 + [429], "the success did not reset the pair"
    assert_throttled(again[-1], retry_after=60)  # and its escalation: a first block again


async def test_a_concurrent_burst_from_one_address_costs_only_the_limit_in_secret_checks(
    throttled: ThrottledApp,
) -> None:
    client = await throttled.register()
    http = throttled.peer("198.51.100.11")
    checks = throttled.hasher.checks
    answers = await asyncio.gather(*(token(http, wrong(client)) for _ in range(30)))
    assert sorted(a.status_code for a in answers) == [401] * 5 + [429] * 25
    assert throttled.hasher.checks - checks == 5


async def test_blocks_grow_to_a_cap_and_never_stop_the_real_client_at_another_address(
    throttled: ThrottledApp,
) -> None:
    client = await throttled.register()
    attacker, real = throttled.peer("203.0.113.5"), throttled.peer("192.0.2.7")
    waits = []
    for _ in range(6):
        assert [(await token(attacker, wrong(client))).status_code for _ in range(5)] == [401] * 5
        waits.append(assert_throttled(await token(attacker, wrong(client))))
        assert (await token(real, client)).status_code == 200, "the real client was shut out"
        throttled.clock.advance(waits[-1])
    assert waits == [60, 120, 240, 480, 900, 900]  # doubling, capped at 15 minutes


async def test_an_id_attacked_from_many_addresses_gives_each_one_guess_and_lets_its_client_in(
    throttled: ThrottledApp,
) -> None:
    client = await throttled.register()
    for n in range(20):  # the client id's own count: 20 failures a minute puts it under attack
        assert (await token(throttled.peer(f"203.0.113.{100 + n}"), wrong(client))).status_code == 401
    records = await throttled.records(client[0])
    assert [r.reason for r in records if r.action == "threat_detected"] == ["client_auth_brute_force"]
    newcomer = throttled.peer("203.0.113.200")
    checks = throttled.hasher.checks
    assert (await token(newcomer, wrong(client))).status_code == 401
    assert_throttled(await token(newcomer, wrong(client)), retry_after=60)
    assert throttled.hasher.checks - checks == 1, "an attacking address had more than one guess"

    assert (await token(throttled.peer("192.0.2.8"), client)).status_code == 200  # never refused
    typo = throttled.peer("192.0.2.9")
    assert (await token(typo, wrong(client))).status_code == 401
    wait = assert_throttled(await token(typo, client))
    assert wait <= 60
    throttled.clock.advance(wait)
    assert (await token(typo, client)).status_code == 200


async def test_spraying_from_one_address_blocks_it_but_not_a_client_that_succeeded_there(
    throttled: ThrottledApp,
) -> None:
    regular, newcomer = await throttled.register(), await throttled.register()
    shared = throttled.peer("198.51.100.20")  # one NAT, or one proxy, for everyone
    assert (await token(shared, regular)).status_code == 200
    for n in range(20):
        assert (await token(shared, (f"invented-{n}", "guess"))).status_code == 401
    checks = throttled.hasher.checks
    assert_throttled(await token(shared, ("invented-21", "guess")), retry_after=60)
    assert_throttled(await shared.post(TOKEN, data={"grant_type": "client_credentials"}))  # no id at all
    assert (await token(shared, regular)).status_code == 200, "a trusted pair was refused for its peer"
    wait = assert_throttled(await token(shared, newcomer))
    assert throttled.hasher.checks - checks == 1
    throttled.clock.advance(wait)
    assert (await token(shared, newcomer)).status_code == 200


async def test_the_refresh_grant_and_revocation_are_throttled_but_revoking_by_possession_is_not(
    throttled: ThrottledApp,
) -> None:
    client = await throttled.register()
    http = throttled.peer("198.51.100.30")
    issued = (await token(http, client)).json()
    refresh = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
    assert [(await http.post(TOKEN, data=refresh, auth=wrong(client))).status_code for _ in range(5)] == [401] * 5
    checks = throttled.hasher.checks
    assert_throttled(await http.post(TOKEN, data=refresh, auth=client))
    assert_throttled(await http.post(REVOKE, data={"token": issued["refresh_token"]}, auth=client))
    assert throttled.hasher.checks == checks
    possession = await http.post(REVOKE, data={"token": issued["access_token"]})
    assert possession.status_code == 200, "revoking a token one holds was throttled"

    other = await throttled.register()
    elsewhere = throttled.peer("198.51.100.31")
    revocations = [await elsewhere.post(REVOKE, data={"token": "x"}, auth=wrong(other)) for _ in range(6)]
    assert [r.status_code for r in revocations] == [401] * 5 + [429]
    records = await throttled.records(other[0])
    assert any(r.action == "token_revoked" and "throttled: pair blocked" in r.reason for r in records)


async def test_a_request_without_a_usable_client_id_is_counted_against_its_address(
    throttled: ThrottledApp,
) -> None:
    """A claimed id that cannot be one of ours (too long) keys no pair: only the address counts."""
    http = throttled.peer("198.51.100.40")
    form = {"grant_type": "client_credentials", "client_id": "x" * 100, "client_secret": "guess"}
    answers = [await http.post(TOKEN, data=form) for _ in range(21)]
    assert [a.status_code for a in answers] == [401] * 20 + [429]
    records = await throttled.records("anonymous")
    assert any(r.action == "threat_detected" and r.client_ip == "198.51.100.40" for r in records)
