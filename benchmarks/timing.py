"""Timing shared by the benchmarks: candidates timed in alternating rounds, medians printed with a ratio."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(
    candidates: dict[str, Callable[[], object]], repeats: int, number: int
) -> dict[str, float]:
    """Median seconds per call of each candidate, over ``repeats`` rounds of ``number`` calls each.

    The candidates take turns, in reversed order every other round, so that neither always runs first
    and load from other processes affects all alike.
    """
    rounds: dict[str, list[float]] = {name: [] for name in candidates}
    for repeat in range(repeats):
        order = list(candidates.items())
        for name, fn in order if repeat % 2 == 0 else reversed(order):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            rounds[name].append((time.perf_counter() - start) / number)
    return {name: statistics.median(times) for name, times in rounds.items()}


def time_and_print(
    header: str,
    candidates: dict[str, Callable[[], object]],
    reference: str,
    warmup: int,
    repeats: int,
    number: int,
) -> dict[str, float]:
    """Call every candidate ``warmup`` times untimed, time them (:func:`median_seconds`), print ``header``,
    each median in ms and the ratio of the other candidate(s) to ``reference``; returns the medians."""
    for _ in range(warmup):
        for fn in candidates.values():
            fn()
    medians = median_seconds(candidates, repeats, number)
    print(f"{header}, median of {repeats} rounds x {number} calls")
    for name, seconds in medians.items():
        print(f"  {name:<10} {seconds * 1e3:8.2f} ms")
    for name, seconds in medians.items():
        if name != reference:
            print(f"  ratio {name} / {reference}: {seconds / medians[reference]:.3f}")
    return medians
