"""Predictions of a clip classifier on audio files (``predict.py``): which files, read how, and the CSVs.

Inputs (``inputs=``) are one audio file; a folder, searched recursively for ``.wav``, ``.flac`` and
``.ogg`` files (any case), in sorted path order; or a ``.txt`` file listing audio files one a line
(blank lines and lines starting with ``#`` skipped), relative paths resolved against the list file's
folder, as Speech Commands' ``testing_list.txt`` names its clips.

Each file is read with :func:`src.data.common.audio.read_clip` at the checkpoint's sample rate (channels
averaged, other rates resampled, as in training). A file no longer than the model's clip is zero-padded
at the end to it (:func:`src.data.common.audio.fit_length`, as the data module does) and its true length
is passed on, so encoders that mask padding see it as in training; a longer one is
scanned with clip-long windows every ``hop`` samples (:func:`src.deployment.detection.window_starts`),
and its row is the window whose most probable keyword (a class other than ``_silence_``/``_unknown_``)
is most probable: ``window_start_s`` says where it starts, ``windows`` how many were scanned. A file that
cannot be read becomes a row with its ``error`` and no prediction; the others go on.

A file's true label is its parent folder's name when that is one of the classes; with an ``_unknown_``
class, a clip of a word folder (a folder not starting with ``_`` or ``.``) of a Speech Commands corpus
folder (one with a split list) that is no class is ``_unknown_``, as the 12-class protocol draws its
``_unknown_`` clips from the other words of the corpus (:mod:`src.data.speech_commands.splits`). Other
files have none (empty ``true_label``) and count in no accuracy.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from src.data.common.audio import AudioFixReport, fit_length, read_clip
from src.data.speech_commands.layout import is_corpus_folder
from src.data.speech_commands.splits import UNKNOWN_LABEL
from src.deployment.classifier import WaveformClassifier, load_classifier
from src.deployment.detection import (
    BACKGROUND_LABELS,
    Detection,
    detect_keywords,
    smooth_posteriors,
    window_starts,
)
from src.deployment.long_recording import TruthClip, read_truth, score_detections
from src.deployment.quantization import quantize_backbone
from src.training import corpus_note
from src.utils.config_values import choice, flag, positive_int, positive_number, real_number
from src.utils.run_files import atomic_write, write_json_atomic

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg"})
"""File name endings (compared in lower case) of the audio files a folder input is searched for."""
LIST_SUFFIX = ".txt"
"""An ``inputs=`` file with this ending is a list of audio files, not audio."""
MODES = ("classify", "detect")
OUTPUT_NAMES = {"classify": "predictions.csv", "detect": "detections.csv"}
"""The CSV each mode writes into the run folder unless ``output=`` names one."""
DETECTION_COLUMNS = ("file", "label", "start_s", "end_s", "score", "error")
"""Columns of the detections CSV (``mode=detect``)."""


@dataclass(frozen=True)
class ClipPrediction:
    """The prediction for one file: ``probabilities`` ``(classes,)`` (``None`` when the file could not be
    read, with ``error`` saying why), from the window starting at ``window_start_s`` of ``windows``."""

    file: str
    true_label: str
    probabilities: np.ndarray | None = None
    window_start_s: float = 0.0
    windows: int = 0
    error: str = ""


@dataclass(frozen=True)
class FileDetections:
    """The detections in one recording of ``duration_s`` seconds, or the ``error`` that stopped it."""

    file: str
    detections: tuple[Detection, ...] = ()
    duration_s: float = 0.0
    error: str = ""


def list_inputs(inputs: str | Path, key: str = "inputs") -> list[Path]:
    """The audio files ``inputs`` names (see the module docstring), in order; errors name it as the
    config key ``key``.

    Raises:
        FileNotFoundError: ``inputs`` does not exist.
        ValueError: a folder holds no audio file, or a list file is not UTF-8 text or lists none.
    """
    inputs = Path(inputs)
    example = f"{key}=data/generated/SpeechCommands/speech_commands_v0.02/testing_list.txt"
    if not inputs.exists():
        raise FileNotFoundError(
            f"{key}={inputs} does not exist: give a WAV, a folder or a list file, e.g. {example}"
        )
    if inputs.is_dir():
        found = sorted(path for path in inputs.rglob("*") if path.suffix.lower() in AUDIO_SUFFIXES)
        files = [path for path in found if path.is_file()]
        if not files:
            raise ValueError(
                f"{key}={inputs} is a folder without audio files ({', '.join(sorted(AUDIO_SUFFIXES))}, "
                f"searched recursively): point it at the folder that holds them, e.g. {example}"
            )
        return files
    if inputs.suffix.lower() != LIST_SUFFIX:
        return [inputs]
    try:
        text = inputs.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{key}={inputs} is not UTF-8 text ({error}): list one audio file a line") from error
    entries = [line.strip() for line in text.splitlines()]
    files = [inputs.parent / entry for entry in entries if entry and not entry.startswith("#")]
    if not files:
        raise ValueError(
            f"{key}={inputs} lists no audio files: write one path a line, e.g. yes/0a7c2a8d_nohash_0.wav"
        )
    return files


def true_label(path: Path, class_names: Sequence[str]) -> str:
    """The class of a file known from where it lies, or ``""`` (the rule of the module docstring)."""
    folder = path.parent
    if folder.name in class_names:
        return folder.name
    is_word_folder = folder.name and not folder.name.startswith(("_", "."))
    if UNKNOWN_LABEL in class_names and is_word_folder and is_corpus_folder(folder.parent):
        return UNKNOWN_LABEL
    return ""


def class_probabilities(
    model: WaveformClassifier, waveforms: torch.Tensor, lengths: torch.Tensor | None = None
) -> np.ndarray:
    """Softmax of the model's logits: ``(batch, clip_samples)`` waveforms and their ``(batch,)`` true
    lengths (``None``: every sample real) -> ``(batch, classes)`` float32, under ``torch.inference_mode``."""
    with torch.inference_mode():
        return torch.softmax(model(waveforms, lengths), dim=-1).numpy()


def window_posteriors(
    model: WaveformClassifier, waveform: torch.Tensor, hop_samples: int, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities of every clip-long window of a ``(time,)`` waveform (windows as
    :func:`~src.deployment.detection.window_starts` places them, ``batch_size`` at a time): ``(starts
    (windows,) samples, posteriors (windows, classes))``."""
    clip = model.clip_samples
    starts = window_starts(len(waveform), clip, hop_samples)
    padded = fit_length(waveform, max(len(waveform), clip))
    posteriors = [
        class_probabilities(model, torch.stack([padded[start : start + clip] for start in batch]))
        for batch in _chunks(starts.tolist(), batch_size)
    ]
    return starts, np.concatenate(posteriors)


