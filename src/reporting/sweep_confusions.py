"""Confusion matrices of a model sweep side by side: the best configuration of each swept model."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib.backends.backend_pdf import PdfPages

from src.reporting.error_analysis import PNG_DPI, plot_confusion_matrices
from src.reporting.sweep_table import SweepTable
from src.reporting.test_analysis import ERROR_ANALYSIS_DIR
from src.utils.run_files import atomic_write

MODEL_KEY = "model"
CONFUSION_PNG = "confusion_matrices.png"


def summed_confusion(prediction_files: list[Path]) -> tuple[list[str], torch.Tensor]:
    """Class names (in ``per_class.csv`` order) and the ``(C, C)`` confusion matrix (rows true) summed over
    the ``predictions.csv`` files of the seeds of one configuration."""
    class_names = [
        row["class"] for row in csv.DictReader(prediction_files[0].with_name("per_class.csv").open())
    ]
    index = {name: i for i, name in enumerate(class_names)}
    matrix = torch.zeros(len(class_names), len(class_names), dtype=torch.int64)
    for path in prediction_files:
        for row in csv.DictReader(path.open()):
            matrix[index[row["true_label"]], index[row["predicted_label"]]] += 1
    return class_names, matrix


def write_confusion_panels(table: SweepTable, output_dir: Path, pdf: PdfPages | None = None) -> Path | None:
    """For a sweep over ``model`` whose runs wrote an error analysis: ``confusion_matrices.png`` with one
    panel per model, its configuration with the best mean of the table's best monitored value (in its
    direction), test predictions summed over its seeds. Returns the file, or ``None`` when the sweep has no
    such runs."""
    if MODEL_KEY not in table.swept:
        return None
    others = [key for key in table.swept if key != MODEL_KEY]
    panels = []
    class_names: list[str] = []
    for model in sorted({row[MODEL_KEY] for row in table.ok_rows}):
        rows = [row for row in table.ok_rows if row[MODEL_KEY] == model]
        selection = table.best_metric
        best = min(rows, key=lambda row: selection.better_first(row[f"{selection.stem}_mean"]))
        config = tuple(best[key] for key in table.swept)
        files = [
            run.job_dir / ERROR_ANALYSIS_DIR / "predictions.csv"
            for run in table.runs
            if run.status == "ok" and run.configuration(table.swept) == config
        ]
        files = [path for path in files if path.is_file()]
        if not files:
            return None
        class_names, matrix = summed_confusion(files)
        setting = ", ".join(f"{key}={best[key]}" for key in others)
        test = table.test_metric
        score = f"\n{test.header} {best[f'{test.stem}_mean']:.3f}"
        title = f"{model}" + (f" ({setting})" if setting else "") + score
        panels.append((title, matrix))
    # PNG first, then the PDF page: drawing the page first would move the layout of the PNG.
    figure = plot_confusion_matrices(panels, class_names)
    path = output_dir / CONFUSION_PNG
    with atomic_write(path, "wb") as stream:
        figure.savefig(stream, format="png", dpi=PNG_DPI)
    if pdf is not None:
        pdf.savefig(figure)
    plt.close(figure)
    return path
