"""The ``BrandNames`` contract on every adapter: one spelling per brand slug, the first one stored."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.memory.brands import MemoryBrandNames
from adapters.mongo.brands import MongoBrandNames
from domain.ports import BrandNames
from domain.rbac import brand_key


@pytest.fixture(params=["memory", "mongo"])
def brands(request: pytest.FixtureRequest) -> BrandNames:
    if request.param == "memory":
        return MemoryBrandNames()
    return MongoBrandNames(request.getfixturevalue("mongo_catalog").database)  # emptied first


async def test_the_first_spelling_of_a_brand_is_its_spelling_from_then_on(brands: BrandNames) -> None:
    assert await brands.canonical(["Nordvik"]) == {"Nordvik": "Nordvik"}
    assert await brands.canonical(["nordvik", "NORDVIK", "Ray Ban"]) == {
        "nordvik": "Nordvik",
        "NORDVIK": "Nordvik",
        "Ray Ban": "Ray Ban",
    }
    assert await brands.canonical(["ray-ban"]) == {"ray-ban": "Ray Ban"}  # one slug: one brand
    assert await brands.canonical([]) == {}


async def test_a_lookup_that_must_not_register_gives_an_unknown_brand_back_as_it_is(brands: BrandNames) -> None:
    assert await brands.canonical(["lindberg"], register=False) == {"lindberg": "lindberg"}
    assert await brands.canonical(["Lindberg"]) == {"Lindberg": "Lindberg"}  # nothing was registered before
    assert await brands.canonical(["LINDBERG"], register=False) == {"LINDBERG": "Lindberg"}


async def test_racing_first_writers_all_get_the_one_spelling_that_won(mongo_catalog: Any) -> None:
    """Separate processes' registries (no shared memory), writing the same new brand at once; many
    rounds, because a lost race (an upsert refused while the winner's insert is not yet visible)
    happens only in some of them."""
    for round_ in range(30):
        spellings = [f"{s}{round_}" for s in ("Kodo", "kodo", "KODO", "KoDo", "kOdO", "Kodo ")]
        spellings[-1] = f"Kodo{round_} "
        registries = [MongoBrandNames(mongo_catalog.database) for _ in spellings]
        answers = await asyncio.gather(*(r.canonical([s]) for r, s in zip(registries, spellings, strict=True)))
        winners = {answer[spelling] for answer, spelling in zip(answers, spellings, strict=True)}
        assert len(winners) == 1 and winners <= set(spellings), (round_, answers)


@settings(max_examples=50)
@given(st.lists(st.sampled_from(["Nordvik", "nordvik", "NORDVIK", "Ray-Ban", "ray ban", "Kōdo", "kodo"]), min_size=1))
def test_every_spelling_of_a_slug_maps_to_the_first_one_written(sequence: list[str]) -> None:
    brands = MemoryBrandNames()
    first: dict[str, str] = {}
    for spelling in sequence:
        first.setdefault(brand_key(spelling), spelling)
        answer = asyncio.run(brands.canonical([spelling]))
        assert answer == {spelling: first[brand_key(spelling)]}
