from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from src.backbones.bcresnet import BCResNetFeatures
from src.backbones.crnn import CRNN
from src.backbones.sequence import BCResNetFrameClassifier, CRNNFrameClassifier, RecurrentFrameClassifier
from src.utils.complexity import count_macs
from tests.conftest import CONFIG_DIR

KINDS = ["bilstm", "bcresnet", "crnn_conv2d", "crnn_conv1d"]


def small_model(kind: str, in_features: int = 40, num_outputs: int = 7) -> nn.Module:
    """A small per-frame classifier whose BatchNorms have non-trivial running statistics."""
    torch.manual_seed(0)
    if kind == "bilstm":
        model = RecurrentFrameClassifier(in_features, num_outputs, hidden_size=6, num_layers=2)
    elif kind == "bcresnet":
        model = BCResNetFrameClassifier(in_features, num_outputs, width_multiplier=0.5, hidden_size=6)
    else:
        conv = kind.removeprefix("crnn_")
        model = CRNNFrameClassifier(in_features, num_outputs, conv=conv, conv_channels=[3, 4], hidden_size=6)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.normal_(0, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model


@pytest.mark.parametrize("frames", [1, 13, 50])
@pytest.mark.parametrize("kind", KINDS)
def test_one_output_per_frame(kind: str, frames: int) -> None:
    model = small_model(kind)
    assert model(torch.randn(3, 40, frames)).shape == (3, frames, 7)
    lengths = torch.tensor([frames, max(1, frames - 5), 1])
    assert model(torch.randn(3, 40, frames), lengths).shape == (3, frames, 7)


@pytest.mark.parametrize("in_features", [20, 40, 64])
@pytest.mark.parametrize("frames", [7, 98])
def test_bcresnet_strides_only_in_frequency_so_every_frame_is_kept(in_features: int, frames: int) -> None:
    features = BCResNetFeatures(in_features, width_multiplier=0.5)
    feature_map = features(torch.randn(2, in_features, frames))
    rows = max(
        1, -(-in_features // 8) - 4
    )  # head and two strided stages halve (rounded up), then 5 rows -> 1
    assert feature_map.shape == (2, features.widths[5], rows, frames)


@pytest.mark.parametrize("kind", KINDS)
def test_padding_does_not_change_the_outputs_of_real_frames(kind: str) -> None:
    model = small_model(kind).eval()
    short, long = torch.randn(1, 40, 30), torch.randn(1, 40, 45)
    garbage = 100 * torch.randn(1, 40, 15)  # padding content must not matter, whatever it is
    batch = torch.cat([long, torch.cat([short, garbage], dim=-1)])
    with torch.no_grad():
        padded = model(batch, torch.tensor([45, 30]))
        alone_long, alone_short = model(long), model(short)
    torch.testing.assert_close(padded[:1], alone_long, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(padded[1:, :30], alone_short, rtol=1e-5, atol=1e-5)


def test_bcresnet_without_lengths_would_see_the_padding() -> None:
    # The masks matter: the same padded batch without lengths changes the short example's real frames.
    features = BCResNetFeatures(40, width_multiplier=0.5).eval()
    short = torch.randn(1, 40, 30)
    padded = torch.cat([short, 100 * torch.randn(1, 40, 15)], dim=-1)
    with torch.no_grad():
        alone = features(short)
        masked = features(padded, torch.tensor([30]))[..., :30]
        unmasked = features(padded)[..., :30]
    torch.testing.assert_close(masked, alone, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(unmasked, alone, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_reach_every_parameter(kind: str) -> None:
    model = small_model(kind).train()
    logits = model(torch.randn(3, 40, 20), torch.tensor([20, 11, 5]))
    logits.log_softmax(-1).mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kind", KINDS)
def test_impossible_lengths_fail(kind: str) -> None:
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 20\]"):
        small_model(kind)(torch.randn(2, 40, 20), torch.tensor([20, 21]))


def test_bilstm_macs_are_the_lstm_plus_the_per_frame_classifier() -> None:
    model = RecurrentFrameClassifier(6, 5, hidden_size=4, num_layers=2)
    # per frame and direction: 4*4*I + 4*4*4 + 2*4*4 with I = 6, then I = 8; Linear(8, 5) with bias per frame
    lstm = (4 * 4 * 6 + 4 * 4 * 4 + 2 * 4 * 4) * 9 * 2 + (4 * 4 * 8 + 4 * 4 * 4 + 2 * 4 * 4) * 9 * 2
    assert model.encoder.recurrent_macs(9) == lstm
    assert count_macs(model, (6, 9)) == lstm + 9 * (8 * 5 + 5)


def test_bcresnet_lstm_macs_add_the_lstm_and_classifier_once_to_the_convolutions() -> None:
    model = BCResNetFrameClassifier(40, 5, width_multiplier=0.5, hidden_size=4, num_layers=1)
    convolutions = count_macs(model.features, (40, 9))
    assert convolutions > 0
    channels = model.features.widths[5]
    lstm = (4 * 4 * channels + 4 * 4 * 4 + 2 * 4 * 4) * 9 * 2
    assert count_macs(model, (40, 9)) == convolutions + lstm + 9 * (8 * 5 + 5)


@pytest.mark.parametrize("conv", ["conv1d", "conv2d"])
def test_crnn_frame_classifier_counts_what_the_crnn_does_but_classifies_every_frame(conv: str) -> None:
    settings = {"conv": conv, "conv_channels": [2, 3], "hidden_size": 4, "num_layers": 1}
    per_frame = CRNNFrameClassifier(in_features=6, num_outputs=5, **settings)
    pooled = CRNN(in_features=6, num_classes=5, pooling="mean", **settings)
    # Same convolutions and LSTM; one Linear(8, 5) per frame instead of one per clip.
    assert count_macs(per_frame, (6, 9)) == count_macs(pooled, (6, 9)) + 8 * (8 * 5 + 5)


def test_crnn_frame_classifier_has_the_crnn_encoder_parameters() -> None:
    settings = {"conv": "conv2d", "conv_channels": [2, 3], "hidden_size": 4, "num_layers": 1}
    per_frame = CRNNFrameClassifier(in_features=6, num_outputs=5, **settings)
    pooled = CRNN(in_features=6, num_classes=5, pooling="mean", **settings)
    assert sum(p.numel() for p in per_frame.parameters()) == sum(p.numel() for p in pooled.parameters())


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("bilstm_ctc", RecurrentFrameClassifier),
        ("bcresnet_bilstm_ctc", BCResNetFrameClassifier),
        ("crnn_ctc", CRNNFrameClassifier),
    ],
)
def test_config_files_instantiate_and_run(config: str, expected: type) -> None:
    model = instantiate(
        OmegaConf.load(CONFIG_DIR / "model" / f"{config}.yaml"), in_features=40, num_outputs=62
    )
    assert isinstance(model, expected)
    lengths = torch.tensor([37, 20])
    assert model(torch.randn(2, 40, 37), lengths).shape == (2, 37, 62)
