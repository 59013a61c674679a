"""The description policy applied by nh3 (ammonia): a real HTML5 parser, not a regex."""

from __future__ import annotations

import nh3

from domain.sanitising import DESCRIPTION_POLICY, HtmlPolicy, HtmlSanitizer


class Nh3Sanitizer(HtmlSanitizer):
    def sanitize(self, html: str, policy: HtmlPolicy = DESCRIPTION_POLICY) -> str:
        return nh3.clean(
            html,
            tags=set(policy.tags),
            attributes={tag: set(names) for tag, names in policy.attributes.items()},
            url_schemes=set(policy.url_schemes),
            clean_content_tags={"script", "style"},
            link_rel="noopener noreferrer nofollow",
            strip_comments=True,
        )
