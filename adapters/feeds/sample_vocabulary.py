"""Word lists behind the sample SKU Genie feed.

Kept apart from the generator so that the generator reads as logic and the tables can grow
without pushing it past a readable size. Everything here is plain, ordered data (tuples,
never sets) so that the generator stays deterministic for a given seed.
"""

from __future__ import annotations

from typing import NamedTuple

from domain.enums import Category, FrameMaterial, FrameShape, Gender, RimType, UvProtection
from domain.feed import FEED_FIELDS

#: Feed field order used when writing rows: the order of the FEED.md field table.
FIELD_ORDER: tuple[str, ...] = FEED_FIELDS

# The FEED.md enums, in table order (the domain's enums are declared in that order).
CATEGORIES: tuple[str, ...] = tuple(c.value for c in Category)
FRAME_SHAPES: tuple[str, ...] = tuple(s.value for s in FrameShape)
FRAME_MATERIALS: tuple[str, ...] = tuple(m.value for m in FrameMaterial)
RIM_TYPES: tuple[str, ...] = tuple(r.value for r in RimType)
GENDERS: tuple[str, ...] = tuple(g.value for g in Gender)
UV_PROTECTIONS: tuple[str, ...] = tuple(u.value for u in UvProtection)

# Relative frequencies used when filling styles beyond the "every value once" guarantee.
SHAPE_WEIGHTS: tuple[int, ...] = (16, 12, 12, 8, 10, 9, 10, 6, 5, 5)
MATERIAL_WEIGHTS: tuple[int, ...] = (34, 16, 12, 8, 12, 6, 4, 3, 5)
RIM_WEIGHTS: tuple[int, ...] = (72, 17, 11)
GENDER_WEIGHTS: tuple[int, ...] = (24, 30, 36, 10)
#: Rimless frames are drilled mounts: only these materials make sense for them.
RIMLESS_MATERIALS: tuple[str, ...] = ("titanium", "metal", "stainless-steel", "tr90")
#: Lens height as a share of lens width, per shape (round lenses are nearly as tall as wide).
SHAPE_HEIGHT_RATIO: dict[str, float] = {
    "rectangle": 0.68,
    "square": 0.82,
    "round": 0.92,
    "oval": 0.76,
    "cat-eye": 0.74,
    "aviator": 0.86,
    "wayfarer": 0.78,
    "browline": 0.78,
    "butterfly": 0.88,
    "geometric": 0.84,
}


class Brand(NamedTuple):
    """A fictional label: how it spells style ids, what it charges and in which currency."""

    name: str
    style_format: str  # str.format pattern taking the style number ``n``
    currency: str
    base_cents: int  # entry price of an acetate optical frame
    price_ending: int  # cents every price ends with (0, 90 or 95)
    gs1_prefix: str  # 7-digit GS1 company prefix, so GTINs never collide across brands
    weight: int  # share of the styles


BRANDS: tuple[Brand, ...] = (
    Brand("Lumen Optics", "LO{n}", "USD", 12900, 0, "0850012", 18),
    Brand("Aurelia", "AU{n}", "EUR", 18900, 0, "8054321", 14),
    Brand("Nordvik", "nv-{n}", "EUR", 15900, 90, "7350101", 14),
    Brand("Casa Occhiali", "CO_{n}", "EUR", 21900, 0, "8033007", 12),
    Brand("Kōdo", "KD{n}", "USD", 24900, 0, "4589123", 10),
    Brand("Vista & Co", "VC{n}", "USD", 9900, 95, "0840222", 16),
    Brand("Brightwell", "BW-{n}", "USD", 13900, 0, "0812345", 10),
)


class Colour(NamedTuple):
    """A frame colour: the feed name, its swatch and the short code used inside SKUs."""

    name: str
    hex: str
    code: str