def decisive_window(posteriors: np.ndarray, class_names: Sequence[str]) -> int:
    """Index of the window (row of ``(windows, classes)`` posteriors) whose most probable keyword (class
    not in :data:`~src.deployment.detection.BACKGROUND_LABELS`) is most probable; the first on ties."""
    keywords = [i for i, name in enumerate(class_names) if name not in BACKGROUND_LABELS]
    return int(np.argmax(posteriors[:, keywords].max(axis=1)))


def predict_files(
    model: WaveformClassifier,
    paths: Sequence[Path],
    hop_samples: int,
    batch_size: int,
    report: AudioFixReport | None = None,
) -> list[ClipPrediction]:
    """One :class:`ClipPrediction` per path, in order: files no longer than a clip padded and run
    ``batch_size`` at a time, longer ones scanned (module docstring), unreadable ones an error row."""
    results: list[ClipPrediction | None] = [None] * len(paths)
    pending: list[tuple[int, torch.Tensor]] = []

    def run_pending() -> None:
        waveforms = torch.stack([fit_length(wave, model.clip_samples) for _, wave in pending])
        lengths = torch.tensor([len(wave) for _, wave in pending])
        probabilities = class_probabilities(model, waveforms, lengths)
        for (index, _), row in zip(pending, probabilities, strict=True):
            results[index] = ClipPrediction(
                str(paths[index]), true_label(paths[index], model.class_names), row, 0.0, 1
            )
        pending.clear()

    for index, path in enumerate(paths):
        label = true_label(path, model.class_names)
        try:
            wave = read_clip(path, model.sample_rate, report=report)
        except (OSError, ValueError) as error:  # missing, unreadable, corrupt (AudioDecodeError)
            results[index] = ClipPrediction(str(path), label, error=_error_text(error))
            continue
        if len(wave) <= model.clip_samples:
            pending.append((index, wave))
            if len(pending) == batch_size:
                run_pending()
            continue
        starts, posteriors = window_posteriors(model, wave, hop_samples, batch_size)
        best = decisive_window(posteriors, model.class_names)
        start_s = float(starts[best]) / model.sample_rate
        results[index] = ClipPrediction(str(path), label, posteriors[best], start_s, len(starts))
    if pending:
        run_pending()
    return [result for result in results if result is not None]


