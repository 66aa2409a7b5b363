"""The detection error tradeoff (DET) plot: miss against false-alarm probability on normal-deviate axes,
where the curves of Gaussian-distributed scores are straight lines (Martin, Doddington, Kamm, Ordowski &
Przybocki, 1997, "The DET curve in assessment of detection task performance")."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from src.verification.metrics import DetectionErrors

TICKS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8)
"""Probabilities marked on both axes."""
FLOOR = 5e-4
"""Rates of 0 are drawn at this probability (a normal deviate of 0 is minus infinity)."""


def _deviate(rates: torch.Tensor) -> torch.Tensor:
    return torch.special.ndtri(rates.double().clamp(FLOOR, 1 - FLOOR))


def det_axes(title: str) -> tuple[Figure, Axes]:
    """An empty DET plot: percent ticks on normal-deviate axes and the EER line ``P_miss = P_fa``."""
    figure, axis = plt.subplots(figsize=(5.5, 5.5), dpi=100, constrained_layout=True)
    ticks = _deviate(torch.tensor(TICKS))
    names = [f"{100 * tick:g}" for tick in TICKS]
    limits = (float(_deviate(torch.tensor(FLOOR))), float(ticks[-1]) + 0.2)
    axis.plot(limits, limits, color="0.6", linestyle=":", linewidth=1, label="EER line")
    axis.set(xlim=limits, ylim=limits, title=title)
    axis.set_xticks(ticks.tolist(), names)
    axis.set_yticks(ticks.tolist(), names)
    axis.set_xlabel("false-alarm probability (%)")
    axis.set_ylabel("miss probability (%)")
    axis.grid(True, color="0.9")
    return figure, axis


def draw_det(axis: Axes, errors: DetectionErrors, label: str | None, colour: str | None = None) -> None:
    """Add the curve of ``errors`` to a :func:`det_axes` plot (``label=None``: not in the legend)."""
    axis.plot(_deviate(errors.false_alarm), _deviate(errors.miss), label=label, color=colour, linewidth=1.2)


def det_figure(curves: Mapping[str, DetectionErrors], title: str) -> Figure:
    """One DET curve per entry of ``curves`` (its legend label -> operating points); rates of 0 are
    drawn at :data:`FLOOR`."""
    figure, axis = det_axes(title)
    for label, errors in curves.items():
        draw_det(axis, errors, label)
    axis.legend(fontsize=8, loc="lower left")
    return figure
