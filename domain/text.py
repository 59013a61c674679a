"""Plain-text rules: names carry no markup and no control characters.

Plain text is refused, never rewritten: a name with ``<`` in it is an error for the caller to fix,
because silently changing what a supplier sent hides the problem upstream.
"""

from __future__ import annotations

import re
import unicodedata

from domain.errors import ErrorCode, RuleViolation

_TAG = re.compile(r"[a-z0-9-]{1,30}")
_HEX = re.compile(r"#[0-9A-F]{6}")
_WORD = re.compile(r"[^\W_]+")
_LETTER_DIGIT_RUN = re.compile(r"[^\W\d_]+|\d+")
_URL_REFUSED = re.compile(r"[\s<>\"']")
MAX_TAGS = 20
#: Long enough for any SKU (40 characters), so a typed SKU prefix is always found.
MAX_PREFIX = 40
MAX_IMAGES = 10


def has_control_characters(text: str) -> bool:
    # Fast path: a printable string holds none of these categories (isprintable() is False for
    # every one of them); only the rare other strings are checked character by character.
    if text.isprintable():
        return False
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in text)


def parse_plain_text(raw: str, max_length: int) -> str:
    text = raw.strip()
    if not 1 <= len(text) <= max_length:
        raise RuleViolation(ErrorCode.OUT_OF_RANGE, f"must be 1-{max_length} characters")
    if "<" in text or ">" in text:
        raise RuleViolation(ErrorCode.THREAT_DETECTED, "markup ('<' or '>') is not allowed in plain text")
    if has_control_characters(text):
        raise RuleViolation(ErrorCode.INVALID_VALUE, "control characters are not allowed")
    return text


def parse_tag(raw: str) -> str:
    tag = raw.strip().lower()
    if not _TAG.fullmatch(tag):
        raise RuleViolation(ErrorCode.INVALID_VALUE, "a tag is 1-30 characters of a-z, 0-9 and '-'")
    return tag


def parse_color_hex(raw: str) -> str:
    color = raw.strip().upper()
    if not _HEX.fullmatch(color):
        raise RuleViolation(ErrorCode.INVALID_VALUE, "a colour is #RRGGBB")
    return color


def parse_image_url(raw: str) -> str:
    url = raw.strip()
    if (
        not url.lower().startswith("https://")
        or len(url) <= len("https://")
        or len(url) > 2048
        or _URL_REFUSED.search(url)
        or has_control_characters(url)
    ):
        raise RuleViolation(ErrorCode.INVALID_VALUE, "an image URL is an https:// URL")
    return url


def keywords_of(*texts: str) -> set[str]:
    """Search keys: lower-cased, accent-free runs of letters and digits, plus their prefixes.

    Prefixes let ``q=club`` find "Clubmaster" with an exact index
    lookup, without ``$text`` (not on every server) and without a regex built from user input.
    """
    words: set[str] = set()
    for text in texts:
        for word in search_terms(text):
            words.add(word)
            # "rb3016" is also found as "3016": letter/digit runs are words of their own.
            words.update(_LETTER_DIGIT_RUN.findall(word))
    keys: set[str] = set()
    for word in words:
        keys.add(word)
        keys.update(word[:n] for n in range(1, min(len(word), MAX_PREFIX + 1)))
    return keys


def search_terms(text: str) -> list[str]:
    """The words of a query or of a searchable field, normalised the same way: case-folded,
    accents removed, split on everything that is not a letter or a digit."""
    decomposed = unicodedata.normalize("NFKD", text)
    cleaned = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return _WORD.findall(unicodedata.normalize("NFKD", cleaned))
