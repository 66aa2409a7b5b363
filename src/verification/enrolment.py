"""``verify.py``: enrol a speaker from one or more recordings and score test recordings against them
with a checkpoint of ``python train.py data=speaker_verification``.

Each file is read at the checkpoint's sample rate (channels averaged, other rates resampled, as in
training) and embedded whole. The enrolment embedding is the L2-normalised mean of the enrolment files'
embeddings; a test file's score is its cosine similarity with it, accepted as the same speaker when it
reaches the threshold (by default the checkpoint's threshold at the validation EER).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from src.callbacks.run_config import load_task_checkpoint
from src.data.common.audio import AudioDecodeError, AudioFixReport, read_clip
from src.deployment.prediction import list_inputs
from src.tasks.speaker_verification import SpeakerVerificationTask
from src.training import corpus_note
from src.utils.run_files import write_json_atomic


@dataclass(frozen=True)
class LoadedVerifier:
    """A speaker-verification checkpoint: the task (CPU, eval mode), its sample rate and what it was
    trained on."""

    task: SpeakerVerificationTask
    sample_rate: int
    trained_on: str


def load_verifier(ckpt_path: str | Path, key: str = "ckpt_path") -> LoadedVerifier:
    """The task of a ``train.py data=speaker_verification`` checkpoint.

    Raises:
        FileNotFoundError, IsADirectoryError, ValueError: for a file that is no checkpoint of this project,
            or one of another task, naming ``key``.
    """
    task, run_config = load_task_checkpoint(
        ckpt_path,
        SpeakerVerificationTask.TARGETS,
        "not a speaker encoder: pass a checkpoint of a run of `python train.py data=speaker_verification`, "
        f"e.g. {key}=logs/train/runs/<run>/checkpoints/last.ckpt",
        key,
    )
    data = run_config.data
    return LoadedVerifier(task, int(data.sample_rate), corpus_note(data.get("corpus")))


def embed_files(verifier: LoadedVerifier, files: list[Path], key: str) -> torch.Tensor:
    """``(files, embedding_dim)`` unit-norm embeddings, each file embedded whole.

    Raises:
        ValueError: a file that cannot be decoded, naming ``key`` and the file.
    """
    rows = []
    report = AudioFixReport()
    for path in files:
        try:
            wave = read_clip(path, verifier.sample_rate, report=report)
        except (AudioDecodeError, OSError) as error:
            raise ValueError(
                f"{key}: cannot read {path} ({error}); give WAV, FLAC or OGG recordings"
            ) from error
        with torch.inference_mode():
            rows.append(verifier.task(wave.unsqueeze(0), torch.tensor([len(wave)]))[0])
    # Files are embedded whole, so nothing is cut to a length the summary would report truncation against.
    report.log_summary(f"{key} recordings", verifier.sample_rate, 0)
    return torch.stack(rows)


def run_verification(cfg: DictConfig) -> dict[str, Any]:
    """``verify.py``: enrol ``cfg.enroll``, score every file of ``cfg.test`` against it, write
    ``verification.json`` into the run folder and return it: per test file its cosine ``score`` and
    ``same_speaker`` decision, the ``threshold`` and where it came from.

    Raises:
        ValueError: for a checkpoint without a validation threshold and no ``threshold`` given, or inputs
            that cannot be read, naming the key.
    """
    verifier = load_verifier(cfg.ckpt_path)
    enroll_files = list_inputs(cfg.enroll, key="enroll")
    test_files = list_inputs(cfg.test, key="test")
    threshold, source = _threshold(cfg, verifier)
    enrolment = F.normalize(embed_files(verifier, enroll_files, "enroll").mean(dim=0), dim=0)
    scores = embed_files(verifier, test_files, "test") @ enrolment
    summary = {
        "checkpoint": str(cfg.ckpt_path),
        "trained_on": verifier.trained_on,
        "enroll": [str(path) for path in enroll_files],
        "threshold": threshold,
        "threshold_source": source,
        "tests": [
            {"file": str(path), "score": float(score), "same_speaker": bool(score >= threshold)}
            for path, score in zip(test_files, scores, strict=True)
        ],
    }
    write_json_atomic(Path(cfg.paths.output_dir) / "verification.json", summary)
    return summary


def _threshold(cfg: DictConfig, verifier: LoadedVerifier) -> tuple[float, str]:
    if cfg.get("threshold") is not None:
        return float(cfg.threshold), "threshold= on the command line"
    threshold = float(verifier.task.eer_threshold)
    if math.isnan(threshold):
        raise ValueError(
            f"ckpt_path={cfg.ckpt_path} holds no validation EER threshold (its run never finished a "
            "validation epoch): pass threshold=<cosine>, e.g. threshold=0.5, or a checkpoint of a longer run"
        )
    return threshold, "the checkpoint's threshold at its validation EER"
