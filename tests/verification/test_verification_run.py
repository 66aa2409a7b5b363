"""``python train.py data=speaker_verification`` end to end on the tiny corpus: trials, metrics, outputs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.data.verification.datamodule import SpeakerVerificationDataModule
from src.tasks.speaker_verification import SpeakerVerificationTask
from tests.conftest import compose_config


def test_run_reports_eer_and_min_dcf_of_each_condition(verification_run: dict) -> None:
    metrics = verification_run["metrics"]
    assert verification_run["test_metric"] == "test/eer"
    assert verification_run["test_metric_mode"] == "min"
    assert verification_run["corpus_note"].startswith("generated corpus")
    for name in ("eer", "min_dcf", "eer_text_dependent", "eer_text_independent", "miss_at_val_threshold"):
        assert 0.0 <= metrics[f"test/{name}"] <= 1.0, name
    analysis = verification_run["test_analysis"]
    assert analysis["trials"] == 2 * analysis["target_trials"] > 0
    assert sum(analysis["trials_per_condition"].values()) == analysis["trials"]


def _datamodule(verification_run: dict) -> SpeakerVerificationDataModule:
    cfg = compose_config("config", verification_run["overrides"])
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.setup(None)
    return datamodule


def test_trials_never_share_a_speaker_across_splits(verification_run: dict) -> None:
    datamodule = _datamodule(verification_run)
    train_speakers = set(datamodule.speakers("train"))
    trial_speakers = {}
    for split in ("val", "test"):
        speakers = datamodule.speakers(split)
        trials = datamodule.trials(split)
        trial_speakers[split] = {speakers[int(i)] for i in trials.items()}
        assert len(trial_speakers[split]) >= 2
        assert not trial_speakers[split] & train_speakers
    assert not trial_speakers["val"] & trial_speakers["test"]


def test_trials_are_kept_beside_the_cache_as_label_enroll_test(verification_run: dict) -> None:
    datamodule = _datamodule(verification_run)
    path = datamodule.trials_path("test")
    assert path.parent.name == "speaker_trials" and path.parent.parent.name == ".cache"
    files = set(datamodule.files("test"))
    lines = [line.split() for line in path.read_text().splitlines()]
    assert len(lines) == verification_run["test_analysis"]["trials"]
    assert all(label in ("0", "1") and enroll in files and test in files for label, enroll, test in lines)


def test_training_batches_are_groups_of_one_speaker(verification_run: dict) -> None:
    datamodule = _datamodule(verification_run)
    waves, lengths, speakers, items = next(iter(datamodule.train_dataloader()))
    names = datamodule.label_names
    spoken = datamodule.speech.speakers("train")
    groups = speakers.view(-1, datamodule.group_size)
    assert bool((groups == groups[:, :1]).all())
    assert [names[int(s)] for s in speakers] == [spoken[int(i)] for i in items]
    assert int(lengths.max()) == waves.shape[1]


def test_the_test_writes_every_trial_score_and_the_det_curve(verification_run: dict) -> None:
    folder = Path(verification_run["output_dir"]) / "verification"
    with (folder / "trial_scores.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == verification_run["test_analysis"]["trials"]
    assert {row["condition"] for row in rows} == {"text_dependent", "text_independent"}
    assert all(-1.0 - 1e-5 <= float(row["score"]) <= 1.0 + 1e-5 for row in rows)
    assert (folder / "det_curve.png").stat().st_size > 0


def test_the_checkpoint_keeps_the_validation_eer_threshold(verification_run: dict) -> None:
    task = SpeakerVerificationTask.load_from_checkpoint(
        verification_run["last_checkpoint"], map_location="cpu"
    )
    threshold = float(task.eer_threshold)
    assert math.isfinite(threshold) and -1.0 <= threshold <= 1.0
    assert threshold == pytest.approx(verification_run["test_analysis"]["val_eer_threshold"])
    embeddings = task.eval()(torch.randn(3, 16000) * 0.1)
    assert torch.allclose(embeddings.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_tensorboard_gets_score_histograms_det_curves_and_the_projector(verification_run: dict) -> None:
    histograms: set[str] = set()
    images: set[str] = set()
    folder = Path(verification_run["output_dir"]) / "tensorboard"
    for events in folder.rglob("events.out.tfevents*"):
        accumulator = EventAccumulator(str(events), size_guidance={"histograms": 0, "images": 0})
        accumulator.Reload()
        histograms |= set(accumulator.Tags()["histograms"])
        images |= set(accumulator.Tags()["images"])
    for stage in ("validation", "test"):
        assert {
            f"verification/{stage}/target_scores",
            f"verification/{stage}/non_target_scores",
        } <= histograms
        assert f"verification/{stage}/det" in images
    assert list(folder.rglob("projector_config.pbtxt"))
