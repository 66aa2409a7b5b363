"""Denoise audio files with a checkpoint of ``task=denoising`` (``denoise.py``): which files, read how,
written where, and the CSV.

Inputs (``inputs=``) are what ``predict.py`` takes (:func:`src.deployment.prediction.list_inputs`): one
audio file, a folder searched recursively for ``.wav``/``.flac``/``.ogg`` files in sorted order, or a
``.txt`` list of files relative to its own folder.

Each file is read with :func:`src.data.common.audio.read_clip` at the checkpoint's rate
(``task.sample_rate``: channels averaged, other rates resampled with
:func:`torchaudio.functional.resample`, as in training), enhanced whole in one forward pass (the STFT
mask works on any length; files shorter than the STFT's padding are zero-padded for it and cut back),
resampled back to the file's own rate and cut to its own number of samples, and written as a mono
16-bit PCM WAV (samples clipped to ``[-1, 1]``). A whole file is one pass, so memory grows with its
length (the STFT, the encoder's activations): split recordings of hours before.

Outputs keep the inputs' names with the ending ``.wav``, under ``output_dir`` at the path of the input
relative to a folder input (or to a list file's folder; other files by name alone). ``denoised.csv`` in
``output_dir`` has one row per input (:data:`CSV_COLUMNS`); a file that cannot be read is a row with its
``error`` and no output, and the others go on.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf
import torch
import torchaudio.functional as AF
from omegaconf import DictConfig

from src.callbacks.run_config import load_task_checkpoint
from src.data.common.audio import AudioFixReport, fit_length, read_clip
from src.denoising.classical import BASELINES
from src.deployment.prediction import LIST_SUFFIX, list_inputs
from src.tasks.denoising import MODEL, DenoisingTask
from src.training import corpus_note
from src.utils.config_values import choice, flag
from src.utils.run_files import atomic_write, write_json_atomic

log = logging.getLogger(__name__)

METHODS = (MODEL, *BASELINES)
"""``method=``: the checkpoint's mask estimator, or a classical baseline on the checkpoint's STFT."""
CSV_NAME = "denoised.csv"
CSV_COLUMNS = ("input", "output", "sample_rate", "seconds", "error")
"""Columns of ``denoised.csv``: the input file, the WAV written (empty for a failed file), the file's
sample rate in Hz (input and output), its length in seconds, and why it failed (empty otherwise)."""
OUTPUT_SUBTYPE = "PCM_16"
"""Sample format of the WAVs written (that of the corpora the project reads)."""


@dataclass(frozen=True)
class LoadedDenoiser:
    """A denoising checkpoint read for inference: the task (CPU, eval mode) and its run config."""

    task: DenoisingTask
    run_config: DictConfig
    ckpt_path: Path


@dataclass(frozen=True)
class DenoisedFile:
    """One input: ``output`` is ``None`` when it could not be read (``error`` says why); ``sample_rate``
    (Hz) and ``seconds`` are the input's (0 when it could not be read)."""

    input: Path
    output: Path | None
    sample_rate: int = 0
    seconds: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class DenoiseSettings:
    """``denoise.py``'s config, checked (see ``conf/denoise.yaml`` for each key's meaning)."""

    ckpt_path: Path
    inputs: list[Path]
    outputs: list[Path]
    output_dir: Path
    method: str


def load_denoiser(ckpt_path: str | Path, key: str = "ckpt_path") -> LoadedDenoiser:
    """The denoising task of a ``train.py data=denoising`` checkpoint, on the CPU, in eval mode.

    Raises:
        FileNotFoundError, IsADirectoryError, ValueError: from
            :func:`src.callbacks.run_config.load_run_config` for a file that is no checkpoint of this
            project.
        ValueError: for a checkpoint of a task that does not enhance speech (keyword spotting, CTC),
            naming ``key`` (the command's config key of the checkpoint) and the run that writes one.
    """
    task, run_config = load_task_checkpoint(
        ckpt_path,
        DenoisingTask.TARGETS,
        "not a denoiser: pass a checkpoint of a run of `python train.py data=denoising`, e.g. "
        f"{key}=logs/train/runs/<run>/checkpoints/last.ckpt",
        key,
    )
    return LoadedDenoiser(task=task, run_config=run_config, ckpt_path=Path(ckpt_path))


