"""The description HTML policy.

The policy (which tags, attributes and URL schemes survive) is a domain rule; the HTML parser
that enforces it is an adapter behind :class:`HtmlSanitizer`, injected where text is parsed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

MAX_DESCRIPTION_LENGTH = 10_000


@dataclass(frozen=True, slots=True)
class HtmlPolicy:
    tags: frozenset[str] = frozenset({"p", "br", "ul", "ol", "li", "strong", "em", "a"})
    attributes: dict[str, frozenset[str]] = field(default_factory=lambda: {"a": frozenset({"href"})})
    url_schemes: frozenset[str] = frozenset({"https"})


DESCRIPTION_POLICY = HtmlPolicy()


class HtmlSanitizer(Protocol):
    """Returns HTML that holds only what the policy allows; scripts and their content are dropped."""

    def sanitize(self, html: str, policy: HtmlPolicy = DESCRIPTION_POLICY) -> str: ...
