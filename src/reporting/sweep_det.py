"""DET curves of a sweep whose jobs scored verification trials: every job that wrote
``verification/trial_scores.csv`` (``label enroll test condition score``, as the speaker-verification
task's test writes it) gets its test DET curve in ``det_curves.png``, one colour per swept configuration
and one line per seed, labelled with the configuration's mean test EER over its seeds."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib.backends.backend_pdf import PdfPages

from src.reporting.sweep_table import SEED_KEY, SweepTable
from src.verification.det_plot import det_axes, draw_det
from src.verification.metrics import detection_errors, equal_error_rate

TRIAL_SCORES = Path("verification") / "trial_scores.csv"
DET_PNG = "det_curves.png"


def _scores(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    with path.open() as stream:
        rows = list(csv.DictReader(stream))
    scores = torch.tensor([float(row["score"]) for row in rows])
    return scores, torch.tensor([row["label"] == "1" for row in rows])


def write_det_curves(table: SweepTable, output_dir: Path, pdf: PdfPages | None = None) -> Path | None:
    """``<output_dir>/det_curves.png`` (also a page of ``pdf``); ``None`` when no job wrote trial
    scores."""
    groups: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = defaultdict(list)
    for run in table.runs:
        path = run.job_dir / TRIAL_SCORES
        if run.status != "ok" or not path.is_file():
            continue
        label = " ".join(
            f"{key}={run.overrides[key]}" for key in table.swept if key != SEED_KEY and key in run.overrides
        )
        groups[label or table.name].append(_scores(path))
    if not groups:
        return None
    figure, axis = det_axes(f"{table.name}: test DET curves, one line per seed")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for number, (label, runs) in enumerate(groups.items()):
        eers = [equal_error_rate(scores, target)[0] for scores, target in runs]
        mean = sum(eers) / len(eers)
        for seed, (scores, target) in enumerate(runs):
            name = f"{label} (EER {100 * mean:.1f} %, {len(runs)} seeds)" if seed == 0 else None
            draw_det(axis, detection_errors(scores, target), name, colours[number % len(colours)])
    axis.legend(fontsize=7, loc="lower left")
    path = output_dir / DET_PNG
    figure.savefig(path)
    if pdf is not None:
        pdf.savefig(figure)
    plt.close(figure)
    return path
