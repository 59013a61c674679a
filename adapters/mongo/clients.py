"""OAuth clients and refresh tokens on MongoDB.

Every filter is one an index answers field for field (see ``RefreshTokenDocument``): by ``_id``,
``{_id, used}`` and ``{family_id, revoked}``. Rotation safety rests on one single-document atomic
update, ``find_one_and_update({_id, used: false}, {$set: {used: true}})``: of two concurrent
exchanges of one token exactly one matches.
"""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from adapters.mongo.documents import (
    OAuthClientDocument,
    OAuthClientFields,
    RefreshTokenDocument,
    RefreshTokenFields,
)
from domain.clients import (
    ClientAlreadyExists,
    ClientStore,
    Consumed,
    OAuthClient,
    RefreshTokenRecord,
    RefreshTokenStore,
)
from domain.rbac import parse_roles


def client_to_bson(client: OAuthClient) -> dict[str, Any]:
    fields = OAuthClientFields.model_validate(
        {
            "_id": client.client_id,
            "name": client.name,
            "secret_hash": client.secret_hash,
            "roles": sorted(role.value for role in client.roles),
            "brands": sorted(client.brands),
            "created_at": client.created_at,
            "disabled": client.disabled,
        }
    )
    return fields.model_dump(by_alias=True)


def client_from_bson(raw: dict[str, Any]) -> OAuthClient:
    doc = OAuthClientFields.model_validate(raw)
    return OAuthClient(
        client_id=doc.id,
        name=doc.name,
        secret_hash=doc.secret_hash,
        roles=parse_roles(doc.roles),
        brands=frozenset(doc.brands),
        created_at=doc.created_at,
        disabled=doc.disabled,
    )


def refresh_to_bson(record: RefreshTokenRecord) -> dict[str, Any]:
    fields = RefreshTokenFields.model_validate(
        {
            "_id": record.token_hash,
            "family_id": record.family_id,
            "client_id": record.client_id,
            "subject": record.subject,
            "roles": sorted(role.value for role in record.roles),
            "brands": sorted(record.brands),
            "issued_at": record.issued_at,
            "expires_at": record.expires_at,
            "access_token_id": record.access_token_id,
            "access_expires_at": record.access_expires_at,
            "used": record.used,
            "revoked": record.revoked,
        }
    )
    return fields.model_dump(by_alias=True)


def refresh_from_bson(raw: dict[str, Any]) -> RefreshTokenRecord:
    doc = RefreshTokenFields.model_validate(raw)
    return RefreshTokenRecord(
        token_hash=doc.id,
        family_id=doc.family_id,
        client_id=doc.client_id,
        subject=doc.subject,
        roles=parse_roles(doc.roles),
        brands=frozenset(doc.brands),
        issued_at=doc.issued_at,
        expires_at=doc.expires_at,
        access_token_id=doc.access_token_id,
        access_expires_at=doc.access_expires_at,
        used=doc.used,
        revoked=doc.revoked,
    )


class MongoClientStore(ClientStore):
    def __init__(self, database: AsyncDatabase[Any]) -> None:
        self.collection = database[OAuthClientDocument.Settings.name]

    async def add(self, client: OAuthClient) -> None:
        try:
            await self.collection.insert_one(client_to_bson(client))
        except DuplicateKeyError:
            raise ClientAlreadyExists(f"client {client.client_id!r} exists") from None

    async def get(self, client_id: str) -> OAuthClient | None:
        raw = await self.collection.find_one({"_id": client_id})
        return client_from_bson(raw) if raw is not None else None


class MongoRefreshTokenStore(RefreshTokenStore):
    def __init__(self, database: AsyncDatabase[Any]) -> None:
        self.collection = database[RefreshTokenDocument.Settings.name]

    async def add(self, record: RefreshTokenRecord) -> None:
        await self.collection.insert_one(refresh_to_bson(record))

    async def get(self, token_hash: str) -> RefreshTokenRecord | None:
        raw = await self.collection.find_one({"_id": token_hash})
        return refresh_from_bson(raw) if raw is not None else None

    async def use(self, token_hash: str) -> Consumed | None:
        raw = await self.collection.find_one_and_update(
            {"_id": token_hash, "used": False}, {"$set": {"used": True}}, return_document=ReturnDocument.AFTER
        )
        if raw is not None:
            return Consumed(refresh_from_bson(raw), first_use=True)
        current = await self.get(token_hash)
        return Consumed(current, first_use=False) if current is not None else None

    async def revoke_family(self, family_id: str) -> list[RefreshTokenRecord]:
        await self.collection.update_many({"family_id": family_id, "revoked": False}, {"$set": {"revoked": True}})
        return [refresh_from_bson(raw) async for raw in self.collection.find({"family_id": family_id, "revoked": True})]

    async def family_revoked(self, family_id: str) -> bool:
        return await self.collection.find_one({"family_id": family_id, "revoked": True}, {"_id": 1}) is not None
