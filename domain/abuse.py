"""Abuse policy: a caller that keeps failing is shut out for a while, and never for ever.

Two users share it. The API's threat screen counts detections per subject (or address) and blocks
for a fixed time. The token endpoint counts failed client authentications (ADR 0014): per pair of
client id and peer, per peer and per client id, with blocks that grow while the offence goes on
but are capped, and a success that wipes the pair's record.

The policy (how many strikes, in what window, how long a block lasts, how it grows) is domain;
counting is an adapter (in-process memory, or Redis so that every service process sees the same
strikes), and both adapters compute a block with ``block_length`` so that they agree.
"""

from __future__ import annotations

import abc
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class AbusePolicy:
    """``strikes`` within a sliding ``window`` block the key.

    The first block lasts ``block``; each further block that starts before ``memory`` has passed
    since the end of the previous one lasts ``growth`` times longer, up to ``max_block`` (None: every
    block lasts ``block``). ``trust``: how long a forgiven key stays in good standing (zero: none).
    """

    strikes: int = 5
    window: timedelta = timedelta(minutes=1)
    block: timedelta = timedelta(minutes=5)
    max_block: timedelta | None = None
    growth: int = 2
    memory: timedelta = timedelta(hours=1)
    trust: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if self.strikes < 1 or self.growth < 1:
            raise ValueError("an abuse policy needs strikes >= 1 and growth >= 1")
        if self.window <= timedelta(0) or self.block <= timedelta(0) or self.memory < timedelta(0):
            raise ValueError("an abuse policy needs a positive window and block")
        if self.max_block is not None and self.max_block < self.block:
            raise ValueError("max_block cannot be shorter than block")

    @property
    def cap(self) -> timedelta:
        """The longest any one block of this policy lasts."""
        return self.block if self.max_block is None else self.max_block


DEFAULT_ABUSE_POLICY = AbusePolicy()


def block_length(policy: AbusePolicy, level: int) -> timedelta:
    """How long the ``level``-th consecutive block lasts (1 is the first): grows, never past the cap."""
    length, cap = policy.block, policy.cap
    for _ in range(1, level):
        if length >= cap or policy.growth == 1:
            break
        length = min(length * policy.growth, cap)  # capped at every step: no overflow for any level
    return length


class AbuseTracker(abc.ABC):
    """Strikes, blocks and good standing per key. A key never stays blocked longer than its policy's
    cap after its last strike, whatever happens; ``forgive`` wipes every trace of bad behaviour."""

    policy: AbusePolicy

    @abc.abstractmethod
    async def strike(self, key: str, now: datetime) -> datetime | None:
        """Counts one offence for ``key``; returns the end of its block when this one tips it over."""

    @abc.abstractmethod
    async def blocked_until(self, key: str, now: datetime) -> datetime | None:
        """When ``key`` may call again, or None when it is not blocked."""

    @abc.abstractmethod
    async def forgive(self, key: str, now: datetime) -> None:
        """Drops the key's strikes, block and escalation; it is then in good standing for ``policy.trust``."""

    @abc.abstractmethod
    async def trusted(self, key: str, now: datetime) -> bool:
        """True while the key is in good standing (forgiven less than ``policy.trust`` ago)."""


# -- the token endpoint's throttle (ADR 0014) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientAuthPolicy:
    """The four counts kept on failed client authentications.

    ``pair`` (client id, peer) and ``peer`` refuse outright while blocked; ``pair`` forgives on a
    success and trusts the pair for a while, and a trusted pair is not refused for its peer's block
    (a client behind a shared address keeps working while its neighbours are shut out). ``client``
    never refuses anyone by itself: while it is "blocked" (the id is under attack from many
    addresses) a pair's first failure blocks the pair through ``suspect``, so an attacker gets one
    guess per address while a real client with the right secret, from any address that has not
    failed, is let through.
    """

    pair: AbusePolicy = AbusePolicy(
        strikes=5,
        window=timedelta(minutes=1),
        block=timedelta(minutes=1),
        max_block=timedelta(minutes=15),
        trust=timedelta(days=7),
    )
    peer: AbusePolicy = AbusePolicy(
        strikes=20, window=timedelta(minutes=1), block=timedelta(minutes=1), max_block=timedelta(minutes=15)
    )
    client: AbusePolicy = AbusePolicy(
        strikes=20, window=timedelta(minutes=1), block=timedelta(minutes=5), max_block=timedelta(hours=1)
    )
    suspect: AbusePolicy = AbusePolicy(
        strikes=1, window=timedelta(minutes=1), block=timedelta(minutes=1), max_block=timedelta(minutes=15)
    )


DEFAULT_CLIENT_AUTH_POLICY = ClientAuthPolicy()


@dataclass(frozen=True, slots=True)
class ClientAuthKeys:
    """The tracker keys of one client authentication; ``pair`` and ``client`` need a claimed id."""

    peer: str
    pair: str | None
    client: str | None


def peer_network(address: str | None) -> str:
    """The unit a peer is counted by: an IPv4 address, an IPv6 /64 (one host usually holds a whole
    /64, so counting single IPv6 addresses would give it 2**64 fresh starts), or the raw text of
    anything else (an ASGI server may report a name, or nothing: all of those share one count)."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def client_auth_keys(client_id: str | None, address: str | None) -> ClientAuthKeys:
    """``client_id`` is the id the caller claims, already checked to be printable and short."""
    peer = peer_network(address)
    if client_id is None:
        return ClientAuthKeys(peer=f"oauth-peer:{peer}", pair=None, client=None)
    return ClientAuthKeys(
        peer=f"oauth-peer:{peer}", pair=f"oauth-pair:{client_id}@{peer}", client=f"oauth-client:{client_id}"
    )


def retry_after_seconds(until: datetime, now: datetime) -> int:
    """The ``Retry-After`` of a block: whole seconds, rounded up, at least 1."""
    remaining = until - now
    whole = remaining // timedelta(seconds=1)
    return max(1, whole + (1 if remaining % timedelta(seconds=1) else 0))
