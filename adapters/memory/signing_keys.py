"""The key registry in a dict: the reference behaviour of the port (and the registry of tests).

Each method runs without an ``await`` between its read and its write, so it is atomic on one event
loop, as the MongoDB adapter's compare-and-set is on the server.
"""

from __future__ import annotations

from datetime import datetime

from adapters.auth.key_registry import KeyRegistry, RegisteredKey, renewed


class MemoryKeyRegistry(KeyRegistry):
    def __init__(self) -> None:
        self._keys: dict[str, RegisteredKey] = {}

    async def register(self, key: RegisteredKey) -> RegisteredKey:
        current = self._keys.get(key.kid)
        stored = key if current is None else renewed(current, key)
        self._keys[key.kid] = stored
        return stored

    async def active(self, now: datetime) -> list[RegisteredKey]:
        for kid in [kid for kid, key in self._keys.items() if not key.published(now)]:
            del self._keys[kid]  # MongoDB's TTL index drops them too (later: the clock decides)
        return sorted(self._keys.values(), key=lambda key: key.kid)

    async def remove(self, kid: str) -> bool:
        return self._keys.pop(kid, None) is not None
