"""Mask estimators: the TCN encoder keeps frames, the mask head is bounded, the task refuses what cannot
give a mask per STFT frame."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from src.encoders.tcn import TemporalConvNet
from src.tasks.denoising import DenoisingTask
from src.tasks.heads import MaskHead

CONF = "conf"


def test_tcn_keeps_every_frame_and_ignores_padding() -> None:
    encoder = TemporalConvNet(in_features=33, channels=16, num_blocks=3).eval()
    features = torch.randn(2, 33, 40)
    sequence, lengths = encoder(features, torch.tensor([40, 25]))
    assert sequence.shape == (2, 40, 16) and lengths.tolist() == [40, 25]
    assert torch.all(sequence[1, 25:] == 0)
    # the second example alone, its padding zero, gives the same real frames
    alone, _ = encoder(torch.cat([features[1:, :, :25], torch.zeros(1, 33, 15)], dim=-1), torch.tensor([25]))
    assert torch.allclose(alone[0, :25], sequence[1, :25], atol=1e-5)


def test_mask_head_is_bounded_and_laid_out_as_the_stft() -> None:
    head = MaskHead(in_features=8, num_bins=5, max_gain=2.0)
    masks = head(100 * torch.randn(3, 7, 8))
    assert masks.shape == (3, 5, 7)
    assert masks.min() >= 0 and masks.max() <= 2.0 and masks.max() > 1.0
    with pytest.raises(ValueError, match=r"task\.head\.max_gain"):
        MaskHead(in_features=8, num_bins=5, max_gain=0)


def _task(**changes) -> DenoisingTask:
    def node(path: str) -> dict:
        config = OmegaConf.to_container(OmegaConf.load(f"{CONF}/{path}.yaml"))
        config.pop("defaults", None)
        return config

    task = node("task/denoising")
    for key in ("_target_", "spec_augment", "compression", "sample_rate"):
        task.pop(key)
    settings = {
        **task,
        "frontend": node("frontend/stft"),
        "encoder": {**node("model/gru"), "bidirectional": True, "hidden_size": 8},
        "optimizer": {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3},
        "label_names": [],
        "example_samples": 16000,
        "sample_rate": 16000,
    }
    settings.update(changes)
    return DenoisingTask(**settings)


def test_task_enhances_a_batch_to_waveforms_zero_after_their_lengths() -> None:
    task = _task(standardize_features=False).eval()
    noisy = torch.randn(2, 16000)
    with torch.no_grad():
        enhanced = task(noisy, torch.tensor([16000, 9000]))
    assert enhanced.shape == noisy.shape
    assert torch.all(enhanced[1, 9000:] == 0) and enhanced[1, :9000].abs().sum() > 0


def test_task_refuses_a_frontend_without_inverse_and_an_encoder_that_pools_time() -> None:
    logmel = {"_target_": "src.frontends.LogMelFilterBanks", "sample_rate": 16000, "n_mels": 40}
    with pytest.raises(ValueError, match="frontend=stft"):
        _task(frontend=logmel)
    conv1d = {"_target_": "src.encoders.conv1d.Conv1dCNN", "channels": [8, 8], "kernel_size": 3, "groups": 1}
    with pytest.raises(ValueError, match="model=bigru"):
        _task(encoder=conv1d)
    with pytest.raises(ValueError, match=r"task\.loss"):
        _task(loss="l1")
