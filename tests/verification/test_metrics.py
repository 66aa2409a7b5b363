"""EER, minDCF and the DET points against values worked out by hand."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.functional.classification import binary_eer

from src.verification.metrics import detection_errors, equal_error_rate, error_rates_at, min_dcf

# Three target trials and four non-target trials. Accepting scores >= t:
#   t      P_miss  P_fa   |P_fa - P_miss|   P_miss + 99 P_fa (DCF / C_default at p_target 0.01)
#   0.9    2/3     0      2/3               0.667  <- minDCF
#   0.7    2/3     1/4    5/12              25.4
#   0.6    1/3     1/4    1/12  <- EER = (1/3 + 1/4) / 2 = 7/24
#   0.4    0       1/4    1/4               24.75
SCORES = torch.tensor([0.9, 0.6, 0.4, 0.7, 0.3, 0.2, 0.1])
TARGET = torch.tensor([True, True, True, False, False, False, False])


def test_eer_and_its_threshold_match_the_hand_computed_example() -> None:
    eer, threshold = equal_error_rate(SCORES, TARGET)
    assert eer == pytest.approx(7 / 24, abs=1e-6)
    assert threshold == pytest.approx(0.6, abs=1e-6)


def test_eer_is_torchmetrics_eer_for_cosine_scores_of_any_sign() -> None:
    scores = torch.randn(200, generator=torch.Generator().manual_seed(0)).tanh()
    target = torch.arange(200) % 3 == 0
    scores[target] += 0.3
    eer, _ = equal_error_rate(scores, target)
    assert eer == pytest.approx(float(binary_eer((scores + 1) / 2, target.long())), abs=1e-6)
    assert 0.0 < eer < 0.5


def test_min_dcf_matches_the_hand_computed_example() -> None:
    value, threshold = min_dcf(SCORES, TARGET, p_target=0.01)
    assert value == pytest.approx(2 / 3, abs=1e-6)
    assert threshold == pytest.approx(0.9, abs=1e-6)


def test_min_dcf_with_an_even_prior_is_the_least_total_error() -> None:
    # p_target 0.5, c_miss = c_fa = 1: DCF / 0.5 = P_miss + P_fa, least at t = 0.4 (0 + 1/4).
    value, threshold = min_dcf(SCORES, TARGET, p_target=0.5)
    assert value == pytest.approx(0.25, abs=1e-6)
    assert threshold == pytest.approx(0.4, abs=1e-6)


def test_min_dcf_never_exceeds_the_cost_of_a_fixed_decision() -> None:
    scores = torch.rand(100, generator=torch.Generator().manual_seed(1)) * 2 - 1
    target = torch.arange(100) % 2 == 0
    assert min_dcf(scores, target)[0] <= 1.0 + 1e-6


def test_detection_errors_run_from_rejecting_everyone_to_accepting_everyone() -> None:
    errors = detection_errors(SCORES, TARGET)
    assert (errors.miss[0], errors.false_alarm[0]) == (1.0, 0.0)
    assert (errors.miss[-1], errors.false_alarm[-1]) == (0.0, 1.0)
    assert bool((errors.thresholds[1:] <= errors.thresholds[:-1]).all())


def test_error_rates_at_a_threshold() -> None:
    miss, false_alarm = error_rates_at(SCORES, TARGET, 0.6)
    assert (miss, false_alarm) == (pytest.approx(1 / 3), pytest.approx(1 / 4))


def test_trials_of_one_label_are_refused() -> None:
    with pytest.raises(ValueError, match="target and non-target trials"):
        equal_error_rate(SCORES, torch.ones(7, dtype=torch.bool))


@pytest.mark.parametrize(
    ("kwargs", "key"), [({"p_target": 1.0}, "task.p_target"), ({"c_fa": 0.0}, "task.c_fa")]
)
def test_impossible_costs_are_refused(kwargs: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        min_dcf(SCORES, TARGET, **kwargs)
