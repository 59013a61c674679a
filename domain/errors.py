"""Domain errors.

Every error that can be blamed on input names the field at fault, a stable machine code and a
message for humans, so that the API, the CLI and the feed report all say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    """The codes of FEED.md; the API and the feed share them."""

    MALFORMED_ROW = "malformed_row"
    MISSING_FIELD = "missing_field"
    INVALID_VALUE = "invalid_value"
    OUT_OF_RANGE = "out_of_range"
    INVALID_GTIN = "invalid_gtin"
    DUPLICATE_SKU = "duplicate_sku"
    DUPLICATE_GTIN = "duplicate_gtin"
    SKU_CONFLICT = "sku_conflict"
    GTIN_CONFLICT = "gtin_conflict"
    STYLE_CONFLICT = "style_conflict"
    THREAT_DETECTED = "threat_detected"
    PRODUCT_EXISTS = "product_exists"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One precise complaint about one field (``field`` is None for whole-record errors)."""

    field: str | None
    code: str
    message: str


class RuleViolation(ValueError):
    """Raised by value objects; the caller knows the field and turns it into a FieldError."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    def __init__(self, message: str, errors: tuple[FieldError, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


class ValidationFailed(DomainError):
    """Input broke one or more rules; nothing was stored."""


class ThreatDetected(ValidationFailed):
    """Input carried an injection attempt; refused, never rewritten."""


class NotFound(DomainError):
    """The thing asked for does not exist (a product, a run, a store)."""


class Conflict(DomainError):
    """The request contradicts the stored state (something exists, or changed since)."""


class ProductNotFound(NotFound):
    """No product with that id or SKU."""


class ProductConflict(Conflict):
    """The product, one of its SKUs or one of its GTINs already belongs to the catalog."""


class AccessDenied(DomainError):
    """The caller is known but no role grants what it asked for (or the brand is out of scope)."""


class VersionMismatch(DomainError):
    """The caller's version is not the stored one: somebody else wrote first."""

    def __init__(self, product_id: str, expected: int, actual: int | None) -> None:
        super().__init__(
            f"product {product_id!r} is at version {actual}, not {expected}"
            if actual is not None
            else f"product {product_id!r} changed while it was being written"
        )
        self.expected = expected
        self.actual = actual


def invalid(message: str, errors: tuple[FieldError, ...]) -> ValidationFailed:
    """ValidationFailed, or ThreatDetected when any error is a detected threat (so it is reported)."""
    if any(error.code == ErrorCode.THREAT_DETECTED for error in errors):
        return ThreatDetected(message, errors)
    return ValidationFailed(message, errors)
