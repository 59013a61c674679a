"""In-memory OAuth clients and refresh tokens: the reference behaviour of both ports.

No ``await`` happens between a read and the write that depends on it, so each method is atomic on
one event loop without a lock, exactly the property the MongoDB adapter gets from single-document
atomic updates.
"""

from __future__ import annotations

import dataclasses

from domain.clients import (
    ClientAlreadyExists,
    ClientStore,
    Consumed,
    OAuthClient,
    RefreshTokenRecord,
    RefreshTokenStore,
)


class MemoryClientStore(ClientStore):
    def __init__(self) -> None:
        self._clients: dict[str, OAuthClient] = {}

    async def add(self, client: OAuthClient) -> None:
        if client.client_id in self._clients:
            raise ClientAlreadyExists(f"client {client.client_id!r} exists")
        self._clients[client.client_id] = client

    async def get(self, client_id: str) -> OAuthClient | None:
        return self._clients.get(client_id)


class MemoryRefreshTokenStore(RefreshTokenStore):
    def __init__(self) -> None:
        self._records: dict[str, RefreshTokenRecord] = {}

    async def add(self, record: RefreshTokenRecord) -> None:
        if record.token_hash in self._records:
            raise ValueError("a refresh token hash is stored once")
        self._records[record.token_hash] = record

    async def get(self, token_hash: str) -> RefreshTokenRecord | None:
        return self._records.get(token_hash)

    async def use(self, token_hash: str) -> Consumed | None:
        record = self._records.get(token_hash)
        if record is None:
            return None
        if record.used:
            return Consumed(record, first_use=False)
        used = self._records[token_hash] = dataclasses.replace(record, used=True)
        return Consumed(used, first_use=True)

    async def revoke_family(self, family_id: str) -> list[RefreshTokenRecord]:
        members: list[RefreshTokenRecord] = []
        for token_hash, record in list(self._records.items()):
            if record.family_id == family_id:
                revoked = self._records[token_hash] = dataclasses.replace(record, revoked=True)
                members.append(revoked)
        return members

    async def family_revoked(self, family_id: str) -> bool:
        return any(r.revoked for r in self._records.values() if r.family_id == family_id)
