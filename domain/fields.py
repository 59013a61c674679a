"""Typed readers for untrusted field values, shared by the API parser and the feed parser.

Each reader either returns a clean value or records one FieldError and returns None, so that a
record reports all its problems at once instead of stopping at the first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, TypeVar

from domain.errors import ErrorCode, FieldError, RuleViolation

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)
_INT = re.compile(r"[+-]?[0-9]{1,9}")
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})


class FieldReader:
    """Reads fields of one record; ``name`` maps a canonical key to the caller's field path."""

    def __init__(self, data: Mapping[str, Any], name: Callable[[str], str] = str) -> None:
        self.data = data
        self.name = name
        self.errors: list[FieldError] = []

    def fail(self, key: str, code: str, message: str) -> None:
        self.errors.append(FieldError(self.name(key), code, message))

    def present(self, key: str) -> bool:
        value = self.data.get(key)
        return value is not None and value != ""

    def raw(self, key: str, required: bool) -> Any:
        if not self.present(key):
            if required:
                self.fail(key, ErrorCode.MISSING_FIELD, "is required")
            return None
        value = self.data[key]
        if isinstance(value, Mapping):
            self.fail(key, ErrorCode.THREAT_DETECTED, "an object is not accepted where a value belongs")
            return None
        return value

    def apply(self, key: str, parse: Callable[[Any], T], value: Any) -> T | None:
        try:
            return parse(value)
        except RuleViolation as violation:
            self.fail(key, violation.code, violation.message)
            return None

    def string(self, key: str, parse: Callable[[str], T], required: bool = True) -> T | None:
        value = self.raw(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(key, ErrorCode.INVALID_VALUE, "must be a string")
            return None
        return self.apply(key, parse, value)

    def integer(self, key: str, bounds: tuple[int, int] | None, required: bool = True) -> int | None:
        value = self.raw(key, required)
        if value is None:
            return None
        if isinstance(value, str) and _INT.fullmatch(value.strip()):
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, ErrorCode.INVALID_VALUE, "must be a whole number")
            return None
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            self.fail(key, ErrorCode.OUT_OF_RANGE, f"must be {bounds[0]}-{bounds[1]}")
            return None
        return value

    def boolean(self, key: str) -> bool | None:
        value = self.raw(key, required=False)
        if value is None or isinstance(value, bool):
            return value
        text = str(value).strip().lower() if isinstance(value, str | int) else ""
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        self.fail(key, ErrorCode.INVALID_VALUE, "must be true or false")
        return None

    def choice(self, key: str, enum: type[E], required: bool = True) -> E | None:
        value = self.raw(key, required)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                return enum(value.strip())
            except ValueError:
                pass
        allowed = ", ".join(member.value for member in enum)
        self.fail(key, ErrorCode.INVALID_VALUE, f"must be one of: {allowed}")
        return None

    def string_list(self, key: str, parse: Callable[[str], T], max_items: int) -> tuple[T, ...]:
        value = self.data.get(key)
        if value is None or value == "":
            return ()
        if isinstance(value, str):
            value = [part for part in value.split("|") if part.strip()]
        if not isinstance(value, list):
            code = ErrorCode.THREAT_DETECTED if isinstance(value, Mapping) else ErrorCode.INVALID_VALUE
            self.fail(key, code, "must be a list of strings")
            return ()
        if len(value) > max_items:
            self.fail(key, ErrorCode.OUT_OF_RANGE, f"holds at most {max_items} items")
            return ()
        items: list[T] = []
        for item in value:
            if not isinstance(item, str):
                code = ErrorCode.THREAT_DETECTED if isinstance(item, Mapping) else ErrorCode.INVALID_VALUE
                self.fail(key, code, "must be a list of strings")
                return ()
            parsed = self.apply(key, parse, item)
            if parsed is None:
                return ()
            if parsed not in items:
                items.append(parsed)
        return tuple(items)
