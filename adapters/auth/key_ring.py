"""The keys a replica verifies with and publishes: its own, and those every other replica registered.

Its own keys (``SigningKeys``, from the data dir or the keys file) always verify and are always
published; the newest signs. At start it registers their public halves (``KeyRegistry``) and then
renews them every ``renew_seconds``, so that they stay published everywhere while it runs and for
``kept`` (the longest token lifetime plus a grace) after it stops (ADR 0018).

The other replicas' keys are read from the registry: all published ones at start and every
``refresh_seconds`` (so a key removed from the registry stops verifying within that time, and
``/.well-known/jwks.json`` lists a new replica's key within it), and at once when a token names a
kid this process does not know: one read of the published set answers every unknown kid at
that moment, the key found is remembered, and such reads happen at most once every
``lookup_interval_seconds``, however many tokens with made-up kids arrive. A token waits for the
next allowed read instead of being refused (its key may be seconds old); concurrent ones share it.
Each remembered key is refused from its ``retire_at`` on, whether or not a read has happened since.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from adapters.auth.key_registry import KeyRegistry, RegisteredKey, retention
from adapters.auth.keys import ManagedKey, SigningKeyError, SigningKeys, public_key

logger = logging.getLogger(__name__)

REFRESH_SECONDS: Final = 5.0
RENEW_SECONDS: Final = 60.0
LOOKUP_INTERVAL_SECONDS: Final = 0.5


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Foreign:
    key: ManagedKey
    record: RegisteredKey


class KeyRing:
    """What the verifier and the JWKS route read (``verification_key``, ``lookup``, ``public_jwks``)."""

    def __init__(
        self,
        local: SigningKeys,
        registry: KeyRegistry,
        *,
        kept: timedelta | None = None,
        refresh_seconds: float = REFRESH_SECONDS,
        renew_seconds: float = RENEW_SECONDS,
        lookup_interval_seconds: float = LOOKUP_INTERVAL_SECONDS,
        clock: Callable[[], datetime] = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if min(refresh_seconds, renew_seconds) <= 0 or lookup_interval_seconds < 0:
            raise ValueError("the key ring's intervals must be positive")
        self.local = local
        self.registry = registry
        self.kept = kept if kept is not None else retention()
        self.refresh_seconds = refresh_seconds
        self.renew_seconds = renew_seconds
        self.lookup_interval = lookup_interval_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._foreign: dict[str, _Foreign] = {}
        self._lock = asyncio.Lock()
        self._last_attempt = -math.inf
        self._last_success = -math.inf
        self._renewed_at = -math.inf
        self._task: asyncio.Task[None] | None = None
        #: Registry reads caused by unknown kids (the bound the module docstring promises).
        self.lookups = 0

    # -- what the issuer and the verifier read --------------------------------------------------

    @property
    def signing_key(self) -> ManagedKey:
        return self.local.signing_key

    @property
    def signing_kid(self) -> str:
        return self.local.signing_kid

    def verification_key(self, kid: str) -> ManagedKey | None:
        """This process's key, or another replica's that is published now; None otherwise."""
        key = self.local.verification_key(kid)
        if key is not None:
            return key
        foreign = self._foreign.get(kid)
        if foreign is None or not foreign.record.published(self._clock()):
            return None
        return foreign.key

    async def lookup(self, kid: str) -> ManagedKey | None:
        """``verification_key``, after reading the registry when the kid is unknown (rate-limited)."""
        key = self.verification_key(kid)
        if key is not None:
            return key
        await self._refresh_since(self._monotonic())
        return self.verification_key(kid)

    def public_jwks(self) -> dict[str, list[dict[str, Any]]]:
        """This process's keys (newest last), then every other published one, by kid."""
        now = self._clock()
        others = [f.key.public_jwk() for _, f in sorted(self._foreign.items()) if f.record.published(now)]
        return {"keys": [*self.local.public_jwks()["keys"], *others]}

    # -- the registry ---------------------------------------------------------------------------

    async def register(self) -> None:
        """Registers (or renews) every key of this process: published until now plus ``kept``."""
        now = self._clock()
        for kid in self.local.kids:
            key = self.local.verification_key(kid)
            assert key is not None  # a kid of the set
            await self.registry.register(RegisteredKey.seen(kid, key.alg, key.public_jwk(), now, self.kept))
        self._renewed_at = self._monotonic()

    async def refresh(self) -> None:
        """Reads every published key of the other replicas; a key that fails the checks a key file's
        key must pass (type, curve, pinned ``alg``, public only) is left out and logged."""
        async with self._lock:
            await self._refresh()

    async def start(self) -> None:
        """Registers, reads the others' keys, then renews and refreshes in the background."""
        await self.register()
        await self.refresh()
        self._task = asyncio.create_task(self._run(), name="eyewear-key-ring")

    async def stop(self) -> None:
        """Stops the background work. Nothing is unregistered: the tokens this process signed stay
        valid after it exits, so its keys stay published until they retire."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- internals ------------------------------------------------------------------------------

    async def _refresh_since(self, arrived: float) -> None:
        """Returns once a read that began after ``arrived`` has succeeded (raising when this call's
        read fails), reading at most once every ``lookup_interval`` across all callers."""
        async with self._lock:
            if self._last_success >= arrived:
                return
            delay = self._last_attempt + self.lookup_interval - self._monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.lookups += 1
            await self._refresh()

    async def _refresh(self) -> None:
        started = self._last_attempt = self._monotonic()
        records = await self.registry.active(self._clock())
        previous, foreign = self._foreign, {}
        for record in records:
            if self.local.verification_key(record.kid) is not None:
                continue  # our own: the local key is the authority
            known = previous.get(record.kid)
            if known is not None and known.record.same_key(record):
                foreign[record.kid] = _Foreign(known.key, record)  # the same object: remembered tokens stay
                continue
            try:
                foreign[record.kid] = _Foreign(public_key(record.kid, record.alg, record.jwk), record)
            except SigningKeyError as error:
                logger.warning("auth.key_ring.key_refused kid=%.64s reason=%s", record.kid, error)
        self._foreign = foreign
        self._last_success = max(self._last_success, started)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                if self._monotonic() - self._renewed_at >= self.renew_seconds:
                    await self.register()
                await self.refresh()
            except Exception as error:  # the registry is down: keep what is known, try again later
                logger.warning("auth.key_ring.refresh_failed error=%s: %s", type(error).__name__, error)
