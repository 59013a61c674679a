"""OAuth clients and their refresh tokens: the records, the ports that keep them, and the scope rule.

Nothing secret is ever kept in clear. A client secret is low in number but long-lived and may be
reused by a careless operator elsewhere, so it is stored through a deliberately slow ``SecretHasher``
(scrypt in the adapter). A refresh token is minted by this service from 256 random bits, so nobody can
guess it and a slow hash would buy nothing: it is stored as its SHA-256 (``refresh_token_hash``),
which is also the lookup key.

Scope: this service's scope values ARE its role names. A token's ``scope`` lists the roles granted,
and its ``roles`` claim carries the same set (authorization reads ``roles``, CONTRACT 4.2). A client
may ask for fewer roles than it has (least privilege); it never gets more.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from domain.errors import DomainError
from domain.rbac import Role, effective_roles


class OAuthAction(StrEnum):
    """The audit ``action`` of the OAuth endpoints."""

    ISSUED = "token_issued"
    REFUSED = "token_refused"
    REVOKED = "token_revoked"


class ClientAlreadyExists(DomainError):
    """A client id is taken (ids are random, so this means a bug or a replayed registration)."""


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """A confidential client: it authenticates with its id and secret, and acts with its own roles."""

    client_id: str
    name: str
    secret_hash: str = field(repr=False)
    roles: frozenset[Role]
    brands: frozenset[str]
    created_at: datetime
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    """One refresh token, known by its hash.

    Every refresh token descends, by rotation, from one grant: its ``family``. All members share the
    family's roles, brands and absolute ``expires_at`` (rotation never extends a session). ``used``
    is set the moment a token is exchanged; ``revoked`` marks a family that was revoked or replayed.
    ``access_token_id`` names the access token issued with this refresh token, so that revoking the
    family can revoke the access tokens it produced too (RFC 7009 §2.1).
    """

    token_hash: str
    family_id: str
    client_id: str
    subject: str
    roles: frozenset[Role]
    brands: frozenset[str]
    issued_at: datetime
    expires_at: datetime
    access_token_id: str
    access_expires_at: datetime
    used: bool = False
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class Consumed:
    """What ``use`` did: ``first_use`` is False when somebody had already exchanged the token."""

    record: RefreshTokenRecord
    first_use: bool


class ClientStore(abc.ABC):
    @abc.abstractmethod
    async def add(self, client: OAuthClient) -> None:
        """Stores a new client; ClientAlreadyExists when its id is taken."""

    @abc.abstractmethod
    async def get(self, client_id: str) -> OAuthClient | None: ...


class RefreshTokenStore(abc.ABC):
    """Refresh tokens by hash. ``use`` is the single atomic step that makes rotation safe."""

    @abc.abstractmethod
    async def add(self, record: RefreshTokenRecord) -> None:
        """Stores a new token (hashes of 256-bit random tokens do not collide)."""

    @abc.abstractmethod
    async def get(self, token_hash: str) -> RefreshTokenRecord | None:
        """The record whatever its state (used, revoked, expired); None when unknown."""

    @abc.abstractmethod
    async def use(self, token_hash: str) -> Consumed | None:
        """Marks the token used, atomically: of concurrent calls exactly one sees ``first_use``.

        The record comes back as stored after the call (``used`` True); None when the token is unknown.
        """

    @abc.abstractmethod
    async def revoke_family(self, family_id: str) -> list[RefreshTokenRecord]:
        """Marks every token of the family revoked (idempotent); returns the family's members."""

    @abc.abstractmethod
    async def family_revoked(self, family_id: str) -> bool:
        """True once ``revoke_family`` ran for the family: a member stored later (a rotation racing the
        revocation) is not marked itself, and this is how it is still refused."""


class SecretHasher(abc.ABC):
    """A slow, salted, self-describing hash for client secrets."""

    @abc.abstractmethod
    def hash(self, secret: str) -> str: ...

    @abc.abstractmethod
    def verify(self, secret: str, encoded: str) -> bool:
        """Constant-time; False (never an error) for a malformed ``encoded``."""


def refresh_token_hash(token: str) -> str:
    """SHA-256 hex: enough for a 256-bit random token, and fast enough to be the lookup key."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def scope_of(roles: Iterable[Role]) -> str:
    """The ``scope`` string of a grant: its role names, sorted, space-separated (RFC 6749 §3.3)."""
    return " ".join(sorted(role.value for role in roles))


def requested_roles(scope: str | None) -> frozenset[str]:
    return frozenset((scope or "").split())


def grant_roles(scope: str | None, allowed: frozenset[Role]) -> frozenset[Role]:
    """The roles a token request gets: all of ``allowed`` when no scope is asked for, else the requested
    role names that ``allowed`` covers (inheritance included: an admin client may ask for ``viewer``).

    Empty when nothing requested is covered; the caller refuses that with ``invalid_scope``.
    """
    wanted = requested_roles(scope)
    if not wanted:
        return allowed
    covered = effective_roles(allowed)
    return frozenset(role for role in covered if role.value in wanted)


def exceeds(scope: str | None, allowed: frozenset[Role]) -> bool:
    """True when ``scope`` names anything ``allowed`` does not cover (RFC 6749 §6 on refresh)."""
    covered = {role.value for role in effective_roles(allowed)}
    return not requested_roles(scope) <= covered
