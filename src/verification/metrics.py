"""Detection metrics of verification trials: EER, minDCF and the DET curve.

Scores are cosine similarities in ``[-1, 1]``; a trial is accepted when its score is at least the
threshold. torchmetrics computes the ROC and the EER on the scores mapped to ``[0, 1]`` by
``(score + 1) / 2`` (a monotone map, so rates and EER are those of the scores), and thresholds are mapped
back to cosine similarities.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torchmetrics.functional.classification import binary_eer, binary_roc


@dataclass(frozen=True)
class DetectionErrors:
    """The operating points of a trial list, from accepting nobody to accepting everyone.

    Attributes:
        false_alarm: ``(points,)`` share of non-target trials accepted (P_fa).
        miss: ``(points,)`` share of target trials rejected (P_miss).
        thresholds: ``(points,)`` cosine thresholds, decreasing.
    """

    false_alarm: Tensor
    miss: Tensor
    thresholds: Tensor


def detection_errors(scores: Tensor, target: Tensor) -> DetectionErrors:
    """Every operating point of ``(trials,)`` cosine ``scores`` with ``(trials,)`` bool ``target`` labels
    (torchmetrics' ``binary_roc``).

    Raises:
        ValueError: when the trials lack targets or non-targets.
    """
    _check_trials(target)
    false_alarm, hit, thresholds = binary_roc(_as_probability(scores), target.long())
    return DetectionErrors(false_alarm, 1 - hit, 2 * thresholds - 1)


def equal_error_rate(scores: Tensor, target: Tensor) -> tuple[float, float]:
    """``(EER, threshold)``: torchmetrics' ``binary_eer`` (the mean of P_fa and P_miss where they are
    closest) and the cosine threshold of that operating point.

    Raises:
        ValueError: when the trials lack targets or non-targets.
    """
    errors = detection_errors(scores, target)
    eer = float(binary_eer(_as_probability(scores), target.long()))
    index = int(torch.argmin((errors.false_alarm - errors.miss).abs()))
    return eer, float(errors.thresholds[index])


def min_dcf(
    scores: Tensor, target: Tensor, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0
) -> tuple[float, float]:
    """``(minDCF, threshold)``: the minimum over thresholds of the normalised detection cost
    ``(c_miss P_miss p_target + c_fa P_fa (1 - p_target)) / min(c_miss p_target, c_fa (1 - p_target))``
    (NIST SRE evaluation plans; 1.0 is the cost of always accepting or always rejecting, whichever is
    cheaper), and the cosine threshold where it is reached.

    Raises:
        ValueError: for ``p_target`` outside ``(0, 1)``, costs that are not positive, or trials that lack
            targets or non-targets.
    """
    check_costs(p_target, c_miss, c_fa)
    errors = detection_errors(scores, target)
    cost = c_miss * errors.miss * p_target + c_fa * errors.false_alarm * (1 - p_target)
    normalised = cost / min(c_miss * p_target, c_fa * (1 - p_target))
    index = int(torch.argmin(normalised))
    return float(normalised[index]), float(errors.thresholds[index])


def detection_summary(scores: Tensor, target: Tensor, costs: dict[str, float]) -> dict[str, float] | None:
    """``{"eer", "eer_threshold", "min_dcf"}`` of ``(trials,)`` ``scores`` and ``target`` labels with the
    minDCF ``costs`` (``p_target``, ``c_miss``, ``c_fa``); ``None`` when the trials lack targets or
    non-targets (none at all included)."""
    if int(target.sum()) in (0, len(target)):
        return None
    eer, threshold = equal_error_rate(scores, target)
    return {"eer": eer, "eer_threshold": threshold, "min_dcf": min_dcf(scores, target, **costs)[0]}


def check_costs(p_target: float, c_miss: float, c_fa: float) -> None:
    """Raise ``ValueError`` naming ``task.p_target``, ``task.c_miss`` or ``task.c_fa`` for a prior outside
    ``(0, 1)`` or a cost that is not positive."""
    if not 0 < p_target < 1:
        raise ValueError(f"task.p_target must be in (0, 1), got {p_target}: e.g. 0.01")
    if c_miss <= 0 or c_fa <= 0:
        raise ValueError(f"task.c_miss and task.c_fa must be positive, got {c_miss} and {c_fa}: e.g. 1")


def error_rates_at(scores: Tensor, target: Tensor, threshold: float) -> tuple[float, float]:
    """``(P_miss, P_fa)`` when trials scoring at least ``threshold`` are accepted."""
    _check_trials(target)
    accepted = scores >= threshold
    return float((~accepted[target]).float().mean()), float(accepted[~target].float().mean())


def _as_probability(scores: Tensor) -> Tensor:
    return ((scores.detach().float() + 1) / 2).clamp(0, 1)


def _check_trials(target: Tensor) -> None:
    targets = int(target.sum())
    if targets == 0 or targets == len(target):
        raise ValueError(
            f"verification metrics need target and non-target trials, got {targets} targets of {len(target)}"
        )