def detect_files(
    model: WaveformClassifier,
    paths: Sequence[Path],
    hop_samples: int,
    smoothing_windows: int,
    threshold: float,
    batch_size: int,
    report: AudioFixReport | None = None,
) -> list[FileDetections]:
    """The keyword detections in each recording (the rule of :mod:`src.deployment.detection`), in order;
    an unreadable file gives its error and the others go on."""
    results = []
    for path in paths:
        try:
            wave = read_clip(path, model.sample_rate, report=report)
        except (OSError, ValueError) as error:
            results.append(FileDetections(str(path), error=_error_text(error)))
            continue
        starts, posteriors = window_posteriors(model, wave, hop_samples, batch_size)
        detections = detect_keywords(
            smooth_posteriors(posteriors, smoothing_windows),
            starts / model.sample_rate,
            model.clip_samples / model.sample_rate,
            model.class_names,
            threshold,
        )
        results.append(FileDetections(str(path), tuple(detections), len(wave) / model.sample_rate))
    return results


def prediction_columns(class_names: Sequence[str]) -> list[str]:
    """Columns of the predictions CSV: ``file, label, probability, p_<class>`` (one per class in the
    checkpoint's order) ``, true_label, window_start_s, windows, error``."""
    return [
        "file",
        "label",
        "probability",
        *(f"p_{name}" for name in class_names),
        "true_label",
        "window_start_s",
        "windows",
        "error",
    ]


def write_predictions_csv(
    path: Path, predictions: Sequence[ClipPrediction], class_names: Sequence[str]
) -> None:
    """Write ``predictions`` to ``path`` (atomically) with :func:`prediction_columns`; probabilities with
    6 decimals, seconds with 3; a failed file has only ``file``, ``true_label`` and ``error``."""
    rows = []
    for prediction in predictions:
        row = {"file": prediction.file, "true_label": prediction.true_label, "error": prediction.error}
        if prediction.probabilities is not None:
            best = int(np.argmax(prediction.probabilities))
            row |= {
                "label": class_names[best],
                "probability": f"{prediction.probabilities[best]:.6f}",
                "window_start_s": f"{prediction.window_start_s:.3f}",
                "windows": prediction.windows,
            }
            row |= {
                f"p_{name}": f"{p:.6f}" for name, p in zip(class_names, prediction.probabilities, strict=True)
            }
        rows.append(row)
    _write_csv(path, prediction_columns(class_names), rows)


