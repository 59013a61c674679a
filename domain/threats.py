"""Operator-injection detection: the shapes a MongoDB query or update could be smuggled in.

Detection refuses; it never rewrites input. Every structured input (API bodies, feed rows, query
strings) passes through here before any rule looks at its values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.errors import ErrorCode, FieldError

MAX_DEPTH = 8
#: Server-side JavaScript: MongoDB's JS operators named in a value, or a function literal.
_JS_MARKERS = re.compile(r"\$(where|function|accumulator)\b|\bfunction\s*\([^)]*\)\s*\{", re.IGNORECASE)
#: ``brand[$ne]=x`` or ``a.b=x`` in a query string: how operators are smuggled through forms.
_QUERY_KEY_OPERATOR = re.compile(r"\[\s*\$|^\$|\.")


class ThreatKind(StrEnum):
    OPERATOR_INJECTION = "operator_injection"
    SERVER_SIDE_JS = "server_side_js"
    MARKUP = "markup"


@dataclass(frozen=True, slots=True)
class Threat:
    kind: ThreatKind
    field: str | None
    message: str

    def as_error(self) -> FieldError:
        return FieldError(self.field, ErrorCode.THREAT_DETECTED, self.message)


def _strings(value: Any, path: str, depth: int = 0) -> Iterable[tuple[str, str]]:
    if depth > MAX_DEPTH:
        return
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, _join(path, str(key)), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]", depth + 1)


def scan_document(value: Any) -> list[Threat]:
    """Operator keys at any depth and server-side JavaScript in any string value."""
    threats = [Threat(ThreatKind.OPERATOR_INJECTION, e.field, e.message) for e in operator_keys(value)]
    for path, text in _strings(value, ""):
        if _JS_MARKERS.search(text):
            threats.append(Threat(ThreatKind.SERVER_SIDE_JS, path or None, "server-side JavaScript is not accepted"))
    return threats


def scan_query(items: Iterable[tuple[str, str]]) -> list[Threat]:
    """Query strings: operator-shaped keys (``brand[$ne]``, ``$where``, ``a.b``) and JS values."""
    threats: list[Threat] = []
    for key, value in items:
        if _QUERY_KEY_OPERATOR.search(key):
            threats.append(Threat(ThreatKind.OPERATOR_INJECTION, key, "operator-shaped parameters are not accepted"))
        if _JS_MARKERS.search(value) or value.lstrip().startswith(('{"$', "{'$", "{$")):
            threats.append(
                Threat(
                    ThreatKind.SERVER_SIDE_JS if _JS_MARKERS.search(value) else ThreatKind.OPERATOR_INJECTION,
                    key,
                    "operator-shaped values are not accepted",
                )
            )
    return threats


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
            elif isinstance(item, Mapping | list):  # scalars hold no keys: no call for them
                found.extend(operator_keys(item, _join(path, key_text), depth + 1))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(operator_keys(item, f"{path}[{index}]", depth + 1))
    return found
