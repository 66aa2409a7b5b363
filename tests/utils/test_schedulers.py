"""The warm-up + cosine schedule of the BC-ResNet recipe."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from src.utils.schedulers import warmup_cosine


def learning_rates(warmup_epochs: int, max_epochs: int) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = warmup_cosine(optimizer, warmup_epochs=warmup_epochs, max_epochs=max_epochs)
    rates = []
    for _ in range(max_epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_linear_warmup_to_the_peak_then_cosine_to_zero() -> None:
    rates = learning_rates(warmup_epochs=5, max_epochs=20)
    assert rates[:6] == pytest.approx([0.001, 0.0208, 0.0406, 0.0604, 0.0802, 0.1])
    assert all(later < earlier for earlier, later in itertools.pairwise(rates[5:]))
    assert rates[-1] == pytest.approx(0.1 * (1 + math.cos(14 / 15 * math.pi)) / 2)  # cosine step 14 of 15


def test_a_run_shorter_than_the_warmup_still_decays() -> None:
    rates = learning_rates(warmup_epochs=5, max_epochs=3)
    assert rates[2] == pytest.approx(0.1)  # two warm-up epochs, then the peak
    assert learning_rates(warmup_epochs=0, max_epochs=4)[0] == pytest.approx(0.1)
