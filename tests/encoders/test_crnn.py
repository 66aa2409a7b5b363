from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from src.backbones.crnn import CRNN
from src.utils.complexity import count_macs, count_parameters
from tests.conftest import CONFIG_DIR

CONVS = ["conv1d", "conv2d"]
POOLINGS = ["last", "mean", "attention"]


def small_model(conv: str, pooling: str, bidirectional: bool = True, **kwargs) -> CRNN:
    """A small CRNN whose BatchNorms have non-trivial running statistics."""
    torch.manual_seed(0)
    model = CRNN(
        in_features=7,
        num_classes=3,
        conv=conv,
        conv_channels=[4, 6],
        hidden_size=5,
        bidirectional=bidirectional,
        pooling=pooling,
        **kwargs,
    )
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
    return model


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("conv", CONVS)
def test_output_shape(conv: str, pooling: str, bidirectional: bool) -> None:
    model = small_model(conv, pooling, bidirectional)
    assert model(torch.randn(3, 7, 11)).shape == (3, 3)
    assert model(torch.randn(3, 7, 11), torch.tensor([11, 4, 1])).shape == (3, 3)


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
    model = CRNN(in_features=in_features, num_classes=2, conv=conv, conv_channels=channels)
    assert model.encoder.input_size == lstm_input
    frames = []
    model.encoder.register_forward_hook(lambda _module, inputs, _output: frames.append(inputs[0].shape))
    model(torch.randn(2, in_features, 23))
    assert frames == [(2, 23, lstm_input)]


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("conv", CONVS)
def test_padding_does_not_change_the_output(conv: str, pooling: str) -> None:
    model = small_model(conv, pooling, num_layers=2).eval()
    short, long = torch.randn(1, 7, 9), torch.randn(1, 7, 15)
    garbage = 100 * torch.randn(1, 7, 6)  # padding content must not matter, whatever it is
    batch = torch.cat([long, torch.cat([short, garbage], dim=-1)])
    with torch.no_grad():
        padded = model(batch, torch.tensor([15, 9]))
        alone = torch.cat([model(long), model(short)])
    torch.testing.assert_close(padded, alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("conv", CONVS)
def test_gradients_reach_every_parameter(conv: str, pooling: str) -> None:
    model = small_model(conv, pooling)
    model(torch.randn(3, 7, 12), torch.tensor([12, 5, 8])).square().sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"conv": "conv3d"}, r"model\.conv must be one of \['conv1d', 'conv2d'\], got 'conv3d'"),
        ({"conv_channels": []}, r"model\.conv_channels must list at least one width"),
        ({"conv_channels": [16, 0]}, r"model\.conv_channels must all be >= 1, got \[16, 0\]"),
        ({"pooling": "max"}, r"model\.pooling must be one of \['last', 'mean', 'attention'\], got 'max'"),
        ({"hidden_size": 0}, r"model\.hidden_size must be >= 1, got 0"),
        ({"num_layers": 0}, r"model\.num_layers must be >= 1, got 0"),
        ({"dropout": 1.5}, r"model\.dropout must be in \[0, 1\), got 1.5"),
    ],
)
def test_impossible_settings_fail_at_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CRNN(in_features=40, num_classes=4, **kwargs)


def test_impossible_lengths_fail() -> None:
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 5\]"):
        CRNN(in_features=8, num_classes=2)(torch.randn(2, 8, 5), torch.tensor([5, 9]))


# 6 features, 5 frames, conv_channels [2, 3] (kernel 3, no bias), bidirectional LSTM with hidden size 4,
# Linear(8, 3) classifier with bias. The LSTM costs, per frame and direction, 4*4*I (input projection) +
# 4*4*4 (recurrent) + 2*4*4 (bias_ih and bias_hh, one MAC per element as count_macs counts a Linear bias).
HAND_COUNTED_MACS = {
    # Conv2d(1, 2) on 6 x 5, pooled to 3 rows; Conv2d(2, 3) on 3 x 5, pooled to 2 rows; LSTM input 3 * 2.
    "conv2d": 2 * 1 * 9 * 6 * 5 + 3 * 2 * 9 * 3 * 5 + (4 * 4 * 6 + 4 * 4 * 4 + 2 * 4 * 4) * 5 * 2 + 8 * 3 + 3,
    # Conv1d(6, 2) and Conv1d(2, 3) over 5 frames; LSTM input 3.
    "conv1d": 2 * 6 * 3 * 5 + 3 * 2 * 3 * 5 + (4 * 4 * 3 + 4 * 4 * 4 + 2 * 4 * 4) * 5 * 2 + 8 * 3 + 3,
}


def test_hand_counted_macs_are_the_stated_numbers() -> None:
    assert HAND_COUNTED_MACS == {"conv2d": 540 + 810 + 1920 + 27, "conv1d": 180 + 90 + 1440 + 27}


@pytest.mark.parametrize("conv", CONVS)
def test_count_macs_counts_convolutions_and_every_lstm_mac_once(conv: str) -> None:
    model = CRNN(in_features=6, num_classes=3, conv=conv, conv_channels=[2, 3], hidden_size=4, pooling="mean")
    assert model.encoder.recurrent_macs(5) == (1920 if conv == "conv2d" else 1440)
    assert count_macs(model, (6, 5)) == HAND_COUNTED_MACS[conv]


def test_crnn_parameters_match_hand_count() -> None:
    model = CRNN(in_features=6, num_classes=3, conv="conv2d", conv_channels=[2, 3], hidden_size=4)
    convs = 2 * 1 * 9 + 3 * 2 * 9
    batch_norms = 2 * (2 + 3)
    lstm = 2 * (4 * 4 * 6 + 4 * 4 * 4 + 2 * 4 * 4)  # per direction: weight_ih, weight_hh, two biases
    assert count_parameters(model) == convs + batch_norms + lstm + 8 * 3 + 3


def test_config_file_instantiates_and_runs() -> None:
    model = instantiate(OmegaConf.load(CONFIG_DIR / "model" / "crnn.yaml"), in_features=40, num_classes=10)
    assert isinstance(model, CRNN)
    assert model.conv == "conv2d"
    assert model.encoder.bidirectional
    assert (model.encoder.input_size, model.encoder.hidden_size) == (32 * 10, 64)
    assert model(torch.randn(2, 40, 101)).shape == (2, 10)
