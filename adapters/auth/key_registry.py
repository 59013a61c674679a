"""The registry of every replica's public signing keys, and the rule that retires them (ADR 0018).

Each ``eyewear serve`` signs with the keys of its own data dir (or keys file); the private halves
never leave it. What it shares is the public half of each key, registered by ``kid`` with two
times: ``last_seen``, renewed while the process runs, and ``retire_at``, until when every replica
publishes the key and accepts its tokens. A token signed while its key's owner was alive expires by
``last_seen`` plus the longest token lifetime; ``retire_at`` is that plus a grace (missed renewals,
the verifier's leeway, clock skew between replicas), so no valid token ever loses its key, and the
keys of replicas that are gone for good (an ephemeral disk replaced) stop being published.

The port lives beside ``SigningKeys`` rather than in the domain: what it stores is JWK members,
whose only readers are the token adapters. Both adapters (memory, MongoDB) share ``renewed``, the
rule for a second registration of one kid, so they cannot disagree on it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

#: The longest lifetime any eyewear token can have: the cap of EYEWEAR_ACCESS_TOKEN_TTL_SECONDS and
#: of ``eyewear token --ttl`` (demo tokens live 12 hours).
LONGEST_TOKEN_TTL_SECONDS: Final = 86_400
#: Two missed renewals, the verifier's 30 s leeway and a minute of clock skew, rounded up.
GRACE_SECONDS: Final = 300
#: The public members a registered JWK may have; ``d`` (the private key) is not one of them.
PUBLIC_MEMBERS: Final = frozenset({"kty", "crv", "x", "y"})


class KeyConflict(Exception):
    """A kid already registered, and still published, with another public key."""


def retention(longest_ttl_seconds: int = LONGEST_TOKEN_TTL_SECONDS, grace_seconds: int = GRACE_SECONDS) -> timedelta:
    """How long after its owner was last seen a key stays published and accepted."""
    if longest_ttl_seconds <= 0 or grace_seconds < 0:
        raise ValueError("the token lifetime must be positive and the grace not negative")
    return timedelta(seconds=longest_ttl_seconds + grace_seconds)


def _to_milliseconds(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("registry times must be aware datetimes")
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)  # what MongoDB keeps


@dataclass(frozen=True, slots=True)
class RegisteredKey:
    """One registered public key. Times are kept to the millisecond, as MongoDB stores them."""

    kid: str
    alg: str
    jwk: Mapping[str, str]
    last_seen: datetime
    retire_at: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.kid, str) or not self.kid:
            raise ValueError("a registered key needs a non-empty kid")
        private = set(self.jwk) - PUBLIC_MEMBERS
        if private:
            raise ValueError(f"only public JWK members may be registered, not {sorted(private)}")
        object.__setattr__(self, "jwk", dict(self.jwk))
        object.__setattr__(self, "last_seen", _to_milliseconds(self.last_seen))
        object.__setattr__(self, "retire_at", _to_milliseconds(self.retire_at))

    @classmethod
    def seen(cls, kid: str, alg: str, jwk: Mapping[str, str], at: datetime, kept: timedelta) -> RegisteredKey:
        """The registration of a key whose owner is alive ``at``: published until ``at + kept``."""
        return cls(kid, alg, {k: v for k, v in jwk.items() if k in PUBLIC_MEMBERS}, at, at + kept)

    def published(self, now: datetime) -> bool:
        """Published and accepted while its owner's last-seen plus the retention is in the future."""
        return now < self.retire_at

    def same_key(self, other: RegisteredKey) -> bool:
        return (self.kid, self.alg, dict(self.jwk)) == (other.kid, other.alg, dict(other.jwk))


def renewed(current: RegisteredKey, offered: RegisteredKey) -> RegisteredKey:
    """What the registry keeps when ``offered`` is registered over ``current`` (same kid).

    The same key: its times only move forward (two processes sharing a keys file renew one record).
    Another key under a retired record's kid: the new key replaces it. Another key under a kid still
    published: ``KeyConflict``, and the record stays as it was (its tokens are still valid).
    """
    if current.kid != offered.kid:
        raise ValueError("renewed compares two registrations of one kid")
    if current.same_key(offered):
        return RegisteredKey(
            current.kid,
            current.alg,
            current.jwk,
            max(current.last_seen, offered.last_seen),
            max(current.retire_at, offered.retire_at),
        )
    if not current.published(offered.last_seen):
        return offered
    raise KeyConflict(f"the kid {current.kid!r} is registered with another public key until {current.retire_at}")


class KeyRegistry(ABC):
    """Where replicas find each other's public keys (MongoDB, or a dict in tests)."""

    @abstractmethod
    async def register(self, key: RegisteredKey) -> RegisteredKey:
        """Adds or renews ``key`` (see ``renewed``); returns what is stored. Raises ``KeyConflict``."""

    @abstractmethod
    async def active(self, now: datetime) -> list[RegisteredKey]:
        """Every key published at ``now``, by kid."""

    @abstractmethod
    async def remove(self, kid: str) -> bool:
        """Forgets a key at once (a compromised one); True when it was registered."""
