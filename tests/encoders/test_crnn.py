from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from src.encoders.crnn import CRNN
from src.utils.complexity import count_parameters
from tests.conftest import CONFIG_DIR

CONVS = ["conv1d", "conv2d"]


def small_encoder(conv: str, bidirectional: bool = True, **kwargs) -> CRNN:
    """A small CRNN whose BatchNorms have non-trivial running statistics."""
    torch.manual_seed(0)
    encoder = CRNN(
        in_features=7, conv=conv, conv_channels=[4, 6], hidden_size=5, bidirectional=bidirectional, **kwargs
    )
    for module in encoder.modules():
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
    return encoder


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("conv", CONVS)
def test_output_shape_and_lengths(conv: str, bidirectional: bool) -> None:
    encoder = small_encoder(conv, bidirectional)
    assert encoder.out_features == (10 if bidirectional else 5)
    assert encoder.bidirectional is bidirectional
    assert encoder.keeps_time
    sequence, lengths = encoder(torch.randn(3, 7, 11))
    assert sequence.shape == (3, 11, encoder.out_features)
    assert lengths.dtype == torch.int64
    assert lengths.tolist() == [11, 11, 11]
    sequence, lengths = encoder(torch.randn(3, 7, 11), torch.tensor([11, 4, 1]))
    assert sequence.shape == (3, 11, encoder.out_features)
    assert lengths.tolist() == [11, 4, 1]


@pytest.mark.parametrize(
    ("conv", "in_features", "channels", "lstm_input"),
    [
        ("conv2d", 40, [16, 32], 32 * 10),  # 40 -> 20 -> 10 frequency rows
        ("conv2d", 13, [4, 6, 8], 8 * 2),  # 13 -> 7 -> 4 -> 2: odd rows round up
        ("conv1d", 40, [16, 32], 32),
    ],
)
def test_convolutions_keep_every_frame(
    conv: str, in_features: int, channels: list[int], lstm_input: int
) -> None:
    encoder = CRNN(in_features=in_features, conv=conv, conv_channels=channels)
    assert encoder.layers.input_size == lstm_input
    frames = []
    encoder.layers.register_forward_hook(lambda _module, inputs, _output: frames.append(inputs[0].shape))
    sequence, _ = encoder(torch.randn(2, in_features, 23))
    assert frames == [(2, 23, lstm_input)]
    assert sequence.shape == (2, 23, 128)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("conv", CONVS)
def test_padding_does_not_change_the_outputs_of_real_frames(conv: str, bidirectional: bool) -> None:
    encoder = small_encoder(conv, bidirectional, num_layers=2).eval()
    short, long = torch.randn(1, 7, 9), torch.randn(1, 7, 15)
    garbage = 100 * torch.randn(1, 7, 6)  # padding content must not matter, whatever it is
    batch = torch.cat([long, torch.cat([short, garbage], dim=-1)])
    with torch.no_grad():
        padded, lengths = encoder(batch, torch.tensor([15, 9]))
        alone_long, _ = encoder(long)
        alone_short, _ = encoder(short)
    assert lengths.tolist() == [15, 9]
    torch.testing.assert_close(padded[:1], alone_long, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(padded[1:, :9], alone_short, rtol=1e-5, atol=1e-5)
    assert torch.equal(padded[1, 9:], torch.zeros(6, encoder.out_features))


@pytest.mark.parametrize("conv", CONVS)
def test_without_lengths_the_padding_reaches_the_real_frames(conv: str) -> None:
    # The masks matter: the convolutions next to the last real frame and the backward LSTM read the
    # padding when no lengths are given.
    encoder = small_encoder(conv).eval()
    short = torch.randn(1, 7, 9)
    padded = torch.cat([short, 100 * torch.randn(1, 7, 6)], dim=-1)
    with torch.no_grad():
        alone, _ = encoder(short)
        masked, _ = encoder(padded, torch.tensor([9]))
        unmasked, _ = encoder(padded)
    torch.testing.assert_close(masked[:, :9], alone, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(unmasked[:, :9], alone, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("conv", CONVS)
def test_gradients_reach_every_parameter(conv: str) -> None:
    encoder = small_encoder(conv)
    sequence, _ = encoder(torch.randn(3, 7, 12), torch.tensor([12, 5, 8]))
    sequence.square().sum().backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"conv": "conv3d"}, r"model\.conv must be one of \['conv1d', 'conv2d'\], got 'conv3d'"),
        ({"conv_channels": []}, r"model\.conv_channels must list at least one width"),
        ({"conv_channels": [16, 0]}, r"model\.conv_channels must all be >= 1, got \[16, 0\]"),
        ({"hidden_size": 0}, r"model\.hidden_size must be >= 1, got 0"),
        ({"num_layers": 0}, r"model\.num_layers must be >= 1, got 0"),
        ({"dropout": 1.5}, r"model\.dropout must be in \[0, 1\), got 1.5"),
    ],
)
def test_impossible_settings_fail_at_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CRNN(in_features=40, **kwargs)


def test_impossible_lengths_fail() -> None:
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 5\]"):
        CRNN(in_features=8)(torch.randn(2, 8, 5), torch.tensor([5, 9]))


def test_crnn_parameters_match_hand_count() -> None:
    encoder = CRNN(in_features=6, conv="conv2d", conv_channels=[2, 3], hidden_size=4)
    convs = 2 * 1 * 9 + 3 * 2 * 9
    batch_norms = 2 * (2 + 3)
    # LSTM input 3 channels * 2 rows (6 -> 3 -> 2); per direction: weight_ih, weight_hh, two biases.
    lstm = 2 * (4 * 4 * 6 + 4 * 4 * 4 + 2 * 4 * 4)
    assert count_parameters(encoder) == convs + batch_norms + lstm


def test_config_file_instantiates_and_runs() -> None:
    encoder = instantiate(OmegaConf.load(CONFIG_DIR / "model" / "crnn.yaml"), in_features=40)
    assert isinstance(encoder, CRNN)
    assert encoder.conv == "conv2d"
    assert encoder.layers.bidirectional
    assert encoder.bidirectional
    assert (encoder.layers.input_size, encoder.layers.hidden_size) == (32 * 10, 64)
    assert encoder.out_features == 128
    sequence, lengths = encoder(torch.randn(2, 40, 31), torch.tensor([31, 12]))
    assert sequence.shape == (2, 31, 128)
    assert lengths.tolist() == [31, 12]
