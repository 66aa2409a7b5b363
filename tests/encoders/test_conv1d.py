from __future__ import annotations

import pytest
import torch

from src.encoders.conv1d import Conv1dCNN


@pytest.mark.parametrize("groups", [1, 2, 4, 8, 16])
def test_output_shape_for_each_groups_value(groups: int) -> None:
    encoder = Conv1dCNN(in_features=20, channels=[32, 32, 64], groups=groups)
    assert encoder.out_features == 64
    sequence, lengths = encoder(torch.randn(5, 20, 101))
    assert sequence.shape == (5, 26, 64)  # 101 -> 51 -> 26 frames
    assert lengths.tolist() == [26] * 5


@pytest.mark.parametrize(
    ("frames", "channels", "expected"),
    [
        (101, [8], 101),  # the stem alone does not pool
        (101, [8, 8], 51),
        (100, [8, 8, 8], 25),
        (101, [8, 8, 8, 8], 13),  # 101 -> 51 -> 26 -> 13
        (1, [8, 8, 8], 1),
        (5, [8, 8, 8, 8], 1),  # 5 -> 3 -> 2 -> 1
    ],
)
def test_each_block_halves_the_frames_rounding_up(frames: int, channels: list[int], expected: int) -> None:
    encoder = Conv1dCNN(in_features=4, channels=channels)
    sequence, lengths = encoder(torch.randn(2, 4, frames))
    assert sequence.shape == (2, expected, 8)
    assert lengths.dtype == torch.int64
    assert lengths.tolist() == [expected, expected]


def test_lengths_are_ignored_and_every_output_frame_is_real() -> None:
    encoder = Conv1dCNN(in_features=4, channels=[8, 8]).eval()
    features = torch.randn(2, 4, 9)
    with torch.no_grad():
        with_lengths, lengths = encoder(features, torch.tensor([9, 3]))
        without, _ = encoder(features)
    assert lengths.tolist() == [5, 5]
    torch.testing.assert_close(with_lengths, without, rtol=0, atol=0)


def test_the_sequence_is_the_feature_map_transposed() -> None:
    encoder = Conv1dCNN(in_features=4, channels=[8, 6]).eval()
    features = torch.randn(2, 4, 9)
    with torch.no_grad():
        torch.testing.assert_close(encoder(features)[0], encoder.features(features).transpose(1, 2))


def test_groups_divide_the_block_weights() -> None:
    dense = Conv1dCNN(in_features=40, channels=[64, 64, 128], groups=1)
    grouped = Conv1dCNN(in_features=40, channels=[64, 64, 128], groups=4)
    dense_convs = [m for m in dense.features if isinstance(m, torch.nn.Conv1d)]
    grouped_convs = [m for m in grouped.features if isinstance(m, torch.nn.Conv1d)]
    assert grouped_convs[0].groups == 1  # the stem
    assert grouped_convs[0].weight.numel() == dense_convs[0].weight.numel()
    assert len(grouped_convs) == 3
    for d, g in zip(dense_convs[1:], grouped_convs[1:], strict=True):
        assert g.groups == 4
        assert g.weight.numel() * 4 == d.weight.numel()


def test_stem_accepts_n_mels_not_divisible_by_groups() -> None:
    encoder = Conv1dCNN(in_features=20, channels=[16, 16], groups=16)
    assert encoder(torch.randn(2, 20, 11))[0].shape == (2, 6, 16)


def test_groups_that_do_not_divide_channels_is_a_config_error() -> None:
    with pytest.raises(
        ValueError, match=r"model\.groups=3 does not divide the channel widths \[64, 64, 128\]"
    ):
        Conv1dCNN(in_features=40, channels=[64, 64, 128], groups=3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channels": []}, r"model\.channels must list at least one width"),
        ({"kernel_size": 4}, r"model\.kernel_size must be odd"),
        ({"groups": 0}, r"model\.groups must be >= 1"),
    ],
)
def test_impossible_shapes_fail_at_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Conv1dCNN(in_features=40, **kwargs)


def test_gradients_reach_every_parameter() -> None:
    encoder = Conv1dCNN(in_features=8, channels=[8, 8], groups=2)
    encoder(torch.randn(3, 8, 16))[0].square().sum().backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name
