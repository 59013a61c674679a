"""The container registers this process's keys when its verifier is first needed (ADR 0018): a
configured keys file (every key of it) or the key generated in the data dir; never the private half."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.auth.key_ring import KeyRing
from adapters.auth.keys import KEY_FILE_NAME, SigningKeys
from adapters.mongo.migrations import migrate
from adapters.mongo.signing_keys import MongoKeyRegistry
from entrypoints.container import Container, resolve
from entrypoints.settings import Settings


def settings_for(mongo_url: str, data_dir: Path, **changes: Any) -> Settings:
    return Settings(mongodb_url=mongo_url, mongodb_db=f"keys_{uuid.uuid4().hex[:8]}", data_dir=data_dir, **changes)


@pytest.mark.parametrize("source", ["keys file", "data dir"])
async def test_the_verifier_registers_the_process_keys(mongo_url: str, tmp_path: Path, source: str) -> None:
    if source == "keys file":
        path = tmp_path / "keys.json"
        SigningKeys.generate().save(path)
        expected = SigningKeys.rotate(path, alg="Ed25519")  # two keys: both verify, both are registered
        settings = settings_for(mongo_url, tmp_path / "data", signing_keys_file=path)
    else:
        settings = settings_for(mongo_url, tmp_path / "data")
    container = Container(settings=settings)
    await container.init_resources()
    try:
        database = await resolve(container.database)
        await migrate(database)
        registry = MongoKeyRegistry(database)
        assert await registry.active(_now()) == [], "no verifier yet: nothing registered"
        verifier = await resolve(container.token_verifier)
        ring = verifier.keys
        assert isinstance(ring, KeyRing) and ring.local is container.keys()
        if source == "data dir":
            expected = SigningKeys.load(tmp_path / "data" / KEY_FILE_NAME)
        registered = await registry.active(_now())
        assert sorted(key.kid for key in registered) == sorted(expected.kids)
        assert all(set(key.jwk) <= {"kty", "crv", "x", "y"} for key in registered)
        raw = await database["signing_keys"].find_one({"_id": expected.signing_kid})
        assert "d" not in raw and raw["alg"] == expected.signing_key.alg
        published = {key["kid"] for key in ring.public_jwks()["keys"]}
        assert published == set(expected.kids)
        security = await resolve(container.security)
        assert security.verifier is verifier
        await database.client.drop_database(database.name)
    finally:
        await container.shutdown_resources()
    assert ring._task is None, "the heartbeat stops with the container"


async def test_a_command_without_a_verifier_registers_nothing(mongo_url: str, tmp_path: Path) -> None:
    container = Container(settings=settings_for(mongo_url, tmp_path))
    await container.init_resources()
    try:
        database = await resolve(container.database)
        await resolve(container.use_cases)
        assert await database["signing_keys"].count_documents({}) == 0
        assert not (tmp_path / KEY_FILE_NAME).exists(), "not even a key generated"
        await database.client.drop_database(database.name)
    finally:
        await container.shutdown_resources()


def _now() -> datetime:
    return datetime.now(UTC)
