"""model=cnn2d: the mel-CNN, 2D convolution blocks with pooling flattened into fully connected layers."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from src.encoders.cnn2d import CNN2d
from src.utils.complexity import count_parameters
from tests.conftest import CONFIG_DIR


def test_the_config_has_growing_channels_and_pooling_then_a_fully_connected_layer() -> None:
    encoder = instantiate(OmegaConf.load(CONFIG_DIR / "model" / "cnn2d.yaml"), in_features=40, num_frames=101)
    convolutions = [layer for layer in encoder.convolutions if isinstance(layer, nn.Conv2d)]
    assert [layer.out_channels for layer in convolutions] == [16, 32, 64]
    assert sum(isinstance(layer, nn.MaxPool2d) for layer in encoder.convolutions) == 3
    # 40 x 101 pooled three times (rounding up): 20 x 51, 10 x 26, 5 x 13
    assert encoder.flat_features == 64 * 5 * 13
    conv = 9 * (1 * 16 + 16 * 32 + 32 * 64) + 2 * (16 + 32 + 64)  # weights and batch-norm scales/shifts
    assert count_parameters(encoder) == conv + 64 * 5 * 13 * 128 + 128
    sequence, lengths = encoder.eval()(torch.randn(2, 40, 101))
    assert sequence.shape == (2, 1, 128) and encoder.out_features == 128 and lengths.tolist() == [1, 1]
    assert not encoder.keeps_time


def test_the_output_depends_on_every_part_of_the_image() -> None:
    torch.manual_seed(0)
    encoder = CNN2d(in_features=8, num_frames=9, channels=[4], hidden=[6], dropout=0.0).eval()
    features = torch.randn(1, 8, 9)
    for row, frame in [(0, 0), (7, 8), (3, 4)]:
        changed = features.clone()
        changed[0, row, frame] += 5.0
        assert not torch.allclose(encoder(changed)[0], encoder(features)[0])


def test_settings_that_cannot_work_are_refused_naming_the_key() -> None:
    with pytest.raises(ValueError, match=r"model=cnn2d reads exactly model\.num_frames=9 frames"):
        CNN2d(in_features=8, num_frames=9).check_input_frames(10)
    with pytest.raises(ValueError, match=r"model\.kernel_size must be odd .*model\.kernel_size=3"):
        CNN2d(in_features=8, num_frames=9, kernel_size=2)
    with pytest.raises(ValueError, match=r"model\.channels must all be >= 1"):
        CNN2d(in_features=8, num_frames=9, channels=[4, 0])
    with pytest.raises(ValueError, match=r"model\.num_frames is not set"):
        CNN2d(in_features=8, num_frames=None)
