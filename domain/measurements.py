"""Frame measurements in the ISO 8624 boxing system, and what is derived from them."""

from __future__ import annotations

from dataclasses import dataclass

from domain.enums import SizeClass
from domain.errors import ErrorCode, RuleViolation

LENS_WIDTH = (40, 62)
BRIDGE_WIDTH = (14, 24)
TEMPLE_LENGTH = (120, 155)
LENS_HEIGHT = (20, 60)
#: Below this lens height a progressive lens has no room for its corridor.
PROGRESSIVE_MIN_LENS_HEIGHT = 30


def check_range(value: int, bounds: tuple[int, int], what: str) -> int:
    low, high = bounds
    if not low <= value <= high:
        raise RuleViolation(ErrorCode.OUT_OF_RANGE, f"{what} is {low}-{high} mm")
    return value


def size_class_for(lens_width_mm: int) -> SizeClass:
    if lens_width_mm <= 50:
        return SizeClass.SMALL
    if lens_width_mm <= 54:
        return SizeClass.MEDIUM
    return SizeClass.LARGE


@dataclass(frozen=True, slots=True)
class FrameMeasurements:
    lens_width_mm: int
    bridge_width_mm: int
    temple_length_mm: int
    lens_height_mm: int | None = None

    @property
    def size_label(self) -> str:
        """As printed on the temple: ``51□21-145``."""
        return f"{self.lens_width_mm}\u25a1{self.bridge_width_mm}-{self.temple_length_mm}"

    @property
    def size_class(self) -> SizeClass:
        return size_class_for(self.lens_width_mm)
