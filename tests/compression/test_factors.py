"""Rank-D factors of dense layers: exact parameter and MAC counts, and the truncated SVD (exact at full
rank, the best rank-D approximation below it)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from src.compression.factors import LowRankLayer, dense_matrices, truncated_svd
from src.utils.complexity import count_macs, count_parameters


def test_a_factorised_linear_layer_has_exactly_the_hand_counted_parameters_and_macs() -> None:
    layer = LowRankLayer.replacing(nn.Linear(1024, 1024), rank=20)
    hand_count = 20 * 1024 + 20 * 1024 + 1024  # V^T (20 x 1024), U (1024 x 20), the bias
    assert count_parameters(layer) == hand_count == 41_984
    assert count_macs(layer, (1024,)) == hand_count  # one MAC per weight, one per bias element
    without_bias = LowRankLayer.replacing(nn.Linear(300, 40, bias=False), rank=7)
    assert count_parameters(without_bias) == 7 * 300 + 7 * 40


def test_a_factorised_grouped_pointwise_convolution_counts_its_factors_per_group() -> None:
    dense = nn.Conv2d(16, 32, 1, groups=4)  # four 8 x 4 maps
    layer = LowRankLayer.replacing(dense, rank=3)
    assert (layer.v.out_channels, layer.v.groups, layer.u.in_channels, layer.u.groups) == (12, 4, 12, 4)
    assert count_parameters(layer) == 4 * 3 * (4 + 8) + 32
    frames = 5 * 7
    assert count_macs(layer, (16, 5, 7)) == frames * (4 * 3 * (4 + 8) + 32)


def layer_cases() -> list[tuple[nn.Module, tuple[int, ...]]]:
    return [
        (nn.Linear(12, 8), (3, 5, 12)),
        (nn.Linear(6, 9, bias=False), (4, 6)),
        (nn.Conv1d(6, 9, 1, groups=3, stride=2, padding=1), (2, 6, 11)),
        (nn.Conv2d(8, 12, 1, groups=4, padding=(1, 0), padding_mode="reflect"), (2, 8, 5, 6)),
    ]


@pytest.mark.parametrize(
    ("dense", "input_shape"), layer_cases(), ids=["linear", "no-bias", "conv1d", "conv2d"]
)
def test_svd_at_full_rank_reproduces_the_dense_layer(dense: nn.Module, input_shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    matrices, bias = dense_matrices(dense)
    layer = LowRankLayer.replacing(dense, rank=min(matrices.shape[-2:]))
    layer.load_state_dict(layer.state_from_dense(matrices, bias))
    x = torch.randn(*input_shape)
    torch.testing.assert_close(layer(x), dense(x), rtol=1e-5, atol=1e-5)
    product, product_bias = dense_matrices(layer)
    torch.testing.assert_close(product, matrices, rtol=1e-5, atol=1e-5)
    assert (product_bias is None) == (bias is None)


def test_svd_at_rank_d_is_the_best_rank_d_approximation() -> None:
    torch.manual_seed(1)
    matrices = torch.randn(3, 20, 30, dtype=torch.float64)  # three groups
    rank = 5
    u, v = truncated_svd(matrices, rank)
    assert u.shape == (3, 20, rank) and v.shape == (3, rank, 30)
    singular = torch.linalg.svdvals(matrices)
    for group in range(3):
        error = torch.linalg.norm(matrices[group] - u[group] @ v[group])
        # Eckart-Young: the Frobenius error is the root of the sum of the dropped squared singular values
        torch.testing.assert_close(error, singular[group, rank:].square().sum().sqrt())
        # and U, V share the singular values evenly: U^T U = V V^T = diag(S_D)
        torch.testing.assert_close(u[group].T @ u[group], torch.diag(singular[group, :rank]))
        torch.testing.assert_close(v[group] @ v[group].T, torch.diag(singular[group, :rank]))
    with pytest.raises(ValueError, match="rank 21 exceeds"):
        truncated_svd(matrices, 21)


def test_only_pointwise_convolutions_and_linear_layers_are_replaced() -> None:
    with pytest.raises(ValueError, match="not a linear layer or a convolution with a kernel of 1"):
        LowRankLayer.replacing(nn.Conv2d(4, 4, 3), rank=1)
