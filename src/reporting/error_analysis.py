"""Error analysis of a classifier's test predictions: metrics, confusion matrix, confused pairs, the
files it got wrong.

From the test split's clip paths, true labels and softmax probabilities,
:func:`write_error_analysis` writes into one folder:

- ``predictions.csv``: every clip: file, true and predicted label, probability of each, correct (1/0);
- ``misclassified.csv``: the wrong ones only, most confident error first, to listen to;
- ``per_class.csv``: precision, recall, F1 and support of every class;
- ``confused_pairs.csv``: every (true, predicted) pair of distinct classes that occurred, most frequent first;
- ``confusion_matrix.png``: rows true, columns predicted, colours normalised per row, counts in cells;
- ``error_analysis.md``: a summary with links to the files above.

Metrics are torchmetrics' with ``zero_division=0``. A class absent from the labels (support 0) has
recall 0 and precision 0 (if it is predicted, every prediction is wrong; if not, 0/0 counts as 0), so
its F1 is 0. Macro-F1 averages over the classes that are true or predicted at least once: a class
neither in the labels nor in the predictions is left out, one that is only predicted counts with F1 0.
Every output is a pure function of the inputs, so the same inputs write byte-identical files.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from src.utils.run_files import atomic_write

# Rows of a softmax sum to 1; a larger deviation means logits (or something else) were passed.
PROBABILITY_SUM_TOLERANCE = 1e-3
PNG_DPI = 120
# Counts in cells shrink with the number of classes so that 35 classes stay readable.
CELL_FONT_SIZES = ((12, 9.0), (24, 7.0), (40, 5.5))
SMALLEST_CELL_FONT_SIZE = 4.5
PREDICTION_COLUMNS = ("file", "true_label", "predicted_label", "predicted_probability", "true_probability")


class ConfusedPair(NamedTuple):
    """``count`` clips of class ``true`` predicted as ``predicted``: ``share`` of all clips of ``true``."""

    true: str
    predicted: str
    count: int
    share: float


@dataclass(frozen=True)
class ErrorAnalysis:
    """What :func:`write_error_analysis` computed and wrote.

    ``metrics``: :func:`classification_metrics`; ``matrix``: ``(C, C)`` int64 counts, rows true;
    ``confused_pairs``: every confused pair, most frequent first; ``confusion_image``: the PNG's pixels
    as ``(3, height, width)`` uint8, for ``SummaryWriter.add_image``; ``files``: name -> written path.
    """

    metrics: dict[str, float]
    matrix: torch.Tensor
    confused_pairs: list[ConfusedPair]
    confusion_image: torch.Tensor
    files: dict[str, Path]


def check_predictions(
    labels: torch.Tensor, probabilities: torch.Tensor, class_names: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``labels`` ``(N,)`` int64 and ``probabilities`` ``(N, C)`` float as tensors, or a ValueError that
    says what is wrong with them."""
    labels = torch.as_tensor(labels)
    probabilities = torch.as_tensor(probabilities)
    if len(class_names) == 0:
        raise ValueError("class_names is empty: pass the datamodule's class names, one per output")
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"class_names must be distinct; got {list(class_names)}")
    if labels.ndim != 1:
        raise ValueError(f"labels must have shape (N,), got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if probabilities.ndim != 2:
        raise ValueError(f"probabilities must have shape (N, C), got {tuple(probabilities.shape)}")
    if probabilities.shape[0] != labels.shape[0]:
        raise ValueError(
            f"labels hold {labels.shape[0]} clips but probabilities {probabilities.shape[0]} rows: "
            "pass one row of probabilities per label"
        )
    if labels.shape[0] == 0:
        raise ValueError("no predictions: labels and probabilities are empty")
    if probabilities.shape[1] != len(class_names):
        raise ValueError(
            f"probabilities have {probabilities.shape[1]} columns but there are {len(class_names)} "
            "class_names: pass one column per class, in class_names order"
        )
    if not probabilities.is_floating_point():
        raise ValueError(f"probabilities must be floating point, got dtype {probabilities.dtype}")
    out_of_range = (labels < 0) | (labels >= len(class_names))
    if out_of_range.any():
        raise ValueError(
            f"labels must lie in [0, {len(class_names) - 1}] (one per class name); "
            f"got {labels[out_of_range].unique().tolist()}"
        )
    row_sums = probabilities.double().sum(dim=1)
    if (
        not torch.isfinite(probabilities).all()
        or (probabilities < 0).any()
        or ((row_sums - 1).abs() > PROBABILITY_SUM_TOLERANCE).any()
    ):
        raise ValueError(
            "probabilities must be finite, non-negative and sum to 1 per row: pass softmax outputs "
            "(logits.softmax(dim=-1)), not logits"
        )
    return labels.to(torch.int64), probabilities


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(N,)`` true and ``(N,)`` predicted class indices -> ``(C, C)`` int64 counts: row ``i``, column
    ``j`` counts clips of class ``i`` predicted as ``j``."""
    metric = MulticlassConfusionMatrix(num_classes=num_classes)
    return metric(predictions, labels).to(torch.int64)


def classification_metrics(
    labels: torch.Tensor, probabilities: torch.Tensor, class_names: Sequence[str]
) -> dict[str, float]:
    """Accuracy, macro-F1 and per-class precision, recall and F1 (torchmetrics).

    Args:
        labels: ``(N,)`` true class indices.
        probabilities: ``(N, C)`` softmax outputs, columns in ``class_names`` order.
        class_names: The ``C`` class names.

    Returns:
        ``acc`` (share of clips whose most probable class is the true one), ``macro_f1``, and for each
        class ``precision/<class>``, ``recall/<class>``, ``f1/<class>``. How classes absent from the
        labels count is in the module docstring.
    """
    labels, probabilities = check_predictions(labels, probabilities, class_names)
    num_classes = len(class_names)
    per_class = {
        "precision": MulticlassPrecision(num_classes=num_classes, average=None, zero_division=0),
        "recall": MulticlassRecall(num_classes=num_classes, average=None, zero_division=0),
        "f1": MulticlassF1Score(num_classes=num_classes, average=None, zero_division=0),
    }
    metrics = {
        "acc": MulticlassAccuracy(num_classes=num_classes, average="micro")(probabilities, labels).item(),
        "macro_f1": MulticlassF1Score(num_classes=num_classes, average="macro", zero_division=0)(
            probabilities, labels
        ).item(),
    }
    for name, metric in per_class.items():
        values = metric(probabilities, labels).tolist()
        metrics.update({f"{name}/{cls}": value for cls, value in zip(class_names, values, strict=True)})
    return metrics


def most_confused_pairs(
    matrix: torch.Tensor, class_names: Sequence[str], top: int | None = 10
) -> list[ConfusedPair]:
    """The off-diagonal cells of ``matrix`` (``(C, C)``, rows true) that are not zero, most clips first,
    ties in class order (true class, then predicted class); the first ``top`` of them (all if None)."""
    if matrix.shape != (len(class_names), len(class_names)):
        raise ValueError(
            f"matrix has shape {tuple(matrix.shape)} but there are {len(class_names)} class_names: "
            "pass a square matrix with one row and column per class"
        )
    counts = matrix.to(torch.int64).tolist()
    pairs = [
        ConfusedPair(class_names[true], class_names[predicted], count, count / sum(counts[true]))
        for true, row in enumerate(counts)
        for predicted, count in enumerate(row)
        if true != predicted and count > 0
    ]
    order = {name: index for index, name in enumerate(class_names)}
    pairs.sort(key=lambda pair: (-pair.count, order[pair.true], order[pair.predicted]))
    return pairs if top is None else pairs[:top]


def row_shares(matrix: torch.Tensor) -> np.ndarray:
    """``(C, C)`` counts -> each row divided by its sum (a row without clips stays 0)."""
    counts = matrix.to(torch.float64).numpy()
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def cell_font_size(num_classes: int) -> float:
    return next((size for limit, size in CELL_FONT_SIZES if num_classes <= limit), SMALLEST_CELL_FONT_SIZE)


def panel_size(num_classes: int) -> float:
    """Width and height in inches of one matrix panel: about a third of an inch per class."""
    return max(4.0, 0.33 * num_classes + 1.5)


def draw_confusion_matrix(
    axes: Axes, matrix: torch.Tensor, class_names: Sequence[str], title: str
) -> AxesImage:
    """Draw ``matrix`` (``(C, C)`` counts, rows true) into ``axes``: colour = share of the true class,
    the count written in every non-zero cell. Returns the image (for a colour bar)."""
    shares = row_shares(matrix)
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    font_size = cell_font_size(len(class_names))
    for (true, predicted), count in np.ndenumerate(matrix.to(torch.int64).numpy()):
        if count:
            colour = "white" if shares[true, predicted] > 0.5 else "black"
            axes.text(predicted, true, str(count), ha="center", va="center", fontsize=font_size, color=colour)
    ticks = list(range(len(class_names)))
    axes.set_xticks(ticks, class_names, rotation=90, fontsize=font_size + 1)
    axes.set_yticks(ticks, class_names, fontsize=font_size + 1)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title)
    return image


def plot_confusion_matrices(panels: Sequence[tuple[str, torch.Tensor]], class_names: Sequence[str]) -> Figure:
    """The ``(title, (C, C) matrix)`` panels side by side on one colour scale (share of the true class),
    e.g. the best RNN's and the best LSTM's. The caller saves and closes the figure."""
    if not panels:
        raise ValueError("panels is empty: pass at least one (title, matrix) pair")
    for title, matrix in panels:
        if matrix.shape != (len(class_names), len(class_names)):
            raise ValueError(
                f"matrix {title!r} has shape {tuple(matrix.shape)} but there are {len(class_names)} "
                "class_names: pass square matrices with one row and column per class"
            )
    size = panel_size(len(class_names))
    figure, axes = plt.subplots(
        # 0.6 inch more height than width per panel: room for two-line titles above the square matrices
        1,
        len(panels),
        figsize=(size * len(panels) + 1.0, size + 0.6),
        squeeze=False,
        constrained_layout=True,
    )
    for panel_axes, (title, matrix) in zip(axes[0], panels, strict=True):
        image = draw_confusion_matrix(panel_axes, matrix, class_names, title)
    figure.colorbar(image, ax=list(axes[0]), label="share of the true class", shrink=0.8)
    return figure


def plot_confusion_matrix(matrix: torch.Tensor, class_names: Sequence[str], title: str) -> Figure:
    """One confusion matrix (``(C, C)`` counts, rows true, columns predicted): colours normalised per
    row, counts in the cells. The caller saves and closes the figure."""
    return plot_confusion_matrices([(title, matrix)], class_names)


def save_png(figure: Figure, path: str | Path) -> torch.Tensor:
    """Write ``figure`` to ``path`` as a PNG without metadata (atomically), close it, and return the
    pixels as ``(3, height, width)`` uint8."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=PNG_DPI, metadata={"Software": None})
    plt.close(figure)
    with atomic_write(path, "wb") as stream:
        stream.write(buffer.getvalue())
    buffer.seek(0)
    rgba = plt.imread(buffer, format="png")  # (height, width, 4) floats in [0, 1]
    return torch.from_numpy(np.round(rgba[..., :3] * 255).astype(np.uint8)).permute(2, 0, 1).contiguous()


def probability_cell(value: float) -> str:
    return f"{value:.6f}"


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    with atomic_write(path) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def markdown_row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"


def summary_markdown(
    metrics: dict[str, float],
    class_names: Sequence[str],
    support: Sequence[int],
    errors: int,
    pairs: Sequence[ConfusedPair],
    files: dict[str, Path],
) -> str:
    """``error_analysis.md``: headline metrics, the per-class table, the top pairs, links to the files."""
    clips = sum(support)
    lines = [
        "# Error analysis",
        "",
        f"{clips} test clips, {errors} misclassified. Accuracy: {metrics['acc']:.4f}. "
        f"Macro-F1: {metrics['macro_f1']:.4f}.",
        "",
        "## Per class",
        "",
        markdown_row(["class", "precision", "recall", "F1", "support"]),
        "|---|---|---|---|---|",
    ]
    for name, count in zip(class_names, support, strict=True):
        values = [f"{metrics[f'{metric}/{name}']:.4f}" for metric in ("precision", "recall", "f1")]
        lines.append(markdown_row([name, *values, count]))
    absent = [name for name, count in zip(class_names, support, strict=True) if count == 0]
    if absent:
        lines += [
            "",
            f"Absent from the test split (recall undefined, reported as 0): {', '.join(absent)}.",
        ]
    lines += ["", f"## Most confused pairs (top {len(pairs)})", ""]
    if pairs:
        lines += [
            markdown_row(["true", "predicted", "clips", "share of true class"]),
            "|---|---|---|---|",
            *(markdown_row([p.true, p.predicted, p.count, f"{p.share:.1%}"]) for p in pairs),
        ]
    else:
        lines.append("No clip was misclassified.")
    lines += ["", "## Files", ""]
    lines += [f"- [{path.name}]({path.name})" for name, path in files.items() if name != "summary"]
    return "\n".join(lines) + "\n"


def write_error_analysis(
    out_dir: str | Path,
    files: Sequence[str],
    labels: torch.Tensor,
    probabilities: torch.Tensor,
    class_names: Sequence[str],
    top_pairs: int = 10,
) -> ErrorAnalysis:
    """Write the error analysis of the test split into ``out_dir`` (see the module docstring).

    Args:
        out_dir: Folder to write into; created if missing. Every file is written atomically.
        files: ``N`` clip paths (e.g. relative to the corpus folder), written as given.
        labels: ``(N,)`` true class indices.
        probabilities: ``(N, C)`` softmax outputs, columns in ``class_names`` order.
        class_names: The ``C`` class names.
        top_pairs: How many confused pairs ``error_analysis.md`` lists (the CSV holds all).

    Returns:
        The metrics, matrix, confused pairs, confusion image and paths written.
    """
    labels, probabilities = check_predictions(labels, probabilities, class_names)
    if len(files) != labels.shape[0]:
        raise ValueError(
            f"{len(files)} files but {labels.shape[0]} labels: "
            "pass one file per prediction, in the same order"
        )
    out_dir = Path(out_dir)
    num_classes = len(class_names)
    predictions = probabilities.argmax(dim=1)  # the first of equal maxima
    predicted_probability = probabilities.gather(1, predictions[:, None])[:, 0].tolist()
    true_probability = probabilities.gather(1, labels[:, None])[:, 0].tolist()
    metrics = classification_metrics(labels, probabilities, class_names)
    matrix = confusion_matrix(labels, predictions, num_classes)
    pairs = most_confused_pairs(matrix, class_names, top=None)
    support = matrix.sum(dim=1).tolist()

    rows = [
        (
            str(file),
            class_names[true],
            class_names[predicted],
            probability_cell(predicted_probability[index]),
            probability_cell(true_probability[index]),
        )
        for index, (file, true, predicted) in enumerate(
            zip(files, labels.tolist(), predictions.tolist(), strict=True)
        )
    ]
    wrong = [index for index, row in enumerate(rows) if row[1] != row[2]]
    wrong.sort(key=lambda index: (-predicted_probability[index], rows[index][0], index))

    paths = {
        "predictions": out_dir / "predictions.csv",
        "misclassified": out_dir / "misclassified.csv",
        "per_class": out_dir / "per_class.csv",
        "confused_pairs": out_dir / "confused_pairs.csv",
        "confusion_matrix": out_dir / "confusion_matrix.png",
        "summary": out_dir / "error_analysis.md",
    }
    write_csv(
        paths["predictions"],
        [*PREDICTION_COLUMNS, "correct"],
        [(*row, int(row[1] == row[2])) for row in rows],
    )
    write_csv(paths["misclassified"], PREDICTION_COLUMNS, [rows[index] for index in wrong])
    write_csv(
        paths["per_class"],
        ["class", "precision", "recall", "f1", "support"],
        [
            (name, *(f"{metrics[f'{metric}/{name}']:.6f}" for metric in ("precision", "recall", "f1")), count)
            for name, count in zip(class_names, support, strict=True)
        ],
    )
    write_csv(
        paths["confused_pairs"],
        ["true_label", "predicted_label", "count", "share_of_true_class"],
        [(p.true, p.predicted, p.count, f"{p.share:.6f}") for p in pairs],
    )
    accuracy = f"accuracy {metrics['acc']:.4f}, macro-F1 {metrics['macro_f1']:.4f}"
    image = save_png(
        plot_confusion_matrix(matrix, class_names, f"Confusion matrix ({accuracy})"),
        paths["confusion_matrix"],
    )
    with atomic_write(paths["summary"]) as stream:
        stream.write(summary_markdown(metrics, class_names, support, len(wrong), pairs[:top_pairs], paths))
    return ErrorAnalysis(
        metrics=metrics, matrix=matrix, confused_pairs=pairs, confusion_image=image, files=paths
    )
