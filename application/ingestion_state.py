"""What one pass over a feed remembers, and how it rides on a run's checkpoints.

A pass keeps, across batches, one digest per SKU and GTIN it saw (duplicates), one entry per product
(style conflicts, products counted once, what it wrote) and a few counters. Each batch's checkpoint
carries what that batch added (``encode_delta``), so a process that takes the run over rebuilds the
pass by replaying the checkpoints of the pass in order (``Resume``) and goes on after the last one.

The encoding is the pipeline's own: JSON with the digest arrays as base64 of unsigned 64-bit ints.
It is never unpickled or evaluated; a checkpoint that does not decode fails the run that reads it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from application.digest_table import DigestTable
from domain.ingestion import Checkpoint, RunCounts
from domain.ports import BatchWriter

MAX_SAMPLES = 5


def digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@dataclass(slots=True)
class ProductState:
    """What a run remembers of one product between batches (kept as 4 bits per product)."""

    existed: bool
    fields_changed: bool
    counted_updated: bool = False
    written: bool = False

    def packed(self) -> int:
        return self.existed | self.fields_changed << 1 | self.counted_updated << 2 | self.written << 3

    @classmethod
    def unpacked(cls, bits: int) -> ProductState:
        return cls(bool(bits & 1), bool(bits & 2), bool(bits & 4), bool(bits & 8))


@dataclass(slots=True)
class Lease:
    """The executing process's hold on its run: the counts the next renewal records, and whether a
    renewal found the run taken from it (declared interrupted while this process stalled)."""

    counts: RunCounts = field(default_factory=RunCounts)
    lost: bool = False
    #: When the lease was last renewed (each checkpoint renews it too), by the event loop's clock.
    renewed_at: float = 0.0


@dataclass(slots=True)
class Pass:
    """The state of one pass over the feed."""

    run_id: str
    write: bool
    counts: RunCounts = field(default_factory=RunCounts)
    #: Digests of every SKU and GTIN seen, in compact tables (~20 bytes each, not a set's ~72).
    seen_skus: DigestTable = field(default_factory=DigestTable)
    seen_gtins: DigestTable = field(default_factory=DigestTable)
    #: Product id digest -> packed ``ProductState``.
    products: DigestTable = field(default_factory=lambda: DigestTable(values=True))
    #: Product id digest -> digest of the product-level fields of its first readable row.
    styles: DigestTable = field(default_factory=lambda: DigestTable(values=True))
    unknown: dict[str, int] = field(default_factory=dict)
    denied_brands: set[str] = field(default_factory=set)
    errors_stored: int = 0
    invalid_rows_stored: int = 0
    readback_failures: int = 0
    #: Product writes this pass made (each with its history entry).
    writes: int = 0
    readback_samples: list[str] = field(default_factory=list)
    #: The run's writer and lease (None in tests that drive a pass by hand).
    writer: BatchWriter | None = None
    lease: Lease | None = None
    #: 1, or 2 for the writing pass of a ``reject-all`` run.
    number: int = 1
    #: Rows of the feed this pass has consumed (its batches committed), and its checkpoints' count.
    rows_read: int = 0
    checkpoints: int = 0
    #: Brand slug -> the spelling a pass that registers none gives it (the first it met).
    brands: dict[str, str] = field(default_factory=dict)

    def product(self, product_id: str) -> ProductState | None:
        bits = self.products.get(digest(product_id))
        return None if bits is None else ProductState.unpacked(bits)

    def readback_failed(self, what: str) -> None:
        self.readback_failures += 1
        if len(self.readback_samples) < MAX_SAMPLES:
            self.readback_samples.append(what)


@dataclass(frozen=True, slots=True)
class Delta:
    """What one batch adds to its pass (the part a checkpoint carries besides the counters)."""

    skus: Iterable[int] = ()
    gtins: Iterable[int] = ()
    products: Mapping[int, int] = field(default_factory=dict)
    styles: Mapping[int, int] = field(default_factory=dict)


def _ints(values: Iterable[int], code: str = "Q") -> str:
    return base64.b64encode(array(code, values).tobytes()).decode()


def _unints(text: str, code: str = "Q") -> array[int]:
    values = array(code)
    values.frombytes(base64.b64decode(text))
    return values


def encode_delta(state: Pass, delta: Delta, *, errors_stored: int, invalid_rows_stored: int, writes: int) -> bytes:
    """The checkpoint state of a batch: its additions, and the pass's counters as they will be after it."""
    product_keys = list(delta.products)
    style_keys = list(delta.styles)
    document = {
        "skus": _ints(delta.skus),
        "gtins": _ints(delta.gtins),
        "product_keys": _ints(product_keys),
        "product_bits": _ints((delta.products[key] for key in product_keys), "B"),
        "style_keys": _ints(style_keys),
        "style_values": _ints(delta.styles[key] for key in style_keys),
        "unknown": state.unknown,
        "denied_brands": sorted(state.denied_brands),
        "errors_stored": errors_stored,
        "invalid_rows_stored": invalid_rows_stored,
        "readback_failures": state.readback_failures,
        "readback_samples": state.readback_samples,
        "writes": writes,
        "brands": state.brands,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def apply_delta(state: Pass, encoded: bytes) -> None:
    """Replays one checkpoint's state onto ``state`` (checkpoints of a pass, in order)."""
    document: dict[str, Any] = json.loads(encoded)
    for key in _unints(document["skus"]):
        state.seen_skus.add(key)
    for key in _unints(document["gtins"]):
        state.seen_gtins.add(key)
    for key, bits in zip(_unints(document["product_keys"]), _unints(document["product_bits"], "B"), strict=True):
        state.products.put(key, bits)
    for key, value in zip(_unints(document["style_keys"]), _unints(document["style_values"]), strict=True):
        state.styles.put(key, value)
    state.unknown = dict(document["unknown"])
    state.denied_brands = set(document["denied_brands"])
    state.errors_stored = int(document["errors_stored"])
    state.invalid_rows_stored = int(document["invalid_rows_stored"])
    state.readback_failures = int(document["readback_failures"])
    state.readback_samples = list(document["readback_samples"])
    state.writes = int(document["writes"])
    state.brands = dict(document.get("brands", {}))


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a run taken over goes on: its checkpoints, grouped by pass."""

    checkpoints: Sequence[Checkpoint]

    @property
    def last(self) -> Checkpoint | None:
        return self.checkpoints[-1] if self.checkpoints else None

    @property
    def batch_size(self) -> int | None:
        return self.last.batch_size if self.last is not None else None

    def restore(self, state: Pass) -> Pass:
        """``state`` as pass ``state.number`` was after its last checkpoint (itself when it has none)."""
        mine = [cp for cp in self.checkpoints if cp.pass_number == state.number]
        for checkpoint in mine:
            apply_delta(state, checkpoint.state)
        if mine:
            state.counts = mine[-1].counts
            state.rows_read = mine[-1].rows_read
        state.checkpoints = self.last.number if self.last is not None else 0
        return state

    def reached(self, number: int) -> bool:
        """Whether pass ``number`` had begun (a checkpoint of it, or of a later pass, exists)."""
        return any(cp.pass_number >= number for cp in self.checkpoints)