def output_paths(inputs: Path, files: Sequence[Path], output_dir: Path) -> list[Path]:
    """Where each of ``files`` (listed from ``inputs``) is written: ``output_dir`` / its path relative to
    a folder ``inputs`` (or to a list file's folder; by its name alone outside it), ending in ``.wav``.

    Raises:
        ValueError: two files would be written to one path (``a.wav`` and ``a.flac``), a folder input
            holds ``output_dir`` (later runs would take the outputs for inputs), or an output would
            replace its input.
    """
    if inputs.is_dir():
        base: Path | None = inputs
        if output_dir.resolve().is_relative_to(inputs.resolve()):
            raise ValueError(
                f"output_dir={output_dir} lies inside inputs={inputs}, so a later run would denoise the "
                "denoised files again: choose an output_dir outside it (or output_dir=null: a run folder)"
            )
    else:
        base = inputs.parent if inputs.suffix.lower() == LIST_SUFFIX else None
    outputs = []
    for path in files:
        inside = base is not None and path.resolve().is_relative_to(base.resolve())
        relative = path.resolve().relative_to(base.resolve()) if inside else Path(path.name)
        outputs.append(output_dir / relative.with_suffix(".wav"))
    sources: dict[Path, Path] = {}
    originals = {path.resolve() for path in files}
    for path, output in zip(files, outputs, strict=True):
        if output.resolve() in originals:
            raise ValueError(
                f"output_dir={output_dir} would replace the input {path} with its denoised version: choose "
                "another output_dir (or output_dir=null: a run folder)"
            )
        if (other := sources.setdefault(output.resolve(), path)) != path:
            raise ValueError(
                f"{other} and {path} would both be written to {output}: rename one, or denoise them in "
                "separate runs"
            )
    return outputs


def denoise_settings(cfg: DictConfig) -> DenoiseSettings:
    """Check ``denoise.py``'s config before any model is loaded; ``output_dir`` defaults to this run's
    folder (``cfg.paths.output_dir``).

    Raises:
        ValueError: a key has a value that cannot work (the message names it and one that does), the
            outputs cannot be placed (:func:`output_paths`), or some of them (or ``denoised.csv``) exist
            without ``overwrite=true``.
        FileNotFoundError: ``inputs`` does not exist.
    """
    method = str(choice("method", cfg.method, METHODS))
    overwrite = flag("overwrite", cfg.overwrite)
    output_dir = Path(cfg.output_dir if cfg.output_dir is not None else cfg.paths.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"output_dir={output_dir} is a file: name a folder, e.g. output_dir=denoised")
    inputs = list_inputs(cfg.inputs)
    outputs = output_paths(Path(cfg.inputs), inputs, output_dir)
    existing = [path for path in (*outputs, output_dir / CSV_NAME) if path.exists()]
    if existing and not overwrite:
        raise ValueError(
            f"output_dir={output_dir} already holds {len(existing)} of the files this run writes (e.g. "
            f"{existing[0]}): choose another output_dir= or pass overwrite=true to replace them"
        )
    return DenoiseSettings(Path(cfg.ckpt_path), inputs, outputs, output_dir, method)


