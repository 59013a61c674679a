"""Registering an OAuth client: an audited ``client:manage`` use case, whoever drives it (CLI, API).

The secret is generated here, shown once (in the return value) and stored only as a hash. The id
starts with the slugified name, so that audit records (actor = client id) stay readable.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from application.authorization import Authorizer, Caller
from domain.clients import ClientStore, OAuthClient, SecretHasher
from domain.errors import ErrorCode, FieldError, ValidationFailed
from domain.identifiers import slugify
from domain.ports import Clock
from domain.rbac import Permission, Role

MAX_NAME_LENGTH = 100
#: 256 random bits, URL-safe: fits HTTP Basic and form fields without escaping.
SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class RegisteredClient:
    client: OAuthClient
    secret: str = field(repr=False)


def _new_client_id(name: str) -> str:
    return f"{slugify(name)[:40].strip('-') or 'client'}-{secrets.token_hex(6)}"


class RegisterClient:
    def __init__(self, clients: ClientStore, hasher: SecretHasher, clock: Clock, authorizer: Authorizer) -> None:
        self.clients = clients
        self.hasher = hasher
        self.clock = clock
        self.authorizer = authorizer

    async def __call__(
        self, name: str, roles: Iterable[Role], brands: Iterable[str], caller: Caller
    ) -> RegisteredClient:
        name = name.strip()
        role_set = frozenset(roles)
        brand_set = frozenset(b.strip() for b in brands if b.strip())
        errors: list[FieldError] = []
        if not name or len(name) > MAX_NAME_LENGTH:
            errors.append(FieldError("name", ErrorCode.INVALID_VALUE, f"must be 1-{MAX_NAME_LENGTH} characters"))
        if not role_set:
            errors.append(FieldError("roles", ErrorCode.MISSING_FIELD, "a client needs at least one role"))
        client_id = _new_client_id(name)
        await self.authorizer.require(caller, Permission.CLIENT_MANAGE, f"client:{client_id}")
        if errors:
            raise ValidationFailed("the client registration is not valid", tuple(errors))
        secret = secrets.token_urlsafe(SECRET_BYTES)
        client = OAuthClient(
            client_id=client_id,
            name=name,
            secret_hash=self.hasher.hash(secret),
            roles=role_set,
            brands=brand_set,
            created_at=self.clock.now(),
        )
        await self.clients.add(client)
        return RegisteredClient(client, secret)
