"""Brand spellings in a dict: the executable specification of ``BrandNames``."""

from __future__ import annotations

from collections.abc import Collection

from domain.ports import BrandNames
from domain.rbac import brand_key


class MemoryBrandNames(BrandNames):
    def __init__(self) -> None:
        self._names: dict[str, str] = {}

    async def canonical(self, spellings: Collection[str], *, register: bool = True) -> dict[str, str]:
        if not register:
            return {spelling: self._names.get(brand_key(spelling), spelling) for spelling in spellings}
        return {spelling: self._names.setdefault(brand_key(spelling), spelling) for spelling in spellings}
