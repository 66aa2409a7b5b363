"""Error analysis of test predictions: metrics against hand-computed values, the files written."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

from src.reporting.error_analysis import (
    ConfusedPair,
    classification_metrics,
    confusion_matrix,
    most_confused_pairs,
    plot_confusion_matrices,
    plot_confusion_matrix,
    write_error_analysis,
)

CLASSES = ["yes", "no", "up"]
# true:      yes yes yes no no no up up
# predicted: yes yes no  no no no up yes
LABELS = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])
PREDICTED = [0, 0, 1, 1, 1, 1, 2, 0]
# probability of the predicted class per clip; the errors are clip 2 (0.6) and clip 7 (0.9)
CONFIDENCE = [0.9, 0.8, 0.6, 0.7, 0.95, 0.5, 0.85, 0.9]
FILES = [f"{CLASSES[label]}/clip{index}_nohash_0.wav" for index, label in enumerate(LABELS.tolist())]


def softmax_rows(predicted: list[int], confidence: list[float], num_classes: int) -> torch.Tensor:
    """``(N, num_classes)`` rows with ``confidence`` on ``predicted``, the rest split evenly."""
    rows = torch.empty(len(predicted), num_classes)
    for row, (index, top) in enumerate(zip(predicted, confidence, strict=True)):
        rows[row] = (1 - top) / (num_classes - 1)
        rows[row, index] = top
    return rows


PROBABILITIES = softmax_rows(PREDICTED, CONFIDENCE, len(CLASSES))


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as stream:
        return list(csv.DictReader(stream))


def test_metrics_match_hand_computed_values() -> None:
    metrics = classification_metrics(LABELS, PROBABILITIES, CLASSES)
    # columns of the matrix: predicted yes = 3 (2 right), no = 4 (3 right), up = 1 (1 right)
    expected = {
        "acc": 6 / 8,
        "precision/yes": 2 / 3,
        "precision/no": 3 / 4,
        "precision/up": 1.0,
        "recall/yes": 2 / 3,
        "recall/no": 1.0,
        "recall/up": 1 / 2,
        "f1/yes": 2 / 3,
        "f1/no": 6 / 7,
        "f1/up": 2 / 3,
        "macro_f1": (2 / 3 + 6 / 7 + 2 / 3) / 3,
    }
    assert metrics.keys() == expected.keys()
    assert metrics == pytest.approx(expected, abs=1e-6)


def test_confusion_matrix_rows_are_true_classes() -> None:
    matrix = confusion_matrix(LABELS, torch.tensor(PREDICTED), len(CLASSES))
    assert matrix.dtype == torch.int64
    assert matrix.tolist() == [[2, 1, 0], [0, 3, 0], [1, 0, 1]]
    assert matrix.sum(dim=1).tolist() == [3, 3, 2]  # support of each true class
    assert matrix.sum(dim=0).tolist() == [3, 4, 1]  # predictions of each class
    assert matrix.sum().item() == len(LABELS)


def test_class_absent_from_labels_counts_as_zero_and_macro_f1_follows_torchmetrics() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    never_predicted = classification_metrics(labels, softmax_rows([0, 1, 1, 1], [0.9] * 4, 3), CLASSES)
    assert never_predicted["recall/up"] == 0.0 and never_predicted["precision/up"] == 0.0
    assert never_predicted["f1/up"] == 0.0
    # "up" is neither true nor predicted: left out of the macro average
    assert never_predicted["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)

    predicted_once = classification_metrics(labels, softmax_rows([0, 1, 1, 2], [0.9] * 4, 3), CLASSES)
    assert predicted_once["precision/up"] == 0.0 and predicted_once["f1/up"] == 0.0
    # "up" is predicted once (wrongly): it counts in the macro average with F1 0
    assert predicted_once["macro_f1"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)


def test_absent_class_in_written_files(tmp_path: Path) -> None:
    labels = torch.tensor([0, 0, 1, 1])
    analysis = write_error_analysis(
        tmp_path,
        ["a.wav", "b.wav", "c.wav", "d.wav"],
        labels,
        softmax_rows([0, 1, 1, 1], [0.9] * 4, 3),
        CLASSES,
    )
    per_class = {row["class"]: row for row in read_csv(analysis.files["per_class"])}
    assert per_class["up"] == {
        "class": "up",
        "precision": "0.000000",
        "recall": "0.000000",
        "f1": "0.000000",
        "support": "0",
    }
    assert per_class["yes"]["support"] == "2" and per_class["no"]["recall"] == "1.000000"
    assert "Absent from the test split (recall undefined, reported as 0): up." in (
        analysis.files["summary"].read_text()
    )


def test_confused_pairs_most_clips_first_then_class_order() -> None:
    names = ["a", "b", "c", "d"]
    matrix = torch.tensor([[5, 0, 2, 0], [3, 1, 0, 0], [0, 2, 4, 1], [0, 0, 0, 0]])
    assert most_confused_pairs(matrix, names, top=None) == [
        ConfusedPair("b", "a", 3, 3 / 4),
        ConfusedPair("a", "c", 2, 2 / 7),
        ConfusedPair("c", "b", 2, 2 / 7),
        ConfusedPair("c", "d", 1, 1 / 7),
    ]
    assert most_confused_pairs(matrix, names, top=2) == [
        ConfusedPair("b", "a", 3, 3 / 4),
        ConfusedPair("a", "c", 2, 2 / 7),
    ]
    assert most_confused_pairs(torch.eye(4, dtype=torch.int64), names) == []
    with pytest.raises(ValueError, match="square matrix"):
        most_confused_pairs(matrix, names[:3])


def test_written_files_hold_the_right_rows(tmp_path: Path) -> None:
    analysis = write_error_analysis(tmp_path / "analysis", FILES, LABELS, PROBABILITIES, CLASSES)
    assert sorted(path.name for path in (tmp_path / "analysis").iterdir()) == sorted(
        path.name for path in analysis.files.values()
    )

    predictions = read_csv(analysis.files["predictions"])
    assert [row["file"] for row in predictions] == FILES
    assert [row["true_label"] for row in predictions] == [CLASSES[i] for i in LABELS.tolist()]
    assert [row["predicted_label"] for row in predictions] == [CLASSES[i] for i in PREDICTED]
    assert [float(row["predicted_probability"]) for row in predictions] == pytest.approx(CONFIDENCE)
    assert float(predictions[2]["true_probability"]) == pytest.approx(0.2)  # (1 - 0.6) / 2
    assert float(predictions[0]["true_probability"]) == pytest.approx(0.9)
    assert [row["correct"] for row in predictions] == ["1", "1", "0", "1", "1", "1", "1", "0"]

    misclassified = read_csv(analysis.files["misclassified"])
    assert misclassified == [  # most confident error first
        {
            "file": FILES[7],
            "true_label": "up",
            "predicted_label": "yes",
            "predicted_probability": "0.900000",
            "true_probability": "0.050000",
        },
        {
            "file": FILES[2],
            "true_label": "yes",
            "predicted_label": "no",
            "predicted_probability": "0.600000",
            "true_probability": "0.200000",
        },
    ]

    per_class = read_csv(analysis.files["per_class"])
    assert [(row["class"], row["precision"], row["recall"], row["support"]) for row in per_class] == [
        ("yes", "0.666667", "0.666667", "3"),
        ("no", "0.750000", "1.000000", "3"),
        ("up", "1.000000", "0.500000", "2"),
    ]
    assert read_csv(analysis.files["confused_pairs"]) == [
        {"true_label": "yes", "predicted_label": "no", "count": "1", "share_of_true_class": "0.333333"},
        {"true_label": "up", "predicted_label": "yes", "count": "1", "share_of_true_class": "0.500000"},
    ]
    assert analysis.matrix.tolist() == [[2, 1, 0], [0, 3, 0], [1, 0, 1]]
    assert analysis.metrics["acc"] == pytest.approx(0.75)

    summary = analysis.files["summary"].read_text()
    assert "8 test clips, 2 misclassified. Accuracy: 0.7500. Macro-F1: 0.7302." in summary
    assert "| no | 0.7500 | 1.0000 | 0.8571 | 3 |" in summary
    assert "| up | yes | 1 | 50.0% |" in summary
    assert "[misclassified.csv](misclassified.csv)" in summary

    assert analysis.files["confusion_matrix"].read_bytes().startswith(b"\x89PNG")
    assert analysis.confusion_image.dtype == torch.uint8
    assert analysis.confusion_image.shape[0] == 3 and analysis.confusion_image.float().std() > 0


def test_same_inputs_write_byte_identical_files(tmp_path: Path) -> None:
    first = write_error_analysis(tmp_path / "first", FILES, LABELS, PROBABILITIES, CLASSES)
    second = write_error_analysis(tmp_path / "second", FILES, LABELS, PROBABILITIES, CLASSES)
    for name, path in first.files.items():
        assert path.read_bytes() == second.files[name].read_bytes(), name
    assert torch.equal(first.confusion_image, second.confusion_image)
    assert plt.get_fignums() == []  # the figure was closed after saving


def test_confusion_matrix_figures_for_35_classes_side_by_side() -> None:
    names = [f"word{index}" for index in range(35)]
    labels = torch.arange(35).repeat(3)
    rnn_predictions = labels.clone()
    rnn_predictions[:35:3] += 1  # one clip of each of 12 classes taken for the next class
    rnn = confusion_matrix(labels, rnn_predictions, 35)
    lstm = confusion_matrix(labels, labels, 35)
    figure = plot_confusion_matrices([("best RNN", rnn), ("best LSTM", lstm)], names)
    try:
        panels = [axes for axes in figure.axes if axes.get_title()]
        assert [axes.get_title() for axes in panels] == ["best RNN", "best LSTM"]
        assert [tick.get_text() for tick in panels[0].get_xticklabels()] == names
        # counts are written only in non-zero cells: 35 + 12 off the diagonal for the RNN
        assert len(panels[0].texts) == 35 + 12 and len(panels[1].texts) == 35
        shares = panels[0].images[0].get_array()  # row-normalised
        assert (shares[0, 0], shares[0, 1], shares[1, 1]) == pytest.approx((2 / 3, 1 / 3, 1.0))
    finally:
        plt.close(figure)
    single = plot_confusion_matrix(lstm, names, "one")
    try:
        assert [axes.get_title() for axes in single.axes if axes.get_title()] == ["one"]
    finally:
        plt.close(single)


@pytest.mark.parametrize(
    ("files", "labels", "probabilities", "message"),
    [
        (FILES[:7], LABELS, PROBABILITIES, "7 files but 8 labels"),
        (FILES, LABELS[:7], PROBABILITIES, "labels hold 7 clips but probabilities 8 rows"),
        (FILES, LABELS, PROBABILITIES[:, :2], "2 columns but there are 3 class_names"),
        (FILES, LABELS, PROBABILITIES[0], r"probabilities must have shape \(N, C\)"),
        (FILES, LABELS.float(), PROBABILITIES, "integer class indices"),
        (FILES, torch.tensor([0, 0, 0, 1, 1, 1, 2, 3]), PROBABILITIES, r"labels must lie in \[0, 2\].*\[3\]"),
        (FILES, torch.tensor([0, 0, 0, 1, 1, 1, 2, -1]), PROBABILITIES, r"labels must lie in .*\[-1\]"),
        (FILES, LABELS, PROBABILITIES.log(), "pass softmax outputs"),
        (FILES, LABELS, PROBABILITIES * 2, "sum to 1 per row"),
        ([], LABELS[:0], PROBABILITIES[:0], "no predictions"),
    ],
)
def test_bad_inputs_raise_clear_errors(
    tmp_path: Path, files: list[str], labels: torch.Tensor, probabilities: torch.Tensor, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        write_error_analysis(tmp_path, files, labels, probabilities, CLASSES)
    assert not any(tmp_path.iterdir())  # nothing written


def test_duplicate_or_missing_class_names_raise() -> None:
    with pytest.raises(ValueError, match="distinct"):
        classification_metrics(LABELS, PROBABILITIES, ["yes", "no", "yes"])
    with pytest.raises(ValueError, match="class_names is empty"):
        classification_metrics(LABELS, PROBABILITIES, [])
