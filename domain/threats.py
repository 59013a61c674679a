"""Operator-injection detection: the shapes a MongoDB query or update could be smuggled in.

Detection refuses; it never rewrites input. Every structured input (API bodies, feed rows, query
strings) passes through here before any rule looks at its values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.errors import ErrorCode, FieldError

MAX_DEPTH = 8


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def operator_keys(value: Any, path: str = "", depth: int = 0) -> list[FieldError]:
    """Every key that starts with '$' or holds a '.', at any depth, named by its path."""
    found: list[FieldError] = []
    if depth > MAX_DEPTH:
        return [FieldError(path or None, ErrorCode.THREAT_DETECTED, "the document is nested too deeply")]
    if isinstance(value, Mapping):
        for key, item in value.items():
            key_text = str(key)
            if key_text.startswith("$") or "." in key_text:
                found.append(
                    FieldError(
                        _join(path, key_text),
                        ErrorCode.THREAT_DETECTED,
                        "keys starting with '$' or containing '.' are not accepted",
                    )
                )
            else:
                found.extend(operator_keys(item, _join(path, key_text), depth + 1))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(operator_keys(item, f"{path}[{index}]", depth + 1))
    return found
