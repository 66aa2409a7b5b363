from __future__ import annotations

from functools import partial

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import Tensor, nn

from src.encoders.base import Encoder
from src.encoders.bcresnet import BCResNet, SubSpectralNorm
from src.encoders.conv1d import Conv1dCNN
from src.encoders.linear import FlattenFrames
from src.encoders.recurrent import RecurrentEncoder
from src.encoders.stack import EncoderStack
from tests.conftest import CONFIG_DIR


class DropLastFrame(Encoder):
    """A test encoder that drops the last frame of every example (its lengths shrink by one)."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.out_features = in_features

    def forward(self, features: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return features[..., :-1].transpose(1, 2), lengths - 1


class RecordInput(Encoder):
    """A test encoder that passes its input through and records it."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.out_features = in_features
        self.inputs: list[tuple[Tensor, Tensor | None]] = []

    def forward(self, features: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.inputs.append((features, lengths))
        return features.transpose(1, 2), lengths


def test_each_encoder_reads_the_previous_sequence_and_lengths() -> None:
    stack = EncoderStack(3, {"drop": DropLastFrame, "record": RecordInput})
    features = torch.randn(2, 3, 6)
    sequence, lengths = stack(features, torch.tensor([6, 4]))
    [(seen, seen_lengths)] = stack.encoders["record"].inputs
    # The first encoder's (batch, frames, dim) sequence reaches the next as (batch, dim, frames).
    torch.testing.assert_close(seen, features[..., :5], rtol=0, atol=0)
    assert seen_lengths.tolist() == [5, 3]
    torch.testing.assert_close(sequence, features[..., :5].transpose(1, 2), rtol=0, atol=0)
    assert lengths.tolist() == [5, 3]


def test_each_encoder_is_built_with_the_previous_out_features() -> None:
    stack = EncoderStack(
        40,
        {
            "conv": partial(Conv1dCNN, channels=[8, 12]),
            "rnn": partial(RecurrentEncoder, cell="gru", hidden_size=5, num_layers=1),
        },
    )
    assert list(stack.encoders) == ["conv", "rnn"]
    assert stack.encoders["rnn"].input_norm.num_features == 12
    assert stack.encoders["rnn"].layers.input_size == 12
    assert stack.out_features == 5
    sequence, lengths = stack(torch.randn(2, 40, 9))
    assert sequence.shape == (2, 5, 5)  # Conv1dCNN halves 9 frames to 5
    assert lengths.tolist() == [5, 5]


@pytest.mark.parametrize(
    ("first_bidirectional", "last_bidirectional"), [(False, True), (True, False), (True, True)]
)
def test_the_stack_is_bidirectional_when_its_last_encoder_is(
    first_bidirectional: bool, last_bidirectional: bool
) -> None:
    stack = EncoderStack(
        4,
        {
            "first": partial(RecurrentEncoder, hidden_size=3, bidirectional=first_bidirectional),
            "last": partial(RecurrentEncoder, hidden_size=2, bidirectional=last_bidirectional),
        },
    )
    assert stack.bidirectional is last_bidirectional
    assert stack.out_features == (4 if last_bidirectional else 2)
    assert stack.keeps_time


def test_the_stack_keeps_time_only_when_every_encoder_does() -> None:
    stack = EncoderStack(
        4,
        {
            "rnn": partial(RecurrentEncoder, hidden_size=3, bidirectional=True),
            "flatten": partial(FlattenFrames, num_frames=5),
        },
    )
    assert not stack.keeps_time
    assert not stack.bidirectional
    assert stack.out_features == 6 * 5
    sequence, lengths = stack(torch.randn(2, 4, 5))
    assert sequence.shape == (2, 1, 30)
    assert lengths.tolist() == [1, 1]


def test_an_empty_stack_is_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"model\.encoders must name at least one encoder"):
        EncoderStack(40, {})


def small_stack() -> EncoderStack:
    """BC-ResNet then a BiLSTM, small, with non-trivial normalisation statistics."""
    torch.manual_seed(0)
    stack = EncoderStack(
        40,
        {
            "bcresnet": partial(BCResNet, width_multiplier=0.5),
            "bilstm": partial(RecurrentEncoder, hidden_size=4, bidirectional=True, input_batchnorm=False),
        },
    )
    for module in stack.modules():
        if isinstance(module, nn.BatchNorm2d | SubSpectralNorm):
            module.running_mean.normal_(0, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return stack


def test_padding_does_not_change_the_outputs_of_real_frames() -> None:
    stack = small_stack().eval()
    short, long = torch.randn(1, 40, 12), torch.randn(1, 40, 20)
    batch = torch.cat([long, torch.cat([short, 100 * torch.randn(1, 40, 8)], dim=-1)])
    with torch.no_grad():
        padded, lengths = stack(batch, torch.tensor([20, 12]))
        alone_long, _ = stack(long)
        alone_short, _ = stack(short)
        unmasked, _ = stack(batch)
    assert lengths.tolist() == [20, 12]
    torch.testing.assert_close(padded[:1], alone_long, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(padded[1:, :12], alone_short, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(unmasked[1:, :12], alone_short, rtol=1e-3, atol=1e-3)


def test_bcresnet_bilstm_config_instantiates_and_runs() -> None:
    cfg = OmegaConf.load(CONFIG_DIR / "model" / "bcresnet_bilstm.yaml")
    stack = instantiate(cfg, in_features=40, _convert_="all")
    assert isinstance(stack, EncoderStack)
    assert list(stack.encoders) == ["bcresnet", "bilstm"]
    bcresnet, bilstm = stack.encoders["bcresnet"], stack.encoders["bilstm"]
    assert isinstance(bcresnet, BCResNet)
    assert isinstance(bilstm, RecurrentEncoder)
    assert bcresnet.in_features == 40
    assert bcresnet.out_features == 128  # c[5] = 32 * tau with tau = 4
    assert isinstance(bilstm.input_norm, nn.Identity)
    assert (bilstm.layers.cell, bilstm.layers.input_size, bilstm.layers.hidden_size) == ("lstm", 128, 256)
    assert bilstm.layers.num_layers == 2
    assert (stack.out_features, stack.bidirectional, stack.keeps_time) == (512, True, True)
    sequence, lengths = stack(torch.randn(2, 40, 16), torch.tensor([16, 9]))
    assert sequence.shape == (2, 16, 512)
    assert lengths.tolist() == [16, 9]
