"""Product history: who changed what, when, and through which channel."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.product import Product
from domain.snapshot import product_to_dict

API_SOURCE = "api"
_BOOKKEEPING = frozenset({"version", "updated_at", "created_at"})


def ingestion_source(run_id: str) -> str:
    return f"ingestion:{run_id}"


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    product_id: str
    version: int
    at: datetime
    actor: str
    source: str
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The product before this change, kept by ingestion so that a run can be undone exactly
    #: (None for a creation, and for API changes, which do not need it).
    previous: Product | None = None
    #: True for the entry a rollback writes: it restores the state before the run named by ``source``.
    reverts: bool = False


def _flatten(product: Product | None) -> dict[str, Any]:
    if product is None:
        return {}
    data = product_to_dict(product)
    flat = {key: value for key, value in data.items() if key not in _BOOKKEEPING and key != "variants"}
    for variant in data["variants"]:
        for key, value in variant.items():
            if key != "sku":
                flat[f"variants[{variant['sku']}].{key}"] = value
    return flat


def changes_between(before: Product | None, after: Product) -> dict[str, dict[str, Any]]:
    """Field-by-field ``{"from", "to"}``; a creation lists every field that has a value."""
    old, new = _flatten(before), _flatten(after)
    return {
        key: {"from": old.get(key), "to": new.get(key)}
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    }


def record_change(
    before: Product | None, after: Product, actor: str, source: str, keep_previous: bool = False, reverts: bool = False
) -> HistoryEntry:
    return HistoryEntry(
        product_id=after.product_id,
        version=after.version,
        at=after.updated_at,
        actor=actor,
        source=source,
        changes=changes_between(before, after),
        previous=before if keep_previous else None,
        reverts=reverts,
    )
