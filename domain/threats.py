"""Operator-injection detection: the shapes a MongoDB query or update could be smuggled in.

Detection refuses; it never rewrites input. Every structured input (API bodies, feed rows, query
strings) passes through here before any rule looks at its values.

A document (an API body, a feed row) is refused for its *keys* (``$``-keys and dotted keys, at any
depth) and for nesting deeper than any valid input; its string *values* are data, checked by the
field rules the feed and the API share (FEED.md: one rule set), so a colour named ``$where`` stored
by a feed can be written back through the API. Nothing ever evaluates a stored string: values are
bound as BSON strings, never spliced into a query. Query strings are screened harder
(``scan_query``): their values become filters, so operator-shaped and JavaScript-shaped values are
refused there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.errors import ErrorCode, FieldError

#: Levels of containers past any valid body or feed row (a product has 4: itself, its variants, a
#: variant, its price).
MAX_DEPTH = 8
NESTED_TOO_DEEPLY = "the document is nested too deeply"
#: Server-side JavaScript: MongoDB's JS operators named in a value, or a function literal.
_JS_MARKERS = re.compile(r"\$(where|function|accumulator)\b|\bfunction\s*\([^)]*\)\s*\{", re.IGNORECASE)
#: ``brand[$ne]=x`` or ``a.b=x`` in a query string: how operators are smuggled through forms.
_QUERY_KEY_OPERATOR = re.compile(r"\[\s*\$|^\$|\.")


class ThreatKind(StrEnum):
    OPERATOR_INJECTION = "operator_injection"
    SERVER_SIDE_JS = "server_side_js"
    MARKUP = "markup"
    EXCESSIVE_NESTING = "excessive_nesting"


@dataclass(frozen=True, slots=True)
class Threat:
    kind: ThreatKind
    field: str | None
    message: str

    def as_error(self) -> FieldError:
        return FieldError(self.field, ErrorCode.THREAT_DETECTED, self.message)


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
    """Every key that starts with '$' or holds a '.', at any depth, named by its path; and a
    document whose containers (objects, arrays) nest more than ``MAX_DEPTH`` levels."""
    if not isinstance(value, Mapping | list):
        return []  # scalars hold no keys
    if depth >= MAX_DEPTH:
        return [too_deep(path or None)]
    found: list[FieldError] = []
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
            elif isinstance(item, Mapping | list):
                found.extend(operator_keys(item, _join(path, key_text), depth + 1))
    else:
        for index, item in enumerate(value):
            if isinstance(item, Mapping | list):
                found.extend(operator_keys(item, f"{path}[{index}]", depth + 1))
    return found


def too_deep(path: str | None = None) -> FieldError:
    """The error of a document nested past ``MAX_DEPTH`` (or too deep even to be decoded)."""
    return FieldError(path, ErrorCode.THREAT_DETECTED, NESTED_TOO_DEEPLY)


def kind_of(error: FieldError) -> ThreatKind:
    """The kind of a threat a parser reported as a field error (for the audit record and metric)."""
    if error.message == NESTED_TOO_DEEPLY:
        return ThreatKind.EXCESSIVE_NESTING
    if "markup" in error.message:
        return ThreatKind.MARKUP
    return ThreatKind.OPERATOR_INJECTION
