"""What a run writes about its test split beside its metrics: the error analysis of a classifier, the
decodings of a phone recogniser."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.loggers import Logger, TensorBoardLogger

from src.reporting.error_analysis import write_error_analysis
from src.tasks.classification import ClassificationTask
from src.tasks.phone_recognition import PhoneRecognitionTask
from src.utils.run_files import atomic_write

ERROR_ANALYSIS_DIR = "error_analysis"
DECODINGS_CSV = "test_decodings.csv"


def analyse_test(
    model: Any, datamodule: Any, output_dir: str | Path, loggers: list[Logger]
) -> dict[str, Any]:
    """:func:`analyse_test_predictions` for a classifier, :func:`write_test_decodings` for a phone
    recogniser."""
    if isinstance(model, PhoneRecognitionTask):
        return write_test_decodings(model, datamodule, output_dir)
    if isinstance(model, ClassificationTask):
        return analyse_test_predictions(model, datamodule, output_dir, loggers)
    raise TypeError(f"No test analysis for {type(model).__name__}")


def analyse_test_predictions(
    model: ClassificationTask, datamodule: Any, output_dir: str | Path, loggers: list[Logger]
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


def write_test_decodings(
    model: PhoneRecognitionTask, datamodule: Any, output_dir: str | Path
) -> dict[str, Any]:
    """Write ``<output_dir>/test_decodings.csv``: every tested utterance's file, reference and greedy
    hypothesis, both folded to the 39 phones they are scored on (``model.test_decodings``, in
    :meth:`datamodule.files` order; with ``fast_dev_run`` only the first batch)."""
    decodings = model.test_decodings
    files = datamodule.files("test")[: len(decodings)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", "reference", "hypothesis"])
    writer.writerows(
        [name, decoded.reference, decoded.hypothesis] for name, decoded in zip(files, decodings, strict=True)
    )
    path = Path(output_dir) / DECODINGS_CSV
    with atomic_write(path, "w") as stream:
        stream.write(buffer.getvalue())
    return {"file": str(path), "utterances": len(decodings)}
