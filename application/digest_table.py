"""A compact set (or map) of 64-bit digests, for what an ingestion run remembers of a feed.

A Python ``set`` of ints costs about 72 bytes per entry (the int object and the hash table slot);
this table keeps the keys in one ``array('Q')`` (and the values, when it is a map, in another),
open-addressed with linear probing: 8 bytes per slot, at most two thirds of the slots used, the
slots doubled when that is reached, so 12 to 24 bytes per key (24 to 48 for a map). Keys are any
ints in ``[0, 2**64)``; 0 marks an empty slot, so key 0 is kept aside.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

_M64 = (1 << 64) - 1
#: Fibonacci hashing: keys that share their low bits (multiples of the size) still spread out.
_MIX = 0x9E3779B97F4A7C15
_MIN_BITS = 6


class DigestTable:
    """``add``/``in`` like a set of ints; with ``values=True`` also ``get``/``put``/``setdefault``
    like a dict of int to int (values in ``[0, 2**64)``)."""

    __slots__ = ("_bits", "_keys", "_used", "_values", "_zero", "_zero_value")

    def __init__(self, *, values: bool = False) -> None:
        self._bits = _MIN_BITS
        self._keys = array("Q", bytes(8 << _MIN_BITS))
        self._values: array[int] | None = array("Q", bytes(8 << _MIN_BITS)) if values else None
        self._used = 0
        self._zero = False
        self._zero_value = 0

    def __len__(self) -> int:
        return self._used + self._zero

    def __contains__(self, key: int) -> bool:
        if key == 0:
            return self._zero
        return self._keys[self._slot(key)] == key

    def add(self, key: int) -> None:
        self.put(key, 0)

    def get(self, key: int) -> int | None:
        if key == 0:
            return self._zero_value if self._zero else None
        slot = self._slot(key)
        if self._keys[slot] != key:
            return None
        return self._values[slot] if self._values is not None else 0

    def put(self, key: int, value: int) -> None:
        """Sets the value of ``key`` (a set keeps no values: ``value`` is ignored)."""
        if not 0 <= key <= _M64 or not 0 <= value <= _M64:
            raise OverflowError("keys and values are unsigned 64-bit ints")
        if key == 0:
            self._zero, self._zero_value = True, value
            return
        slot = self._slot(key)
        if self._keys[slot] != key:
            self._keys[slot] = key
            self._used += 1
        if self._values is not None:
            self._values[slot] = value
        if self._used * 3 > len(self._keys) * 2:
            self._grow()

    def setdefault(self, key: int, value: int) -> int:
        """The value of ``key``, set to ``value`` first when it has none (as ``dict.setdefault``)."""
        found = self.get(key)
        if found is not None:
            return found
        self.put(key, value)
        return value if self._values is not None else 0

    def values(self) -> Iterator[int]:
        if self._zero:
            yield self._zero_value
        if self._values is None:
            yield from (0 for key in self._keys if key)
            return
        for key, value in zip(self._keys, self._values, strict=True):
            if key:
                yield value

    def _slot(self, key: int) -> int:
        """The slot holding ``key``, or the empty slot where it belongs."""
        keys = self._keys
        mask = len(keys) - 1
        slot = ((key * _MIX) & _M64) >> (64 - self._bits)
        while True:
            found = keys[slot]
            if found == key or found == 0:
                return slot
            slot = (slot + 1) & mask

    def _grow(self) -> None:
        old_keys, old_values = self._keys, self._values
        self._bits += 1
        self._keys = array("Q", bytes(8 << self._bits))
        self._values = array("Q", bytes(8 << self._bits)) if old_values is not None else None
        self._used = 0
        for index, key in enumerate(old_keys):
            if key:
                slot = self._slot(key)
                self._keys[slot] = key
                if self._values is not None and old_values is not None:
                    self._values[slot] = old_values[index]
                self._used += 1
