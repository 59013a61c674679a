"""SKU, GTIN, style id and product id: the identities of the catalog."""

from __future__ import annotations

import re
import unicodedata

from domain.errors import ErrorCode, RuleViolation

_SKU = re.compile(r"[A-Z0-9][A-Z0-9-]{2,39}")
_STYLE = re.compile(r"[A-Za-z0-9_-]{1,40}")
_GTIN_LENGTHS = frozenset({8, 12, 13, 14})


def normalise_sku(raw: str) -> str:
    """Trimmed and upper-cased, as SKUs are compared everywhere (paths, feeds, storage)."""
    return raw.strip().upper()


def parse_sku(raw: str) -> str:
    sku = normalise_sku(raw)
    # ASCII is checked on the raw text: upper() maps some other letters into A-Z ("ſ" -> "S").
    if not raw.isascii() or not _SKU.fullmatch(sku):
        raise RuleViolation(
            ErrorCode.INVALID_VALUE,
            "a SKU is 3-40 characters of A-Z, 0-9 and '-', starting with a letter or digit",
        )
    return sku


def parse_style_id(raw: str) -> str:
    style = raw.strip()
    if not _STYLE.fullmatch(style):
        raise RuleViolation(ErrorCode.INVALID_VALUE, "a style id is 1-40 characters of A-Z, a-z, 0-9, '-' and '_'")
    return style


def gtin_check_digit(data: str) -> int:
    """GS1 check digit of the data digits: weights 3,1,3,1… from the rightmost data digit."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(data)))
    return (10 - total % 10) % 10


def is_valid_gtin(raw: str) -> bool:
    return raw.isascii() and raw.isdigit() and len(raw) in _GTIN_LENGTHS and gtin_check_digit(raw[:-1]) == int(raw[-1])


def parse_gtin(raw: str) -> str:
    """The 14-digit normal form (GTIN-14), so that one trade item has one key whatever its length."""
    gtin = raw.strip()
    if not is_valid_gtin(gtin):
        raise RuleViolation(ErrorCode.INVALID_GTIN, "a GTIN is 8, 12, 13 or 14 digits with a valid GS1 check digit")
    return gtin.zfill(14)


def slugify(text: str) -> str:
    """Lower-case ASCII; every run of other characters becomes one '-'; trimmed of '-'."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    ascii_text = folded.encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")


def product_id_for(brand: str, style_id: str) -> str:
    return slugify(f"{brand}-{style_id}")