FRAME_COLOURS: tuple[Colour, ...] = (
    Colour("Black", "#1A1A1A", "BLK"),
    Colour("Matte Black", "#2B2B2B", "MBK"),
    Colour("Havana", "#6B3E26", "HAV"),
    Colour("Dark Tortoise", "#4A2C1D", "DTO"),
    Colour("Blonde Tortoise", "#C9A064", "BTO"),
    Colour("Crystal", "#E8EEF2", "CRY"),
    Colour("Grey Crystal", "#9AA3A8", "GCR"),
    Colour("Navy", "#1F2A44", "NVY"),
    Colour("Burgundy", "#6D1A36", "BRG"),
    Colour("Olive", "#5B5E34", "OLV"),
    Colour("Rose Crystal", "#E8B7B0", "RCR"),
    Colour("Gold", "#C8A951", "GLD"),
    Colour("Rose Gold", "#B76E79", "RGD"),
    Colour("Silver", "#C0C0C0", "SLV"),
    Colour("Gunmetal", "#53565A", "GUN"),
    Colour("Champagne", "#D8C7A2", "CHM"),
    Colour("Teal", "#2E6F73", "TEA"),
    Colour("Honey", "#B5782B", "HON"),
)
KIDS_COLOURS: tuple[Colour, ...] = (
    Colour("Sky Blue", "#6CB4EE", "SKY"),
    Colour("Coral", "#F2705C", "COR"),
    Colour("Mint", "#98D7C2", "MNT"),
    Colour("Lilac", "#B49CD8", "LIL"),
    Colour("Sunflower", "#F4C430", "SUN"),
    Colour("Navy", "#1F2A44", "NVY"),
)


class Lens(NamedTuple):
    """A sunglass lens tint: name suffix, SKU code suffix, ISO 12312-1 category, polarization."""

    name: str
    code: str
    category: int
    polarized: bool


SUN_LENSES: tuple[Lens, ...] = (
    Lens("Grey", "G", 3, False),
    Lens("Green", "N", 3, False),
    Lens("Brown", "B", 3, False),
    Lens("Grey Polarized", "GP", 3, True),
    Lens("Brown Polarized", "BP", 3, True),
    Lens("Grey Gradient", "GG", 2, False),
    Lens("Brown Gradient", "BG", 2, False),
    Lens("Rose Gradient", "RG", 1, False),
    Lens("Blue Mirror", "BM", 3, True),
    Lens("Silver Mirror", "SM", 4, False),
    Lens("Yellow", "Y", 1, False),
    Lens("Clear", "C", 0, False),
)
#: Draw weights for SUN_LENSES: categories 2-3 dominate, 0, 1 and 4 stay rare.
SUN_LENS_WEIGHTS: tuple[int, ...] = (14, 10, 10, 12, 9, 9, 7, 3, 4, 2, 2, 1)

MODEL_NAMES: tuple[str, ...] = (
    "Aster",
    "Bergen",
    "Como",
    "Delphi",
    "Elba",
    "Fjord",
    "Gallo",
    "Harbor",
    "Isola",
    "Juno",
    "Kestrel",
    "Lido",
    "Marlow",
    "Nara",
    "Orsa",
    "Porto",
    "Quill",
    "Riva",
    "Sora",
    "Tessa",
    "Umbra",
    "Vale",
    "Wren",
    "Yuki",
    "Zephyr",
    "Alder",
    "Birch",
    "Cedar",
    "Dune",
    "Ember",
    "Flint",
    "Grove",
    "Hollis",
    "Iris",
    "Jasper",
    "Kai",
    "Luca",
    "Mira",
    "Noor",
    "Otis",
    "Pia",
    "Reed",
    "Sage",
    "Tove",
    "Ulla",
    "Vera",
    "Wilder",
    "Arlo",
    "Bruno",
    "Clio",
)

TAGS: tuple[str, ...] = (
    "bestseller",
    "new-arrival",
    "lightweight",
    "classic",
    "retro",
    "vintage",
    "minimalist",
    "statement",
    "spring-hinges",
    "adjustable-nose-pads",
    "hypoallergenic",
    "eco",
    "handmade",
    "limited-edition",
    "blue-light-ready",
    "sport",
    "everyday",
    "travel",
)

MATERIAL_BLURBS: dict[str, str] = {
    "acetate": "hand-polished cellulose acetate",
    "metal": "slim monel metal",
    "titanium": "featherweight beta titanium",
    "stainless-steel": "surgical stainless steel",
    "tr90": "flexible TR90 nylon",
    "ultem": "aerospace-grade Ultem",
    "carbon-fiber": "woven carbon fiber",
    "wood": "sustainably sourced walnut",
    "mixed": "acetate fronts on metal temples",
}
