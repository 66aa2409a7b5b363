from __future__ import annotations

import io
from functools import partial

import pytest
import torch
from ptflops import get_model_complexity_info
from torch import nn

from src.encoders.bcresnet import BCResNet
from src.encoders.conv1d import Conv1dCNN
from src.encoders.crnn import CRNN
from src.encoders.recurrent import RecurrentEncoder, RecurrentLayers
from src.encoders.stack import EncoderStack
from src.tasks.heads import ClipClassifierHead, FrameClassifierHead
from src.utils.complexity import ExactMacs, count_macs, count_parameters, serialized_bytes

CELLS = ["rnn", "lstm", "gru"]


def ptflops_macs(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """ptflops' own aten count of one forward pass on ``torch.zeros(1, *input_shape)``."""
    macs, _ = get_model_complexity_info(
        module.eval(),
        input_shape,
        input_constructor=lambda shape: torch.zeros(1, *shape),
        as_strings=False,
        print_per_layer_stat=False,
        backend="aten",
        ost=io.StringIO(),
    )
    return int(macs)


def test_grouped_conv1d_macs_match_hand_count() -> None:
    conv = nn.Conv1d(8, 16, kernel_size=3, padding=1, groups=4, bias=True)
    # 16 outputs x (8 / 4) inputs per group x 3 taps x 50 frames, plus one bias add per output.
    assert count_macs(conv, (8, 50)) == 16 * 2 * 3 * 50 + 16 * 50


def test_linear_macs_match_hand_count() -> None:
    assert count_macs(nn.Linear(10, 5), (10,)) == 10 * 5 + 5


def test_conv1d_cnn_macs_and_params_match_hand_count() -> None:
    encoder = Conv1dCNN(in_features=10, channels=[16, 32, 32], kernel_size=3, groups=2)
    frames = 21
    stem = 16 * 10 * 3 * frames
    block1 = 32 * (16 // 2) * 3 * frames  # then max-pooled to 11 frames
    block2 = 32 * (32 // 2) * 3 * 11
    assert count_macs(encoder, (10, frames)) == stem + block1 + block2
    conv_params = 16 * 10 * 3 + 32 * 8 * 3 + 32 * 16 * 3
    batch_norm_params = 2 * (16 + 32 + 32)
    assert count_parameters(encoder) == conv_params + batch_norm_params


class UncountedOp(nn.Module):
    """An operation ptflops does not see, with the ``analytic_macs`` hook that only frontends keep."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft(x).abs()

    def analytic_macs(self, num_samples: int) -> int:
        return 7 * num_samples


@pytest.mark.parametrize(
    ("build", "input_shape"),
    [
        (lambda: Conv1dCNN(in_features=10, channels=[8, 8], groups=2), (10, 12)),
        (lambda: nn.Sequential(nn.Conv1d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6, 2)), (3, 8)),
        (lambda: UncountedOp(), (100,)),
    ],
)
def test_without_exact_macs_modules_the_count_is_ptflops(build, input_shape: tuple[int, ...]) -> None:
    # Nothing is added: not even a model's analytic_macs (the task adds a frontend's own).
    torch.manual_seed(0)
    assert count_macs(build(), input_shape) == ptflops_macs(build(), input_shape)


class FixedCost(ExactMacs):
    """A linear map whose declared cost is 1000 MACs per frame, whatever ptflops sees of it."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    def exact_macs(self, input_shape: tuple[int, ...]) -> int:
        return 1000 * input_shape[0]


def test_an_exact_macs_module_nested_in_a_sequential_is_counted_by_exact_macs() -> None:
    # (5 frames, 3 features) -> Linear(3, 4) per frame, counted by ptflops -> FixedCost on (5, 4), whose
    # own Linear(4, 4) ptflops would count as 5 * (16 + 4).
    model = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.ReLU(), FixedCost(4)))
    assert count_macs(model, (5, 3)) == 5 * (3 * 4 + 4) + 1000 * 5
    assert count_macs(FixedCost(4), (5, 4)) == 1000 * 5


def test_exact_macs_receives_the_shape_the_submodule_sees() -> None:
    recorded = []

    class Recorded(FixedCost):
        def exact_macs(self, input_shape: tuple[int, ...]) -> int:
            recorded.append(input_shape)
            return super().exact_macs(input_shape)

    model = nn.Sequential(nn.Linear(3, 4), Recorded(4))
    count_macs(model, (5, 3))
    assert recorded == [(5, 4)]  # once per submodule, without the batch dimension


def test_recurrent_layers_in_a_sequential_are_counted_exactly() -> None:
    layers = RecurrentLayers("gru", input_size=4, hidden_size=3, num_layers=1)
    model = nn.Sequential(nn.Linear(2, 4), layers)
    assert count_macs(model, (6, 2)) == 6 * (2 * 4 + 4) + layers.exact_macs((6, 4))
    assert layers.exact_macs((6, 4)) == (3 * 3 * 4 + 3 * 3 * 3 + 2 * 3 * 3) * 6


# RecurrentEncoder(5, cell, hidden_size=3, num_layers=2, bidirectional=True) on 7 frames: the counts of
# tests/encoders/test_recurrent.py's HAND_COUNTED_RECURRENT_MACS (per frame, direction and layer with input
# size I and g gates: g*3*I + g*3*3 + 2*g*3, I = 5 then 6).
HAND_COUNTED_RECURRENT_ENCODER_MACS = {"lstm": 3528, "gru": 2646, "rnn": 882}


@pytest.mark.parametrize("input_batchnorm", [True, False])
@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_encoder_counts_every_recurrent_mac_once(cell: str, input_batchnorm: bool) -> None:
    encoder = RecurrentEncoder(
        5, cell, hidden_size=3, num_layers=2, bidirectional=True, input_batchnorm=input_batchnorm
    )
    # Nothing else is counted: BatchNorm and transposes are not MACs.
    assert count_macs(encoder, (5, 7)) == HAND_COUNTED_RECURRENT_ENCODER_MACS[cell]
    assert count_macs(encoder, (5, 7)) == encoder.layers.exact_macs((7, 5))


@pytest.mark.parametrize("pooling", ["last", "mean", "attention"])
def test_clip_head_macs_match_hand_count(pooling: str) -> None:
    # The classifier Linear(6, 4) with bias, and for attention the Linear(6, 1) score of each of the 7
    # frames with bias plus the weighted sum of 7 frames of width 6 (the mean and the gather are not MACs).
    head = ClipClassifierHead(6, 4, bidirectional=True, pooling=pooling)
    classifier = 6 * 4 + 4
    attention = 7 * (6 + 1) + 7 * 6 if pooling == "attention" else 0
    assert count_macs(head, (7, 6)) == classifier + attention


def test_bilstm_with_a_frame_head_counts_the_lstm_and_one_classifier_per_frame() -> None:
    encoder = RecurrentEncoder(6, "lstm", hidden_size=4, num_layers=2, bidirectional=True)
    head = FrameClassifierHead(encoder.out_features, 5)
    # Per frame and direction: 4*4*I + 4*4*4 + 2*4*4 with I = 6, then I = 8; Linear(8, 5) with bias per frame.
    lstm = (4 * 4 * 6 + 4 * 4 * 4 + 2 * 4 * 4) * 9 * 2 + (4 * 4 * 8 + 4 * 4 * 4 + 2 * 4 * 4) * 9 * 2
    assert count_macs(encoder, (6, 9)) == lstm
    assert count_macs(head, (9, 8)) == 9 * (8 * 5 + 5)


# CRNN(6, conv, conv_channels=[2, 3], hidden_size=4) on 5 frames (kernel 3, no bias), bidirectional LSTM
# with hidden size 4: per frame and direction 4*4*I + 4*4*4 + 2*4*4.
HAND_COUNTED_CRNN_MACS = {
    # Conv2d(1, 2) on 6 x 5, pooled to 3 rows; Conv2d(2, 3) on 3 x 5, pooled to 2 rows; LSTM input 3 * 2.
    "conv2d": 2 * 1 * 9 * 6 * 5 + 3 * 2 * 9 * 3 * 5 + (4 * 4 * 6 + 4 * 4 * 4 + 2 * 4 * 4) * 5 * 2,
    # Conv1d(6, 2) and Conv1d(2, 3) over 5 frames; LSTM input 3.
    "conv1d": 2 * 6 * 3 * 5 + 3 * 2 * 3 * 5 + (4 * 4 * 3 + 4 * 4 * 4 + 2 * 4 * 4) * 5 * 2,
}


def test_hand_counted_crnn_macs_are_the_stated_numbers() -> None:
    assert HAND_COUNTED_CRNN_MACS == {"conv2d": 540 + 810 + 1920, "conv1d": 180 + 90 + 1440}


@pytest.mark.parametrize("conv", ["conv1d", "conv2d"])
def test_crnn_counts_its_convolutions_and_every_lstm_mac_once(conv: str) -> None:
    encoder = CRNN(in_features=6, conv=conv, conv_channels=[2, 3], hidden_size=4)
    lstm = encoder.layers.exact_macs((5, encoder.layers.input_size))
    assert lstm == (1920 if conv == "conv2d" else 1440)
    assert count_macs(encoder, (6, 5)) == HAND_COUNTED_CRNN_MACS[conv]
    # With a mean-pooling clip head: one Linear(8, 3) with bias per clip.
    head = ClipClassifierHead(encoder.out_features, 3, bidirectional=True)
    assert count_macs(head, (5, 8)) == 8 * 3 + 3


def test_bcresnet_bilstm_adds_the_lstm_once_to_the_convolutions() -> None:
    stack = EncoderStack(
        40,
        {
            "bcresnet": partial(BCResNet, width_multiplier=0.5),
            "bilstm": partial(RecurrentEncoder, hidden_size=4, num_layers=1, bidirectional=True),
        },
    )
    convolutions = count_macs(stack.encoders["bcresnet"], (40, 9))
    assert convolutions > 0
    channels = stack.encoders["bcresnet"].out_features
    lstm = (4 * 4 * channels + 4 * 4 * 4 + 2 * 4 * 4) * 9 * 2
    assert count_macs(stack, (40, 9)) == convolutions + lstm


def test_counting_leaves_the_module_untouched() -> None:
    encoder = RecurrentEncoder(5, "lstm", hidden_size=3, bidirectional=True).train()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    count_macs(encoder, (5, 12))
    assert encoder.training
    assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())
    assert not encoder.layers._forward_pre_hooks  # the probe's hooks sit on a copy


def test_serialized_bytes_grow_with_the_stored_weights() -> None:
    small, large = serialized_bytes(nn.Linear(10, 10)), serialized_bytes(nn.Linear(1000, 1000))
    # 1,001,000 float32 values in the large one; the file adds a small archive overhead.
    assert 4 * 1_001_000 <= large < 4 * 1_001_000 + 4096
    assert small < 4096 < large
