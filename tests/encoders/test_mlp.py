"""model=mlp: the compression study's baseline, flattened features through hidden layers of 1024."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from src.encoders.mlp import MLP
from src.utils.complexity import count_macs, count_parameters
from tests.conftest import CONFIG_DIR


def test_the_config_is_five_hidden_layers_of_1024_with_relu_and_dropout() -> None:
    encoder = instantiate(OmegaConf.load(CONFIG_DIR / "model" / "mlp.yaml"), in_features=40, num_frames=101)
    linear = [layer for layer in encoder.layers if isinstance(layer, torch.nn.Linear)]
    assert [(layer.in_features, layer.out_features) for layer in linear] == [(4040, 1024)] + [
        (1024, 1024)
    ] * 4
    assert sum(isinstance(layer, torch.nn.ReLU) for layer in encoder.layers) == 5
    assert [layer.p for layer in encoder.layers if isinstance(layer, torch.nn.Dropout)] == [0.2] * 5
    expected = 4040 * 1024 + 1024 + 4 * (1024 * 1024 + 1024)
    assert count_parameters(encoder) == expected
    assert count_macs(encoder, (40, 101)) == expected  # one vector: one MAC per weight and bias


def test_output_is_one_frame_of_the_last_width_and_lengths_are_ignored() -> None:
    encoder = MLP(in_features=4, num_frames=3, hidden=[5, 6], dropout=0.0).eval()
    assert (encoder.out_features, encoder.keeps_time, encoder.bidirectional) == (6, False, False)
    features = torch.randn(2, 4, 3)
    sequence, lengths = encoder(features, torch.tensor([3, 1]))
    assert sequence.shape == (2, 1, 6) and lengths.tolist() == [1, 1]
    torch.testing.assert_close(sequence[:, 0], encoder.layers(features.reshape(2, 12)))


def test_another_frame_count_is_refused_naming_the_key() -> None:
    encoder = MLP(in_features=4, num_frames=3, hidden=[5])
    with pytest.raises(ValueError, match=r"model=mlp reads exactly model\.num_frames=3 frames"):
        encoder.check_input_frames(4)
    with pytest.raises(ValueError, match=r"expects features of shape \(batch, 4, 3\)"):
        encoder(torch.randn(2, 4, 4))
    with pytest.raises(ValueError, match=r"model\.num_frames is not set"):
        MLP(in_features=4, num_frames=None)
    with pytest.raises(ValueError, match=r"model\.hidden must all be >= 1"):
        MLP(in_features=4, num_frames=3, hidden=[5, 0])
    with pytest.raises(ValueError, match=r"model\.dropout must be in \[0, 1\)"):
        MLP(in_features=4, num_frames=3, dropout=1.0)