def write_detections_csv(path: Path, results: Sequence[FileDetections]) -> None:
    """Write one row per detection, one per failed file (with its ``error``) and one per file read without
    a detection (an empty ``label``) to ``path``, atomically, with :data:`DETECTION_COLUMNS`; seconds with 3
    decimals, scores with 4."""
    rows: list[dict[str, object]] = []
    for result in results:
        if result.error or not result.detections:
            rows.append({"file": result.file, "error": result.error})
        rows += [
            {
                "file": result.file,
                "label": detection.label,
                "start_s": f"{detection.start_s:.3f}",
                "end_s": f"{detection.end_s:.3f}",
                "score": f"{detection.score:.4f}",
            }
            for detection in result.detections
        ]
    _write_csv(path, list(DETECTION_COLUMNS), rows)


def accuracy(predictions: Sequence[ClipPrediction], class_names: Sequence[str]) -> tuple[float, int]:
    """Share of the predicted files with a true label whose predicted label is it, and how many such files
    there are (``nan`` accuracy for none)."""
    labelled = [p for p in predictions if p.true_label and p.probabilities is not None]
    correct = sum(class_names[int(np.argmax(p.probabilities))] == p.true_label for p in labelled)
    return (correct / len(labelled) if labelled else float("nan")), len(labelled)


@dataclass(frozen=True)
class PredictSettings:
    """``predict.py``'s config, checked (see ``conf/predict.yaml`` for each key's meaning)."""

    ckpt_path: Path
    inputs: list[Path]
    mode: str
    output: Path
    batch_size: int
    quantize: str | None
    hop_seconds: float
    smoothing_windows: int
    threshold: float
    truth: list[TruthClip] | None
    tolerance_s: float


def predict_settings(cfg: DictConfig) -> PredictSettings:
    """Check ``predict.py``'s config before any model is loaded; the output defaults to
    ``predictions.csv`` (``mode=classify``) or ``detections.csv`` (``mode=detect``) in
    ``cfg.paths.output_dir``.

    Raises:
        ValueError: a key has a value that cannot work (the message names it and one that does), the
            output exists without ``overwrite=true``, or ``detect.truth`` is given for other than one
            recording in ``mode=detect``.
        FileNotFoundError: ``inputs`` or ``detect.truth`` does not exist.
    """
    mode = choice("mode", cfg.mode, MODES)
    batch_size = positive_int("batch_size", cfg.batch_size, 64)
    quantize = choice("quantize", cfg.quantize, (None, "int8"))
    hop_seconds = positive_number("hop_seconds", cfg.hop_seconds, 0.1)
    smoothing_windows = positive_int("detect.smoothing_windows", cfg.detect.smoothing_windows, 3)
    threshold = real_number("detect.threshold", cfg.detect.threshold, 0.5)
    if not 0 < threshold < 1:
        raise ValueError(f"detect.threshold must be in (0, 1), got {threshold}: e.g. detect.threshold=0.5")
    tolerance_s = positive_number("detect.tolerance_s", cfg.detect.tolerance_s, 0.5)
    overwrite = flag("overwrite", cfg.overwrite)
    output = (
        Path(cfg.output) if cfg.output is not None else Path(cfg.paths.output_dir) / f"{OUTPUT_NAMES[mode]}"
    )
    if output.exists() and not overwrite:
        raise ValueError(
            f"output={output} exists: choose another output= or pass overwrite=true to replace it"
        )
    if output.is_dir():
        raise ValueError(
            f"output={output} is a folder: name a CSV file, e.g. output={output / OUTPUT_NAMES[mode]}"
        )
    inputs = list_inputs(cfg.inputs)
    truth = None
    if cfg.detect.truth is not None:
        if mode != "detect" or len(inputs) != 1:
            raise ValueError(
                f"detect.truth={cfg.detect.truth} scores the detections of one recording: use it with "
                f"mode=detect and inputs= one WAV (got mode={mode} and {len(inputs)} inputs), or set "
                "detect.truth=null"
            )
        truth = read_truth(cfg.detect.truth)
    return PredictSettings(
        ckpt_path=Path(cfg.ckpt_path),
        inputs=inputs,
        mode=mode,
        output=output,
        batch_size=batch_size,
        quantize=quantize,
        hop_seconds=hop_seconds,
        smoothing_windows=smoothing_windows,
        threshold=threshold,
        truth=truth,
        tolerance_s=tolerance_s,
    )


