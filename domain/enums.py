"""Closed vocabularies of FEED.md; the API and the feed accept exactly these values."""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    EYEGLASSES = "eyeglasses"
    SUNGLASSES = "sunglasses"


class FrameShape(StrEnum):
    RECTANGLE = "rectangle"
    SQUARE = "square"
    ROUND = "round"
    OVAL = "oval"
    CAT_EYE = "cat-eye"
    AVIATOR = "aviator"
    WAYFARER = "wayfarer"
    BROWLINE = "browline"
    BUTTERFLY = "butterfly"
    GEOMETRIC = "geometric"


class FrameMaterial(StrEnum):
    ACETATE = "acetate"
    METAL = "metal"
    TITANIUM = "titanium"
    STAINLESS_STEEL = "stainless-steel"
    TR90 = "tr90"
    ULTEM = "ultem"
    CARBON_FIBER = "carbon-fiber"
    WOOD = "wood"
    MIXED = "mixed"


class RimType(StrEnum):
    FULL_RIM = "full-rim"
    SEMI_RIMLESS = "semi-rimless"
    RIMLESS = "rimless"


class Gender(StrEnum):
    MEN = "men"
    WOMEN = "women"
    UNISEX = "unisex"
    KIDS = "kids"


class UvProtection(StrEnum):
    UV400 = "UV400"
    UV380 = "UV380"


class SizeClass(StrEnum):
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


class FaceShape(StrEnum):
    DIAMOND = "diamond"
    HEART = "heart"
    OBLONG = "oblong"
    OVAL = "oval"
    ROUND = "round"
    SQUARE = "square"


class ProductStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


_S, _O, _H, _D, _R, _L = (
    FaceShape.SQUARE,
    FaceShape.OVAL,
    FaceShape.HEART,
    FaceShape.DIAMOND,
    FaceShape.ROUND,
    FaceShape.OBLONG,
)

#: Which face shapes a frame shape is recommended for (FEED.md, derived fields).
FACE_SHAPES_BY_FRAME: dict[FrameShape, tuple[FaceShape, ...]] = {
    FrameShape.RECTANGLE: (_R, _O),
    FrameShape.SQUARE: (_R, _O),
    FrameShape.GEOMETRIC: (_R, _O),
    FrameShape.WAYFARER: (_R, _O, _H),
    FrameShape.ROUND: (_S, _O),
    FrameShape.OVAL: (_S, _D, _O),
    FrameShape.CAT_EYE: (_D, _O),
    FrameShape.BROWLINE: (_D, _L, _O),
    FrameShape.AVIATOR: (_H, _O, _S),
    FrameShape.BUTTERFLY: (_D, _L, _O),
}


def face_shapes_for(shape: FrameShape) -> tuple[FaceShape, ...]:
    """Recommended face shapes, sorted alphabetically as they are stored."""
    return tuple(sorted(FACE_SHAPES_BY_FRAME[shape]))
