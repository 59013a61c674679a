"""What every ``BulkCatalog`` adapter computes the same way, from entities alone.

The memory twin applies these rules to its dicts; MongoDB uses them to compute the fingerprint of
a document written before the hashes were stored, and to name the write that made a batch fail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from domain.errors import VersionMismatch
from domain.feed_rows import fields_hash, variant_hash
from domain.ports import Fingerprint, ProductWrite
from domain.product import Product


def fingerprint_of(product: Product) -> Fingerprint:
    return Fingerprint(
        product_id=product.product_id,
        version=product.version,
        fields_hash=fields_hash(product.draft),
        variant_hashes={variant.sku: variant_hash(variant) for variant in product.variants},
    )


def expected_version(write: ProductWrite) -> int | None:
    """The stored version a write requires: None for a creation (nothing may be stored)."""
    return write.before.version if write.before is not None else None


def first_stale(writes: Sequence[ProductWrite], stored: Mapping[str, int]) -> VersionMismatch | None:
    """The first write (in order) whose product is not at the version it expects.

    ``stored`` holds the stored versions before the batch; each write's outcome is applied in
    turn, so a batch may write the same product twice.
    """
    versions = dict(stored)
    for write in writes:
        product_id = write.product_id
        expected, actual = expected_version(write), versions.get(product_id)
        if expected != actual:
            return VersionMismatch(product_id, expected or 0, actual)
        if write.after is not None:
            versions[product_id] = write.after.version
        else:
            versions.pop(product_id, None)
    return None


def owner_in_batch(writes: Sequence[ProductWrite], attribute: str, value: str) -> str | None:
    """Which product of ``writes`` holds the SKU (``attribute`` "skus") or GTIN ("gtins") after them."""
    owner: str | None = None
    for write in writes:
        if write.before is not None and value in getattr(write.before, attribute):
            owner = None
        if write.after is not None and value in getattr(write.after, attribute):
            owner = write.after.product_id
    return owner