def hop_samples(hop_seconds: float, model: WaveformClassifier) -> int:
    """``hop_seconds`` in samples of the model's rate.

    Raises:
        ValueError: it rounds to no sample, or is longer than the model's clip (windows would skip audio).
    """
    hop = round(hop_seconds * model.sample_rate)
    clip_s = model.clip_samples / model.sample_rate
    if not 1 <= hop <= model.clip_samples:
        raise ValueError(
            f"hop_seconds={hop_seconds} must be between one sample ({1 / model.sample_rate:.6f} s) and the "
            f"model's clip ({clip_s:g} s), or windows skip audio: e.g. hop_seconds=0.1"
        )
    return hop


def run_predictions(cfg: DictConfig) -> dict[str, Any]:
    """``predict.py``: check the config, load the checkpoint, predict (``mode=classify``) or detect
    (``mode=detect``) on every input, write the CSV and ``summary.json`` (in ``cfg.paths.output_dir``),
    and return that summary: ``output``, ``mode``, ``inputs``, ``failed``, the training corpus's note,
    and ``accuracy``/``labelled`` (classify) or ``detections`` and the ``score`` against ``detect.truth``.

    Raises:
        What :func:`predict_settings`, :func:`hop_samples` and
        :func:`~src.deployment.classifier.load_classifier` raise, before any input is read.
    """
    settings = predict_settings(cfg)
    loaded = load_classifier(settings.ckpt_path)
    model = loaded.model
    hop = hop_samples(settings.hop_seconds, model)
    if settings.quantize == "int8":
        model = quantize_backbone(model)
    summary: dict[str, Any] = {
        "mode": settings.mode,
        "checkpoint": str(settings.ckpt_path),
        "output": str(settings.output),
        "inputs": len(settings.inputs),
        "quantize": settings.quantize,
        "hop_seconds": settings.hop_seconds,
        "trained_on": corpus_note(loaded.run_config.data.get("corpus")),
        "class_names": model.class_names,
    }
    report = AudioFixReport()
    if settings.mode == "classify":
        predictions = predict_files(model, settings.inputs, hop, settings.batch_size, report)
        write_predictions_csv(settings.output, predictions, model.class_names)
        summary["failed"] = sum(bool(p.error) for p in predictions)
        summary["accuracy"], summary["labelled"] = accuracy(predictions, model.class_names)
    else:
        keywords = [name for name in model.class_names if name not in BACKGROUND_LABELS]
        if len(keywords) == len(model.class_names):
            log.warning(
                "The model has no %s class, so every window is one of its keywords: expect detections "
                "wherever there is no keyword (a data=kws12 model has them)",
                " or ".join(sorted(BACKGROUND_LABELS)),
            )
        results = detect_files(
            model,
            settings.inputs,
            hop,
            settings.smoothing_windows,
            settings.threshold,
            settings.batch_size,
            report,
        )
        write_detections_csv(settings.output, results)
        summary |= {
            "failed": sum(bool(r.error) for r in results),
            "detections": sum(len(r.detections) for r in results),
            "smoothing_windows": settings.smoothing_windows,
            "threshold": settings.threshold,
        }
        if settings.truth is not None and not results[0].error:
            score = score_detections(
                results[0].detections, settings.truth, keywords, settings.tolerance_s, results[0].duration_s
            )
            summary["score"] = asdict(score) | {
                "precision": score.precision,
                "recall": score.recall,
                "false_alarms_per_hour": score.false_alarms_per_hour,
            }
    report.log_summary("predict.py inputs", model.sample_rate, model.clip_samples)
    write_json_atomic(Path(cfg.paths.output_dir) / "summary.json", summary)
    return summary


def _write_csv(path: Path, columns: list[str], rows: Sequence[dict[str, object]]) -> None:
    with atomic_write(path) as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _error_text(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for first in range(0, len(items), size):
        yield items[first : first + size]