def enhance(task: DenoisingTask, wave: torch.Tensor, method: str = MODEL) -> torch.Tensor:
    """Enhance a ``(time,)`` waveform at ``task.sample_rate`` in one pass with ``method`` (the model, or
    a baseline of :data:`src.denoising.classical.BASELINES` on the task's STFT) -> ``(time,)``.

    Waveforms no longer than the STFT's centring padding (``n_fft // 2`` samples) are zero-padded past it
    and the output cut back to ``time``.
    """
    length = wave.shape[-1]
    padded = fit_length(wave, max(length, task.frontend.n_fft // 2 + 1))[None]
    lengths = torch.tensor([length])
    with torch.inference_mode():
        enhanced = task(padded, lengths) if method == MODEL else task.baseline(method, padded, lengths)
    return enhanced[0, :length]


def denoise_file(
    task: DenoisingTask, path: Path, output: Path, method: str = MODEL, report: AudioFixReport | None = None
) -> DenoisedFile:
    """Denoise one file (module docstring) and write ``output`` atomically, at the file's own rate and
    length; a file that cannot be read (missing, corrupt: ``OSError``/``ValueError`` of
    :func:`~src.data.common.audio.read_clip`) gives a :class:`DenoisedFile` with its ``error``."""
    try:
        wave = read_clip(path, task.sample_rate, report=report)
    except (OSError, ValueError) as error:
        return DenoisedFile(path, None, error=f"{type(error).__name__}: {error}")
    info = sf.info(path)
    enhanced = enhance(task, wave, method)
    if info.samplerate != task.sample_rate:
        enhanced = AF.resample(enhanced, task.sample_rate, info.samplerate)
    # Resampling there and back gives at least the file's samples (lengths round up); pad only to be safe.
    enhanced = fit_length(enhanced[: info.frames], info.frames)
    with atomic_write(output, "wb") as stream:
        sf.write(stream, enhanced.clamp(-1, 1).numpy(), info.samplerate, subtype=OUTPUT_SUBTYPE, format="WAV")
    return DenoisedFile(path, output, info.samplerate, info.frames / info.samplerate)


def write_denoised_csv(path: Path, results: Sequence[DenoisedFile]) -> None:
    """Write one row per input to ``path`` (atomically) with :data:`CSV_COLUMNS`; seconds with 3
    decimals; a failed file has only ``input`` and ``error``."""
    with atomic_write(path) as stream:
        writer = csv.DictWriter(stream, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for result in results:
            row: dict[str, object] = {"input": str(result.input), "error": result.error}
            if result.output is not None:
                row |= {
                    "output": str(result.output),
                    "sample_rate": result.sample_rate,
                    "seconds": f"{result.seconds:.3f}",
                }
            writer.writerow(row)


def run_denoising(cfg: DictConfig) -> dict[str, Any]:
    """``denoise.py``: check the config, load the checkpoint, denoise every input, write the WAVs and
    ``denoised.csv`` (in ``output_dir``) and ``summary.json`` (in ``cfg.paths.output_dir``), and return
    that summary: ``output_dir``, ``csv``, ``inputs``, ``written``, ``failed``, ``method``, the
    checkpoint, its sample rate and the note of the corpus it was trained on.

    Raises:
        What :func:`denoise_settings` and :func:`load_denoiser` raise, before any input is read.
    """
    settings = denoise_settings(cfg)
    loaded = load_denoiser(settings.ckpt_path)
    task = loaded.task
    report = AudioFixReport()
    results = [
        denoise_file(task, path, output, settings.method, report)
        for path, output in zip(settings.inputs, settings.outputs, strict=True)
    ]
    # Nothing is cut to a length here, so the length log_summary reports truncation against is unused.
    report.log_summary("denoise.py inputs", task.sample_rate, 0)
    csv_path = settings.output_dir / CSV_NAME
    write_denoised_csv(csv_path, results)
    failed = sum(bool(result.error) for result in results)
    summary = {
        "checkpoint": str(settings.ckpt_path),
        "method": settings.method,
        "model_sample_rate": task.sample_rate,
        "trained_on": corpus_note(loaded.run_config.data.get("corpus")),
        "output_dir": str(settings.output_dir),
        "csv": str(csv_path),
        "inputs": len(results),
        "written": len(results) - failed,
        "failed": failed,
    }
    write_json_atomic(Path(cfg.paths.output_dir) / "summary.json", summary)
    return summary
