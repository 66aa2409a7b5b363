"""Error analysis of a classification run's test split, written beside its metrics and logged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.loggers import Logger, TensorBoardLogger

from src.reporting.error_analysis import write_error_analysis

ERROR_ANALYSIS_DIR = "error_analysis"


def analyse_test_predictions(
    model: Any, datamodule: Any, output_dir: str | Path, loggers: list[Logger]
) -> dict[str, Any]:
    """Write :func:`~src.reporting.error_analysis.write_error_analysis` of the last ``trainer.test`` into
    ``<output_dir>/error_analysis/`` and log the confusion matrix to TensorBoard (``test/confusion_matrix``).

    ``model.test_probabilities`` holds the ``(batch, classes)`` softmax outputs in test-loader order, which
    is :meth:`datamodule.files` order; with ``fast_dev_run`` only the first batch was tested, and only its
    clips are analysed. Returns the metrics (``test/acc``, ``test/macro_f1``, ``test/f1/<class>``, ...) and
    the folder.
    """
    probabilities = torch.cat(model.test_probabilities)
    count = probabilities.shape[0]
    files = datamodule.files("test")[:count]
    labels = torch.tensor(datamodule.labels("test")[:count])
    out_dir = Path(output_dir) / ERROR_ANALYSIS_DIR
    analysis = write_error_analysis(out_dir, files, labels, probabilities, model.class_names)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image("test/confusion_matrix", analysis.confusion_image, 0)
    return {
        "folder": str(out_dir),
        "clips": count,
        "metrics": {f"test/{name}": value for name, value in analysis.metrics.items()},
        "most_confused": [pair._asdict() for pair in analysis.confused_pairs[:10]],
    }
