"""The key registry on MongoDB: the ``signing_keys`` collection, one document per kid (ADR 0018).

Every filter is one an index answers field for field: ``{_id}``, ``{_id, retire_at}`` (the
compare-and-set of a registration) and ``{retire_at: {$gt}}`` (the published keys). A registration
reads the record, decides with ``renewed`` (the same rule as the memory twin) and writes only if the
record is still the one it read, so two replicas renewing one shared key, or racing for a kid,
never lose a renewal nor overwrite a published key.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from adapters.auth.key_registry import KeyConflict, KeyRegistry, RegisteredKey, renewed
from adapters.auth.keys import generate_key
from adapters.mongo.documents import SigningKeyDocument, SigningKeyFields

#: Each lost race means another replica wrote the record in between; a handful settles any real one.
ATTEMPTS: Final = 8


def key_to_bson(key: RegisteredKey) -> dict[str, Any]:
    fields = SigningKeyFields.model_validate(
        {"_id": key.kid, "alg": key.alg, **key.jwk, "last_seen": key.last_seen, "retire_at": key.retire_at}
    )
    return fields.model_dump(by_alias=True, exclude_none=True)


def key_from_bson(raw: dict[str, Any]) -> RegisteredKey:
    doc = SigningKeyFields.model_validate(raw)
    jwk = {"kty": doc.kty, "crv": doc.crv, "x": doc.x} | ({"y": doc.y} if doc.y is not None else {})
    return RegisteredKey(doc.id, doc.alg, jwk, doc.last_seen, doc.retire_at)


class MongoKeyRegistry(KeyRegistry):
    def __init__(self, database: AsyncDatabase[Any]) -> None:
        self.collection = database[SigningKeyDocument.Settings.name]

    async def register(self, key: RegisteredKey) -> RegisteredKey:
        document = key_to_bson(key)  # the validation errors first: nothing is sent for a bad key
        for _ in range(ATTEMPTS):
            raw = await self.collection.find_one({"_id": key.kid})
            if raw is None:
                try:
                    await self.collection.insert_one(document)
                except DuplicateKeyError:
                    continue
                return key
            current = key_from_bson(raw)
            stored = renewed(current, key)
            if stored == current:
                return current
            swapped = await self.collection.replace_one(
                {"_id": key.kid, "retire_at": raw["retire_at"]}, key_to_bson(stored)
            )
            if swapped.matched_count:
                return stored
        raise RuntimeError(f"the registration of kid {key.kid!r} lost {ATTEMPTS} races in a row")

    async def active(self, now: datetime) -> list[RegisteredKey]:
        found = [key_from_bson(raw) async for raw in self.collection.find({"retire_at": {"$gt": now}})]
        return sorted(found, key=lambda key: key.kid)

    async def remove(self, kid: str) -> bool:
        return (await self.collection.delete_one({"_id": kid})).deleted_count == 1


async def drive_signing_keys(database: AsyncDatabase[Any]) -> None:
    """The registry's part of the plan-check workload (``plan_workload``): every query it sends, a
    first registration, a renewal, a conflict, a retired kid taken over, the published set, a removal."""

    def public() -> dict[str, str]:
        return {k: str(v) for k, v in generate_key().as_dict(private=False).items() if k in ("kty", "crv", "x", "y")}

    registry, jwk, now, kept = MongoKeyRegistry(database), public(), datetime.now(UTC), timedelta(hours=1)
    await registry.register(RegisteredKey.seen("plan-check", "ES256", jwk, now, kept))
    await registry.register(RegisteredKey.seen("plan-check", "ES256", jwk, now + timedelta(minutes=1), kept))
    with contextlib.suppress(KeyConflict):
        await registry.register(RegisteredKey.seen("plan-check", "ES256", public(), now, kept))
    await registry.register(RegisteredKey.seen("plan-check-old", "ES256", jwk, now - 2 * kept, kept))
    await registry.register(RegisteredKey.seen("plan-check-old", "ES256", public(), now, kept))
    await registry.active(now)
    await registry.remove("plan-check-old")
