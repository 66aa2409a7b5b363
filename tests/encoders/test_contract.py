"""Every encoder keeps the contract of src/encoders/base.py: ``(features (batch, in_features, frames),
lengths) -> (sequence (batch, frames', out_features), lengths' (batch,) int64 in [1, frames'])``."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import pytest
import torch

from src.encoders.base import Encoder
from src.encoders.bcresnet import BCResNet
from src.encoders.cnn2d import CNN2d
from src.encoders.conv1d import Conv1dCNN
from src.encoders.crnn import CRNN
from src.encoders.linear import FlattenFrames
from src.encoders.mlp import MLP
from src.encoders.recurrent import RecurrentEncoder
from src.encoders.stack import EncoderStack
from src.encoders.tcn import TemporalConvNet

IN_FEATURES = 40

# name -> (build(frames), out_features, bidirectional, keeps_time, keeps every frame and its lengths)
ENCODERS: dict[str, tuple[Callable[[int], Encoder], int, bool, bool, bool]] = {
    "conv1d": (lambda _: Conv1dCNN(IN_FEATURES, channels=[8, 8, 6]), 6, False, True, False),
    "bcresnet": (lambda _: BCResNet(IN_FEATURES, width_multiplier=0.5), 16, False, True, True),
    "lstm": (lambda _: RecurrentEncoder(IN_FEATURES, "lstm", hidden_size=6), 6, False, True, True),
    "bigru": (
        lambda _: RecurrentEncoder(IN_FEATURES, "gru", hidden_size=6, bidirectional=True),
        12,
        True,
        True,
        True,
    ),
    "crnn_conv2d": (
        lambda _: CRNN(IN_FEATURES, "conv2d", conv_channels=[3, 4], hidden_size=6),
        12,
        True,
        True,
        True,
    ),
    "crnn_conv1d": (
        lambda _: CRNN(IN_FEATURES, "conv1d", conv_channels=[3, 4], hidden_size=6, bidirectional=False),
        6,
        False,
        True,
        True,
    ),
    "tcn": (lambda _: TemporalConvNet(IN_FEATURES, channels=6, num_blocks=3), 6, False, True, True),
    "linear": (lambda frames: FlattenFrames(IN_FEATURES, num_frames=frames), None, False, False, False),
    "mlp": (lambda frames: MLP(IN_FEATURES, frames, hidden=[8, 6], dropout=0.0), 6, False, False, False),
    "cnn2d": (
        lambda frames: CNN2d(IN_FEATURES, frames, channels=[3, 4], hidden=[6], dropout=0.0),
        6,
        False,
        False,
        False,
    ),
    "bcresnet_bilstm": (
        lambda _: EncoderStack(
            IN_FEATURES,
            {
                "bcresnet": partial(BCResNet, width_multiplier=0.5),
                "bilstm": partial(RecurrentEncoder, hidden_size=6, bidirectional=True, input_batchnorm=False),
            },
        ),
        12,
        True,
        True,
        True,
    ),
}


def expected_frames(name: str, frames: int) -> int:
    """Output frames: Conv1dCNN halves twice (rounding up), FlattenFrames, MLP and CNN2d give one, the others
    keep all."""
    if name == "conv1d":
        return math.ceil(math.ceil(frames / 2) / 2)
    return 1 if name in ("linear", "mlp", "cnn2d") else frames


@pytest.mark.parametrize("frames", [1, 13, 50])
@pytest.mark.parametrize("name", list(ENCODERS))
def test_encoder_keeps_the_contract(name: str, frames: int) -> None:
    build, out_features, bidirectional, keeps_time, keeps_every_frame = ENCODERS[name]
    torch.manual_seed(0)
    encoder = build(frames)
    assert isinstance(encoder, Encoder)
    assert encoder.out_features == (IN_FEATURES * frames if out_features is None else out_features)
    assert encoder.bidirectional is bidirectional
    assert encoder.keeps_time is keeps_time
    output_frames = expected_frames(name, frames)
    lengths = torch.tensor([frames, max(1, frames - 5), 1])
    for given in (lengths, None):
        sequence, lengths_out = encoder(torch.randn(3, IN_FEATURES, frames), given)
        assert sequence.shape == (3, output_frames, encoder.out_features)
        assert torch.isfinite(sequence).all()
        assert lengths_out.shape == (3,)
        assert lengths_out.dtype == torch.int64
        assert 1 <= int(lengths_out.min()) <= int(lengths_out.max()) <= output_frames
        if given is None or not keeps_every_frame:
            assert lengths_out.tolist() == [output_frames] * 3
        else:
            assert lengths_out.tolist() == lengths.tolist()


@pytest.mark.parametrize("name", [name for name, entry in ENCODERS.items() if entry[4]])
def test_encoders_that_read_lengths_refuse_impossible_ones(name: str) -> None:
    encoder = ENCODERS[name][0](20)
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 20\]"):
        encoder(torch.randn(2, IN_FEATURES, 20), torch.tensor([20, 21]))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 20\]"):
        encoder(torch.randn(2, IN_FEATURES, 20), torch.tensor([20, 0]))


@pytest.mark.parametrize("name", [name for name in ENCODERS if name != "linear"])  # linear has none
def test_gradients_reach_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    encoder = ENCODERS[name][0](20).train()
    sequence, _ = encoder(torch.randn(3, IN_FEATURES, 20), torch.tensor([20, 11, 5]))
    sequence.square().mean().backward()
    for parameter_name, parameter in encoder.named_parameters():
        assert parameter.grad is not None, parameter_name
        assert torch.isfinite(parameter.grad).all(), parameter_name
        assert parameter.grad.abs().sum() > 0, parameter_name
