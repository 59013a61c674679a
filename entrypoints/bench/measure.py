"""What every measurement shares: the result record, percentiles, and side-by-side sampling.

Ours and the baseline are always measured in the same run, on the same server and data, and
latency samples are taken in alternating blocks (ours, baseline, baseline, ours, …), so a burst
of machine noise lands on both sides instead of skewing the ratio.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

#: The product's goals per result (ratio = ours ÷ baseline, lower is better): docs/performance.md.
TARGETS: dict[str, float] = {
    "ingest.cold": 1.3,
    "ingest.unchanged": 0.3,
    "ingest.memory_growth": 1.2,
    "read.sku.uncached": 1.3,
    "read.sku.cached": 1.3,
    "search.filtered": 1.3,
    "auth.verify": 1.3,
    "http.get_sku": 2.0,
}
REQUIRED = tuple(TARGETS)
#: Further results, with no target of their own, each reported right after the one it varies.
VARIANTS = {"ingest.two_workers": "ingest.cold", "read.sku.cached.audit_database": "read.sku.cached"}


def _report_order() -> tuple[str, ...]:
    names: list[str] = []
    for name in REQUIRED:
        names += [name, *(variant for variant, of in VARIANTS.items() if of == name)]
    return tuple(names)


ORDER = _report_order()
#: Samples per side even when the time budget ran out.
MIN_SAMPLES = 30
T = TypeVar("T")


@dataclass(frozen=True)
class Result:
    name: str
    ours: float
    baseline: float
    unit: str
    detail: str = ""

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline if self.baseline else float("inf")

    @property
    def target(self) -> float | None:
        return TARGETS.get(self.name)

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "ours": round(self.ours, 3),
            "baseline": round(self.baseline, 3),
            "unit": self.unit,
            "ratio": round(self.ratio, 3),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does; ``--quick`` and the hidden overrides pick these."""

    rows: int
    #: Latency samples per side at most (see ``budget``), after ``warmup`` calls per side.
    samples: int
    warmup: int
    #: Samples per block of the alternation.
    block: int
    #: Seconds of sampling per latency result, all its sides together; then it stops at a turn's end.
    budget: float
    #: Cold/unchanged ingestion rounds (each side once per round, the order alternating).
    rounds: int
    #: Feed sizes of the cost curve (fresh processes); the memory growth uses rows and 10·rows.
    curve: tuple[int, ...]
    growth: int = 10

    @classmethod
    def quick(cls, rows: int | None = None, samples: int | None = None) -> Sizes:
        n = rows or 3_000
        s = samples or 1_000
        return cls(rows=n, samples=s, warmup=min(20, s), block=min(20, s), budget=4.0, rounds=1, curve=(n,))

    @classmethod
    def full(cls, rows: int | None = None, samples: int | None = None) -> Sizes:
        n = rows or 20_000
        s = samples or 5_000
        return cls(
            rows=n,
            samples=s,
            warmup=min(50, s),
            block=min(50, s),
            budget=40.0,
            rounds=3,
            curve=(max(1, n // 8), max(1, n // 4), max(1, n // 2), n),
        )


def percentile(samples: Sequence[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def median(values: Sequence[float]) -> float:
    return percentile(values, 0.5)


@dataclass
class Latencies:
    """Per-call seconds of one side."""

    samples: list[float] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.samples)

    @property
    def p50_us(self) -> float:
        return percentile(self.samples, 0.50) * 1e6

    @property
    def p99_us(self) -> float:
        return percentile(self.samples, 0.99) * 1e6

    def describe(self) -> str:
        return f"p50 {self.p50_us:,.0f} µs, p99 {self.p99_us:,.0f} µs"


Call = Callable[[int], Awaitable[object]]


async def _run(call: Call, start: int, count: int, into: list[float] | None) -> None:
    clock = time.perf_counter
    for i in range(start, start + count):
        began = clock()
        await call(i)
        if into is not None:
            into.append(clock() - began)


async def side_by_side(*calls: Call, sizes: Sizes) -> list[Latencies]:
    """Up to ``sizes.samples`` timed calls per side in alternating blocks, after a warm-up of each.

    The sides take turns block by block, in forward then reverse order (A B C, C B A, …), so none
    always runs right after another. Each call gets its index, so all sides cycle through the same
    keys in the same order. Sampling stops early, after a whole turn, once ``sizes.budget`` seconds
    are spent (a slow server then gets fewer samples, never a longer run), with ``MIN_SAMPLES`` at least.
    """
    for call in calls:
        await _run(call, 0, sizes.warmup, None)
    sides = [Latencies() for _ in calls]
    began = time.perf_counter()
    done, turn = 0, 0
    while done < sizes.samples:
        if done >= MIN_SAMPLES and time.perf_counter() - began > sizes.budget:
            break
        count = min(sizes.block, sizes.samples - done)
        order = list(zip(calls, sides, strict=True))
        for call, side in order if turn % 2 == 0 else reversed(order):
            await _run(call, done, count, side.samples)
        done += count
        turn += 1
    return sides


async def timed(work: Callable[[], Awaitable[T]]) -> tuple[float, T]:
    began = time.perf_counter()
    value = await work()
    return time.perf_counter() - began, value
