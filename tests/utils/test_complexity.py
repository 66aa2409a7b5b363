from __future__ import annotations

import torch
from torch import nn

from src.backbones.conv1d import Conv1dCNN
from src.utils.complexity import count_macs, count_parameters


def test_grouped_conv1d_macs_match_hand_count() -> None:
    conv = nn.Conv1d(8, 16, kernel_size=3, padding=1, groups=4, bias=True)
    # 16 outputs x (8 / 4) inputs per group x 3 taps x 50 frames, plus one bias add per output.
    assert count_macs(conv, (8, 50)) == 16 * 2 * 3 * 50 + 16 * 50


def test_linear_macs_match_hand_count() -> None:
    assert count_macs(nn.Linear(10, 5), (10,)) == 10 * 5 + 5


def test_conv1d_cnn_macs_and_params_match_hand_count() -> None:
    model = Conv1dCNN(in_features=10, num_classes=4, channels=[16, 32, 32], kernel_size=3, groups=2)
    frames = 21
    stem = 16 * 10 * 3 * frames
    block1 = 32 * (16 // 2) * 3 * frames  # then max-pooled to 11 frames
    block2 = 32 * (32 // 2) * 3 * 11
    classifier = 32 * 4 + 4
    assert count_macs(model, (10, frames)) == stem + block1 + block2 + classifier
    conv_params = 16 * 10 * 3 + 32 * 8 * 3 + 32 * 16 * 3
    batch_norm_params = 2 * (16 + 32 + 32)
    assert count_parameters(model) == conv_params + batch_norm_params + classifier


def test_analytic_macs_are_added() -> None:
    class WithUncountedOp(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.fft.rfft(x).abs()

        def analytic_macs(self, num_samples: int) -> int:
            return 7 * num_samples

    assert count_macs(WithUncountedOp(), (100,)) == 700


def test_counting_leaves_the_module_untouched() -> None:
    model = Conv1dCNN(in_features=10, num_classes=2, channels=[8, 8]).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count_macs(model, (10, 12))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
