"""The token endpoint's throttle on failed client authentication (ADR 0014).

Each secret check costs a scrypt (tens to hundreds of milliseconds of CPU, on purpose), so the
throttle decides before authlib runs: a request whose pair (client id, peer) or peer is blocked is
answered 429 without any check. Failures are counted after the check, by the domain's policy
(``domain.abuse.ClientAuthPolicy``), through one ``AbuseTracker`` per count: Redis when configured,
so that every process sees them.

Within a process, the checks of one peer take turns (``turn``): the block is looked at again once
the turn comes, so a burst of concurrent guesses from one address costs exactly the policy's number
of checks, not as many as arrive before the first failure is counted; and one address never has
more than one scrypt running per process. Across processes the overshoot is one check per process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from domain.abuse import AbuseTracker, ClientAuthKeys, retry_after_seconds
from domain.ports import Clock

#: The audit's name for the kind of threat a tipped count reveals (``eyewear_threats_detected_total``).
BRUTE_FORCE = "client_auth_brute_force"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why and until when a request is refused; ``blocked`` names the counts, for the audit only."""

    until: datetime
    retry_after: int
    blocked: tuple[str, ...]


@dataclass
class ClientAuthThrottle:
    pair: AbuseTracker
    peer: AbuseTracker
    client: AbuseTracker
    suspect: AbuseTracker
    clock: Clock

    def __post_init__(self) -> None:
        self._turns: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    async def refusal(self, keys: ClientAuthKeys) -> Refusal | None:
        """None when the request may run its secret check; else until when every block that applies
        to it lasts. A trusted pair is not refused for its peer's block (only for its own)."""
        now = self.clock.now()
        blocks: dict[str, datetime] = {}
        if keys.pair is not None:
            for name, tracker in (("pair", self.pair), ("suspect", self.suspect)):
                until = await tracker.blocked_until(keys.pair, now)
                if until is not None:
                    blocks[name] = until
        peer_until = await self.peer.blocked_until(keys.peer, now)
        if peer_until is not None and not (keys.pair is not None and await self.pair.trusted(keys.pair, now)):
            blocks["peer"] = peer_until
        if not blocks:
            return None
        until = max(blocks.values())
        return Refusal(until, retry_after_seconds(until, now), tuple(sorted(blocks)))

    async def failed(self, keys: ClientAuthKeys) -> tuple[str, ...]:
        """Counts one failed authentication; returns the counts it tipped into a block (a detection)."""
        now = self.clock.now()
        tipped = []
        if await self.peer.strike(keys.peer, now) is not None:
            tipped.append("peer")
        if keys.pair is not None and keys.client is not None:
            if await self.pair.strike(keys.pair, now) is not None:
                tipped.append("pair")
            if await self.client.strike(keys.client, now) is not None:
                tipped.append("client")
            if await self.client.blocked_until(keys.client, now) is not None:
                await self.suspect.strike(keys.pair, now)  # under attack: one failure blocks the pair
        return tuple(tipped)

    async def succeeded(self, keys: ClientAuthKeys) -> None:
        """The right secret: the pair's record is wiped and the pair trusted. Neither the peer's nor
        the id's count is: a success of one client must not buy an address more guesses at others."""
        if keys.pair is not None:
            now = self.clock.now()
            await self.pair.forgive(keys.pair, now)
            await self.suspect.forgive(keys.pair, now)

    @asynccontextmanager
    async def turn(self, keys: ClientAuthKeys) -> AsyncIterator[None]:
        """One secret check at a time per peer in this process; the lock goes when nobody waits."""
        lock, waiting = self._turns.setdefault(keys.peer, (asyncio.Lock(), [0]))
        waiting[0] += 1
        try:
            async with lock:
                yield
        finally:
            waiting[0] -= 1
            if not waiting[0]:
                del self._turns[keys.peer]
