from __future__ import annotations

import pytest
import torch

from src.backbones.conv1d import Conv1dCNN


@pytest.mark.parametrize("groups", [1, 2, 4, 8, 16])
def test_output_shape_for_each_groups_value(groups: int) -> None:
    model = Conv1dCNN(in_features=20, num_classes=3, channels=[32, 32, 64], groups=groups)
    assert model(torch.randn(5, 20, 101)).shape == (5, 3)


def test_groups_divide_the_block_weights() -> None:
    dense = Conv1dCNN(in_features=40, num_classes=2, channels=[64, 64, 128], groups=1)
    grouped = Conv1dCNN(in_features=40, num_classes=2, channels=[64, 64, 128], groups=4)
    dense_blocks = [m for m in dense.features if isinstance(m, torch.nn.Conv1d)][1:]
    grouped_blocks = [m for m in grouped.features if isinstance(m, torch.nn.Conv1d)][1:]
    for d, g in zip(dense_blocks, grouped_blocks, strict=True):
        assert g.groups == 4
        assert g.weight.numel() * 4 == d.weight.numel()


def test_stem_accepts_n_mels_not_divisible_by_groups() -> None:
    model = Conv1dCNN(in_features=20, num_classes=2, channels=[16, 16], groups=16)
    assert model(torch.randn(2, 20, 11)).shape == (2, 2)


def test_groups_that_do_not_divide_channels_is_a_config_error() -> None:
    with pytest.raises(
        ValueError, match=r"model\.groups=3 does not divide the channel widths \[64, 64, 128\]"
    ):
        Conv1dCNN(in_features=40, num_classes=2, channels=[64, 64, 128], groups=3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"channels": []}, "at least one width"), ({"kernel_size": 4}, "odd"), ({"groups": 0}, ">= 1")],
)
def test_impossible_shapes_fail_at_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Conv1dCNN(in_features=40, num_classes=2, **kwargs)


def test_gradients_reach_every_parameter() -> None:
    model = Conv1dCNN(in_features=8, num_classes=2, channels=[8, 8], groups=2)
    model(torch.randn(3, 8, 16)).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
