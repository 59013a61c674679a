"""Money: a Decimal amount and an ISO 4217 currency; never a float anywhere."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from domain.errors import ErrorCode, RuleViolation

MAX_AMOUNT = Decimal("100000")
_CURRENCY = re.compile(r"[A-Z]{3}")


def parse_currency(raw: str) -> str:
    currency = raw.strip().upper()
    if not _CURRENCY.fullmatch(currency):
        raise RuleViolation(ErrorCode.INVALID_VALUE, "a currency is an ISO 4217 alpha-3 code such as EUR")
    return currency


def _decimal_places(amount: Decimal) -> int:
    """Significant decimal places, counted on the digits themselves (no context, no rounding)."""
    _sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + min(trailing_zeros, max(0, -exponent))))


def parse_amount(raw: object) -> Decimal:
    """A positive amount with at most 2 decimals, from a JSON number, a string or a Decimal.

    Floats are accepted only through their shortest text form (``163.1`` reads as ``163.1``), so
    no binary rounding error can ever reach storage.
    """
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        raise RuleViolation(ErrorCode.INVALID_VALUE, "a price is a decimal number or a string")
    text = raw.strip() if isinstance(raw, str) else repr(raw) if isinstance(raw, float) else str(raw)
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise RuleViolation(ErrorCode.INVALID_VALUE, "a price is a decimal number such as 163.00") from None
    if not amount.is_finite():
        raise RuleViolation(ErrorCode.INVALID_VALUE, "a price is a finite decimal number")
    if _decimal_places(amount) > 2:
        raise RuleViolation(ErrorCode.INVALID_VALUE, "a price has at most 2 decimal places")
    if amount <= 0 or amount > MAX_AMOUNT:
        raise RuleViolation(ErrorCode.OUT_OF_RANGE, "a price is above 0 and at most 100000")
    return amount.quantize(Decimal("0.01"))


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    @classmethod
    def parse(cls, amount: object, currency: str) -> Money:
        return cls(parse_amount(amount), parse_currency(currency))

    def to_json(self) -> dict[str, str]:
        """The amount as a string with exactly 2 decimals, as it is printed on a price tag."""
        return {"amount": f"{self.amount:.2f}", "currency": self.currency}
