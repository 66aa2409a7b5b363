"""Tests for ``ClassificationTask``: true lengths reach the recurrent backbones, standardisation statistics
come from the training split only and travel in the checkpoint, SpecAugment acts in training only."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from src.frontends.standardization import FeatureStandardizer
from src.tasks.classification import ClassificationTask

SAMPLE_RATE = 16000
LOGMEL = {"_target_": "src.frontends.log_mel.LogMelFilterBanks", "n_mels": 20}
LSTM = {
    "_target_": "src.backbones.rnn.RecurrentClassifier",
    "cell": "lstm",
    "hidden_size": 16,
    "pooling": "last",
}
CONV1D = {"_target_": "src.backbones.conv1d.Conv1dCNN"}
ADAM = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3}


def make_task(backbone: dict, **kwargs: object) -> ClassificationTask:
    torch.manual_seed(0)
    return ClassificationTask(LOGMEL, backbone, ["a", "b", "c"], SAMPLE_RATE, ADAM, **kwargs).eval()


def test_padding_after_the_true_length_does_not_change_a_recurrent_model() -> None:
    task = make_task(LSTM)
    assert task.backbone_takes_lengths
    clip = torch.randn(1, 12000) * 0.1
    short = torch.nn.functional.pad(clip, (0, 4000))
    long = torch.nn.functional.pad(clip, (0, 20000))
    lengths = torch.tensor([12000])
    with torch.no_grad():
        torch.testing.assert_close(task(short, lengths), task(long, lengths))
        # without the lengths the padding is read as signal
        assert not torch.allclose(task(short), task(long))


def test_frame_lengths_follow_the_frontend_hop() -> None:
    task = make_task(CONV1D)
    assert not task.backbone_takes_lengths
    lengths = torch.tensor([16000, 12000, 1, 0])
    assert task.frame_lengths(lengths, frames=101).tolist() == [101, 76, 1, 1]


def _batches(scale: float, offset: float) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(int(offset))
    waves = torch.randn(4, SAMPLE_RATE, generator=generator) * scale
    lengths = torch.tensor([16000, 8000, 12000, 16000])
    waves[1, 8000:] = 0
    waves[2, 12000:] = 0
    return [(waves, lengths, torch.tensor([0, 1, 2, 0]))]


def test_standardisation_statistics_come_from_the_training_split_only() -> None:
    task = make_task(CONV1D, standardize_features=True)
    train, val = _batches(0.5, 1), _batches(0.01, 2)
    datamodule = SimpleNamespace(train_dataloader=lambda: train, val_dataloader=lambda: val)
    task.trainer = SimpleNamespace(datamodule=datamodule)  # what on_fit_start reads
    task.on_fit_start()

    waves, lengths, _ = train[0]
    features = task.frontend(waves)
    frames = task.frame_lengths(lengths, features.shape[-1])
    real = torch.cat([features[i, :, : frames[i]] for i in range(len(frames))], dim=1).double()
    torch.testing.assert_close(task.standardizer.mean, real.mean(dim=1).float())
    torch.testing.assert_close(task.standardizer.std, real.std(dim=1, correction=0).float())
    assert int(task.standardizer.frames_seen) == int(frames.sum())

    restored = make_task(CONV1D, standardize_features=True)
    restored.load_state_dict(task.state_dict())  # what a checkpoint carries
    assert restored.standardizer.fitted
    torch.testing.assert_close(restored.standardizer.mean, task.standardizer.mean)
    restored.trainer = SimpleNamespace(datamodule=SimpleNamespace(train_dataloader=lambda: val))
    restored.on_fit_start()  # resuming: the statistics are not measured again
    torch.testing.assert_close(restored.standardizer.mean, task.standardizer.mean)


def test_standardizer_refuses_to_run_unfitted() -> None:
    with pytest.raises(RuntimeError, match="no statistics yet"):
        FeatureStandardizer(4)(torch.zeros(1, 4, 3))


def test_spec_augment_masks_training_features_only() -> None:
    task = make_task(CONV1D, spec_augment={"freq_mask_param": 10, "num_freq_masks": 2, "time_shift_ms": 100})
    waves, lengths, _ = _batches(0.5, 3)[0]
    clean, _ = task.features(waves, lengths)
    task.train()
    torch.manual_seed(1)
    masked, _ = task.features(waves, lengths)
    assert not torch.equal(masked, clean)
    task.eval()
    torch.testing.assert_close(task.features(waves, lengths)[0], clean, rtol=0, atol=0)
