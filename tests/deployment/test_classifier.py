"""The checkpoint as one module gives the task's own logits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.deployment.classifier import load_classifier
from src.tasks.classification import ClassificationTask


def test_the_waveform_classifier_gives_the_tasks_logits(yesno_checkpoint: Path) -> None:
    loaded = load_classifier(yesno_checkpoint)
    task = ClassificationTask.load_from_checkpoint(yesno_checkpoint, map_location="cpu").eval()
    waveforms = torch.randn(3, loaded.model.clip_samples) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(waveforms), task(waveforms), rtol=0, atol=0)
    assert loaded.model.class_names == ["yes", "no"]
    assert loaded.model.sample_rate == 16000
    assert not loaded.model.training


def test_a_checkpoint_of_another_task_is_refused(tmp_path: Path, yesno_checkpoint: Path) -> None:
    checkpoint = torch.load(yesno_checkpoint, map_location="cpu", weights_only=True)
    checkpoint["run_config"]["task"]["_target_"] = "src.tasks.phone_recognition.PhoneRecognitionTask"
    torch.save(checkpoint, tmp_path / "ctc.ckpt")
    with pytest.raises(ValueError, match="serves clip classifiers"):
        load_classifier(tmp_path / "ctc.ckpt")
