"""The key ring (ADR 0018): replicas that share a registry verify each other's tokens, a key that
is not (or no longer) registered is refused, and unknown kids cost a bounded number of reads."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.auth.access_tokens import AccessTokenIssuer, AccessTokenVerifier, InvalidToken
from adapters.auth.key_registry import KeyConflict, KeyRegistry, RegisteredKey, renewed, retention
from adapters.auth.key_ring import KeyRing
from adapters.auth.keys import SigningKeys, generate_key
from adapters.memory.revocations import MemoryRevocationList
from adapters.memory.signing_keys import MemoryKeyRegistry
from tests.unit.test_access_tokens import b64json, good_claims, sign

ISS, AUD = "eyewear-catalog", "eyewear-catalog-api"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEPT = timedelta(hours=24, minutes=5)


class ManualClock:
    def __init__(self) -> None:
        self.current = T0

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


class CountingRegistry(MemoryKeyRegistry):
    """The memory twin, counting reads of the published set; it fails while ``failing`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.registrations = 0
        self.failing = False

    async def active(self, now: datetime) -> list[RegisteredKey]:
        self.reads += 1
        await asyncio.sleep(0)  # a real registry is a round trip: other requests run meanwhile
        if self.failing:
            raise ConnectionError("registry down")
        return await super().active(now)

    async def register(self, key: RegisteredKey) -> RegisteredKey:
        self.registrations += 1
        if self.failing:
            raise ConnectionError("registry down")
        return await super().register(key)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def registry() -> CountingRegistry:
    return CountingRegistry()


def ring(registry: KeyRegistry, clock: ManualClock, keys: SigningKeys | None = None, **options: Any) -> KeyRing:
    return KeyRing(keys or SigningKeys.generate(), registry, kept=KEPT, clock=clock, **options)


def verifier(keys: KeyRing | SigningKeys, clock: ManualClock) -> AccessTokenVerifier:
    return AccessTokenVerifier(keys, ISS, AUD, MemoryRevocationList(clock=clock), clock=clock)


def token_of(keys: KeyRing, clock: ManualClock) -> str:
    return AccessTokenIssuer(keys.local, ISS, AUD, clock=clock).issue("alice", ["viewer"], ttl_seconds=900).token


async def reason(verifier: AccessTokenVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as refused:
        await verifier.verify(token)
    return refused.value.reason


async def test_start_registers_every_local_key_public_half_only(registry: CountingRegistry, clock: ManualClock) -> None:
    keys = SigningKeys.generate()
    keys.add_key(alg="Ed25519")  # a rotated set: the old key still verifies, so it is published too
    a = ring(registry, clock, keys)
    await a.start()
    try:
        stored = await registry.active(clock())
        assert [key.kid for key in stored] == sorted(keys.kids)
        for key in stored:
            assert key.last_seen == T0 and key.retire_at == T0 + KEPT
            assert "d" not in key.jwk and key.alg == keys.verification_key(key.kid).alg  # type: ignore[union-attr]
    finally:
        await a.stop()


async def test_replicas_accept_each_others_tokens_and_publish_every_key(
    registry: CountingRegistry, clock: ManualClock
) -> None:
    a, b = ring(registry, clock), ring(registry, clock)
    await a.register()
    await b.register()
    token = token_of(a, clock)
    assert (await verifier(b, clock).verify(token)).subject == "alice"  # found by a lookup
    assert registry.reads == 1 and b.lookups == 1
    await verifier(b, clock).verify(token)
    assert registry.reads == 1, "a found key is remembered"
    await a.refresh()
    for published in (a.public_jwks()["keys"], b.public_jwks()["keys"]):
        assert {key["kid"] for key in published} == {a.signing_kid, b.signing_kid}
        assert all("d" not in key and key["use"] == "sig" for key in published)
    assert b.public_jwks()["keys"][0]["kid"] == b.signing_kid, "a replica's own keys come first"


async def test_an_unregistered_key_is_refused(registry: CountingRegistry, clock: ManualClock) -> None:
    b = ring(registry, clock)
    stranger = ring(MemoryKeyRegistry(), clock)  # registered elsewhere only
    await stranger.register()
    assert await reason(verifier(b, clock), token_of(stranger, clock)) == "unknown_kid"
    assert registry.reads == 1


async def test_a_key_is_refused_from_its_retirement_on_even_if_remembered(
    registry: CountingRegistry, clock: ManualClock
) -> None:
    a, b = ring(registry, clock), ring(registry, clock)
    await a.register()  # and then never again: its owner is gone
    check = verifier(b, clock)
    clock.advance(hours=24)  # a token signed a day after (``eyewear token`` on its data dir, say)
    now = int(clock().timestamp())
    key = a.signing_key.private
    assert key is not None
    token = sign(good_claims(iat=now, exp=now + 3600), key)
    assert (await check.verify(token)).subject == "alice"
    clock.advance(minutes=5)  # T0 + 24 h 5 min: the key retires, the token has 55 minutes left
    assert await reason(check, token) == "unknown_kid"
    assert check.keys.verification_key(a.signing_kid) is None
    assert a.signing_kid not in {key["kid"] for key in b.public_jwks()["keys"]}


async def test_a_key_removed_from_the_registry_is_refused_after_the_next_refresh(
    registry: CountingRegistry, clock: ManualClock
) -> None:
    a, b = ring(registry, clock), ring(registry, clock)
    await a.register()
    check = verifier(b, clock)
    token = token_of(a, clock)
    assert (await check.verify(token)).subject == "alice"
    assert await registry.remove(a.signing_kid)
    await b.refresh()
    assert await reason(check, token) == "unknown_kid", "the remembered token left with its key"


async def test_the_algorithm_stays_pinned_to_the_registered_key(registry: CountingRegistry, clock: ManualClock) -> None:
    a, b = ring(registry, clock), ring(registry, clock)
    await a.register()
    check = verifier(b, clock)
    key = a.signing_key.private
    assert key is not None
    hs = f"{b64json({'alg': 'HS256', 'kid': a.signing_kid, 'typ': 'at+jwt'})}.{b64json(good_claims())}.c2ln"
    none = f"{b64json({'alg': 'none', 'kid': a.signing_kid, 'typ': 'at+jwt'})}.{b64json(good_claims())}."
    ed = sign(good_claims(), generate_key("Ed25519"), kid=a.signing_kid)
    for crafted in (hs, none):
        assert await reason(check, crafted) == "algorithm_not_allowed"
    assert registry.reads == 0, "a refused algorithm never reaches the registry"
    assert await reason(check, ed) == "algorithm_not_allowed"  # the kid is ES256 in the registry


async def test_garbage_kids_read_the_registry_at_a_bounded_rate(registry: CountingRegistry, clock: ManualClock) -> None:
    interval = 0.05
    b = ring(registry, clock, lookup_interval_seconds=interval)
    check = verifier(b, clock)
    key = generate_key()

    def garbage() -> str:
        return sign(good_claims(), key, kid=secrets.token_hex(8))

    started = time.monotonic()
    answers = await asyncio.gather(*(reason(check, garbage()) for _ in range(200)), return_exceptions=True)
    assert answers == ["unknown_kid"] * 200
    # The first read began before the others arrived (their kid might be newer): one more, shared.
    batch = registry.reads
    assert 1 <= batch <= 2, "concurrent unknown kids share their reads"
    for _ in range(20):
        assert await reason(check, garbage()) == "unknown_kid"
    elapsed = time.monotonic() - started
    assert registry.reads == b.lookups == batch + 20, "one read each: every one arrived after the last read"
    assert registry.reads <= elapsed / interval + 2
    assert elapsed >= (registry.reads - 1) * interval * 0.9, "each later read waited for its turn"


async def test_a_new_replicas_token_is_accepted_even_right_after_a_read(
    registry: CountingRegistry, clock: ManualClock
) -> None:
    """A token that names a kid registered after the last read waits for the next read instead of a 401."""
    b = ring(registry, clock, lookup_interval_seconds=0.05)
    check = verifier(b, clock)
    assert await reason(check, sign(good_claims(), generate_key(), kid="made-up")) == "unknown_kid"
    c = ring(registry, clock)
    await c.register()
    assert (await check.verify(token_of(c, clock))).subject == "alice"
    assert registry.reads == 2


async def test_a_failing_registry_fails_the_lookup_not_the_known_keys(
    registry: CountingRegistry, clock: ManualClock
) -> None:
    a, b = ring(registry, clock), ring(registry, clock, lookup_interval_seconds=0)
    await a.register()
    await b.register()
    own = token_of(b, clock)
    registry.failing = True
    check = verifier(b, clock)
    with pytest.raises(ConnectionError):
        await check.verify(token_of(a, clock))  # fail closed: an error (503), not a 401 nor an accept
    assert (await check.verify(own)).subject == "alice", "a replica's own keys need no registry"
    registry.failing = False
    assert (await check.verify(token_of(a, clock))).subject == "alice"


async def test_a_registered_key_that_fails_the_key_checks_is_left_out(
    registry: CountingRegistry, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    ec = generate_key().as_dict(private=False)
    await registry.register(RegisteredKey.seen("liar", "Ed25519", ec, T0, KEPT))  # an EC key claiming Ed25519
    b = ring(registry, clock)
    with caplog.at_level(logging.WARNING, logger="adapters.auth.key_ring"):
        await b.refresh()
    assert b.verification_key("liar") is None
    assert [key["kid"] for key in b.public_jwks()["keys"]] == [b.signing_kid]
    assert "auth.key_ring.key_refused kid=liar" in caplog.text


async def test_a_kid_taken_by_another_published_key_stops_the_start(
    registry: CountingRegistry, clock: ManualClock
) -> None:
    keys = SigningKeys.generate()
    await registry.register(RegisteredKey.seen(keys.signing_kid, "ES256", generate_key().as_dict(), T0, KEPT))
    with pytest.raises(KeyConflict):
        await ring(registry, clock, keys).start()


async def test_the_ring_renews_and_refreshes_in_the_background(
    registry: CountingRegistry, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    a = ring(registry, clock, refresh_seconds=0.01, renew_seconds=0.05)
    await a.start()
    try:
        assert registry.registrations == 1 and registry.reads == 1
        other = ring(registry, clock)
        await other.register()
        clock.advance(minutes=10)
        await asyncio.sleep(0.2)
        assert a.verification_key(other.signing_kid) is not None, "refreshed without a lookup"
        assert a.lookups == 0
        renewed = await registry.active(clock())
        assert next(k for k in renewed if k.kid == a.signing_kid).last_seen > T0, "renewed"
        registry.failing = True
        with caplog.at_level(logging.WARNING, logger="adapters.auth.key_ring"):
            await asyncio.sleep(0.1)
        assert "auth.key_ring.refresh_failed" in caplog.text
        assert a.verification_key(other.signing_kid) is not None, "what is known stays known"
        registry.failing = False
    finally:
        await a.stop()
    reads = registry.reads
    await asyncio.sleep(0.05)
    assert registry.reads == reads, "stopped"
    await a.stop()  # twice is harmless


def test_the_ring_refuses_nonsense_intervals(registry: CountingRegistry, clock: ManualClock) -> None:
    for bad in ({"refresh_seconds": 0}, {"renew_seconds": -1}, {"lookup_interval_seconds": -0.1}):
        with pytest.raises(ValueError):
            ring(registry, clock, **bad)
    assert KeyRing(SigningKeys.generate(), registry).kept == retention()
    with pytest.raises(ValueError):
        retention(0)


async def test_known_and_kidless_tokens_never_read_the_registry(registry: CountingRegistry, clock: ManualClock) -> None:
    b = ring(registry, clock)
    assert await b.lookup(b.signing_kid) is b.signing_key
    check = verifier(b, clock)
    key = generate_key()
    for kid in (None, ""):
        assert await reason(check, sign(good_claims(), key, kid=kid)) == "unknown_kid"
    assert await reason(check, sign(good_claims(), key, kid=12345)) == "unknown_kid"
    assert registry.reads == 0
    fixed = SigningKeys.generate()  # a verifier over a key file's set: nothing to look up
    assert await fixed.lookup(fixed.signing_kid) is fixed.signing_key
    assert await fixed.lookup("another") is None
    assert await reason(verifier(fixed, clock), sign(good_claims(), key)) == "unknown_kid"


def test_renewed_compares_registrations_of_one_kid_only() -> None:
    jwk = generate_key().as_dict(private=False)
    with pytest.raises(ValueError, match="one kid"):
        renewed(RegisteredKey.seen("a", "ES256", jwk, T0, KEPT), RegisteredKey.seen("b", "ES256", jwk, T0, KEPT))
