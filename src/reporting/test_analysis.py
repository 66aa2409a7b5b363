"""What a run writes about its test split beside its metrics: the error analysis of a classifier, the
decodings of a phone recogniser. Tasks call these from their ``write_test_outputs``."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.loggers import Logger, TensorBoardLogger

from src.reporting.error_analysis import write_error_analysis
from src.utils.run_files import atomic_write

ERROR_ANALYSIS_DIR = "error_analysis"
DECODINGS_CSV = "test_decodings.csv"


def analyse_test_predictions(
    probabilities: torch.Tensor,
    labels: Sequence[int],
    files: Sequence[str],
    class_names: Sequence[str],
    output_dir: str | Path,
    loggers: Sequence[Logger],
) -> dict[str, Any]:
    """Write :func:`~src.reporting.error_analysis.write_error_analysis` of test predictions into
    ``<output_dir>/error_analysis/`` and log the confusion matrix to TensorBoard (``test/confusion_matrix``).

    Args:
        probabilities: ``(clips, classes)`` softmax outputs in test-loader order (with ``fast_dev_run`` only
            the first batch's clips).
        labels: the true class index of each of those clips.
        files: each clip's file name, in the same order.
        class_names: class labels in index order.
        output_dir: the run folder.
        loggers: the run's loggers; TensorBoard ones get the confusion matrix image, saved to disk before
            this returns.

    Returns:
        The folder, the clip count, the metrics (``test/acc``, ``test/macro_f1``, ``test/f1/<class>``, ...)
        and the ten most confused pairs.
    """
    out_dir = Path(output_dir) / ERROR_ANALYSIS_DIR
    analysis = write_error_analysis(
        out_dir, list(files), torch.tensor(list(labels)), probabilities, class_names
    )
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image("test/confusion_matrix", analysis.confusion_image, 0)
            # Written after trainer.test finalised the logger: on disk now, not when the process exits.
            logger.save()
    return {
        "folder": str(out_dir),
        "clips": len(labels),
        "metrics": {f"test/{name}": value for name, value in analysis.metrics.items()},
        "most_confused": [pair._asdict() for pair in analysis.confused_pairs[:10]],
    }


def write_test_decodings(
    files: Sequence[str], references: Sequence[str], hypotheses: Sequence[str], output_dir: str | Path
) -> dict[str, Any]:
    """Write ``<output_dir>/test_decodings.csv``: every tested utterance's file, reference and hypothesis
    (as given, e.g. folded to the phones they are scored on), one row each in the given order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", "reference", "hypothesis"])
    writer.writerows(zip(files, references, hypotheses, strict=True))
    path = Path(output_dir) / DECODINGS_CSV
    with atomic_write(path, "w") as stream:
        stream.write(buffer.getvalue())
    return {"file": str(path), "utterances": len(files)}
