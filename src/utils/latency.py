"""Wall-clock latency of a forward pass: the median over repeated calls after warm-up."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Latency:
    """``median_ms`` of ``repeats`` timed calls (after ``warmup`` untimed ones), with the spread of the
    timed calls (``min_ms``, ``max_ms``) and the torch threads they ran on."""

    median_ms: float
    min_ms: float
    max_ms: float
    repeats: int
    warmup: int
    torch_threads: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def median_latency(
    call: Callable[[], Any], warmup: int = 3, repeats: int = 25, budget_s: float = 1.0
) -> Latency:
    """Time ``call()``: ``warmup`` untimed calls, then up to ``repeats`` timed ones, stopping early (after
    at least 5) once the timed calls took ``budget_s`` seconds together, so a slow model costs about a
    second. Each call is timed alone with ``time.perf_counter``; wall time, so other processes on the
    machine slow it down.

    Raises:
        ValueError: for ``warmup < 0``, ``repeats < 1`` or ``budget_s <= 0``.
    """
    if warmup < 0 or repeats < 1 or budget_s <= 0:
        raise ValueError(
            f"warmup >= 0, repeats >= 1 and budget_s > 0 needed, got {warmup}, {repeats}, {budget_s}"
        )
    for _ in range(warmup):
        call()
    times: list[float] = []
    while len(times) < repeats and (len(times) < 5 or sum(times) < budget_s):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return Latency(
        median_ms=1e3 * statistics.median(times),
        min_ms=1e3 * min(times),
        max_ms=1e3 * max(times),
        repeats=len(times),
        warmup=warmup,
        torch_threads=torch.get_num_threads(),
    )
