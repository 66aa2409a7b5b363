from __future__ import annotations

import pytest
import torch

from src.backbones.linear import LinearClassifier
from src.utils.complexity import count_macs, count_parameters


def test_output_shape() -> None:
    model = LinearClassifier(in_features=40, num_classes=12, num_frames=101)
    assert model(torch.randn(5, 40, 101)).shape == (5, 12)


@pytest.mark.parametrize(("in_features", "num_frames", "num_classes"), [(40, 101, 12), (20, 57, 3)])
def test_parameter_and_mac_counts(in_features: int, num_frames: int, num_classes: int) -> None:
    model = LinearClassifier(in_features=in_features, num_classes=num_classes, num_frames=num_frames)
    expected = in_features * num_frames * num_classes + num_classes
    assert count_parameters(model) == expected
    assert count_macs(model, (in_features, num_frames)) == expected  # one MAC per weight, one per bias


def test_is_one_linear_map_of_the_flattened_features() -> None:
    model = LinearClassifier(in_features=4, num_classes=2, num_frames=3)
    features = torch.randn(2, 4, 3)
    expected = features.reshape(2, 12) @ model.classifier.weight.T + model.classifier.bias
    torch.testing.assert_close(model(features), expected)


@pytest.mark.parametrize("shape", [(2, 40, 100), (2, 40, 102), (2, 20, 101), (40, 101)])
def test_wrong_input_shape_says_what_was_expected(shape: tuple[int, ...]) -> None:
    model = LinearClassifier(in_features=40, num_classes=12, num_frames=101)
    with pytest.raises(
        ValueError, match=r"expects features of shape \(batch, 40, 101\).*model\.num_frames=101"
    ):
        model(torch.randn(*shape))


@pytest.mark.parametrize(("num_frames", "message"), [(None, "model.num_frames is not set"), (0, ">= 1")])
def test_missing_or_impossible_num_frames_fails_at_construction(num_frames: int | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LinearClassifier(in_features=40, num_classes=12, num_frames=num_frames)
