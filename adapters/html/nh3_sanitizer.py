"""The description policy applied by nh3 (ammonia): a real HTML5 parser, not a regex."""

from __future__ import annotations

from typing import Any

import nh3

from domain.sanitising import DESCRIPTION_POLICY, HtmlPolicy, HtmlSanitizer

#: Passes to reach a fixed point: dropping a tag can leave markup that parses differently again.
MAX_PASSES = 4
RECENT = 256


def _absolute_urls_only(policy: HtmlPolicy) -> Any:
    """ammonia lets relative URLs through; ``//host/x`` and ``\\host`` would reach other hosts."""
    prefixes = tuple(f"{scheme}://" for scheme in policy.url_schemes)

    def keep(tag: str, attribute: str, value: str) -> str | None:
        if attribute in ("href", "src"):
            return value if value.strip().lower().startswith(prefixes) else None
        return value

    return keep


class Nh3Sanitizer(HtmlSanitizer):
    def _once(self, html: str, policy: HtmlPolicy) -> str:
        return nh3.clean(
            html,
            tags=set(policy.tags),
            attributes={tag: set(names) for tag, names in policy.attributes.items()},
            url_schemes=set(policy.url_schemes),
            attribute_filter=_absolute_urls_only(policy),
            clean_content_tags={"script", "style"},
            link_rel="noopener noreferrer nofollow",
            strip_comments=True,
        )

    def __init__(self) -> None:
        #: Feeds repeat a style's description on every row: the same input is cleaned once.
        self._recent: dict[str, str] = {}

    def sanitize(self, html: str, policy: HtmlPolicy = DESCRIPTION_POLICY) -> str:
        """Idempotent: stored descriptions come back unchanged when they are sent again."""
        if policy is not DESCRIPTION_POLICY:
            return self._sanitize(html, policy)
        cleaned = self._recent.get(html)
        if cleaned is None:
            if len(self._recent) >= RECENT:
                self._recent.clear()
            cleaned = self._recent[html] = self._sanitize(html, policy)
        return cleaned

    def _sanitize(self, html: str, policy: HtmlPolicy) -> str:
        current = self._once(html, policy)
        for _ in range(MAX_PASSES):
            again = self._once(current, policy)
            if again == current:
                return current
            current = again
        return current
