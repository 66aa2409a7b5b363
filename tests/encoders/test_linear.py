from __future__ import annotations

import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from src.encoders.linear import FlattenFrames
from src.tasks.heads import ClipClassifierHead
from src.utils.complexity import count_macs, count_parameters
from tests.conftest import CONFIG_DIR


def test_output_is_one_frame_of_the_flattened_features() -> None:
    encoder = FlattenFrames(in_features=40, num_frames=101)
    assert encoder.out_features == 40 * 101
    assert not encoder.keeps_time
    assert not encoder.bidirectional
    features = torch.randn(5, 40, 101)
    sequence, lengths = encoder(features, torch.tensor([101, 90, 80, 70, 1]))
    assert sequence.shape == (5, 1, 40 * 101)
    torch.testing.assert_close(sequence[:, 0], features.reshape(5, -1), rtol=0, atol=0)
    assert lengths.dtype == torch.int64
    assert lengths.tolist() == [1] * 5


@pytest.mark.parametrize(("in_features", "num_frames", "num_classes"), [(40, 101, 12), (20, 57, 3)])
def test_with_the_clip_head_it_has_the_counts_of_one_linear_layer(
    in_features: int, num_frames: int, num_classes: int
) -> None:
    # The study's linear classifier: FlattenFrames and a clip head without dropout.
    encoder = FlattenFrames(in_features=in_features, num_frames=num_frames)
    head = ClipClassifierHead(encoder.out_features, num_classes, dropout=0.0)
    expected = in_features * num_frames * num_classes + num_classes
    assert count_parameters(encoder) == 0
    assert count_parameters(head) == expected
    assert count_macs(encoder, (in_features, num_frames)) == 0
    # one MAC per weight, one per bias; the mean over the single frame is not counted
    assert count_macs(head, (1, encoder.out_features)) == expected


def test_with_the_clip_head_it_is_one_linear_map_of_the_flattened_features() -> None:
    encoder = FlattenFrames(in_features=4, num_frames=3)
    head = ClipClassifierHead(encoder.out_features, 2, dropout=0.0)
    features = torch.randn(2, 4, 3)
    expected = features.reshape(2, 12) @ head.classifier.weight.T + head.classifier.bias
    torch.testing.assert_close(head(*encoder(features)), expected)


@pytest.mark.parametrize("shape", [(2, 40, 100), (2, 40, 102), (2, 20, 101), (40, 101)])
def test_wrong_input_shape_says_what_was_expected(shape: tuple[int, ...]) -> None:
    encoder = FlattenFrames(in_features=40, num_frames=101)
    with pytest.raises(
        ValueError, match=r"expects features of shape \(batch, 40, 101\).*model\.num_frames=101"
    ):
        encoder(torch.randn(*shape))


@pytest.mark.parametrize(
    ("num_frames", "message"),
    [(None, r"model\.num_frames is not set"), (0, r"model\.num_frames must be >= 1")],
)
def test_missing_or_impossible_num_frames_fails_at_construction(num_frames: int | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FlattenFrames(in_features=40, num_frames=num_frames)


def test_config_file_needs_num_frames_from_the_task() -> None:
    cfg = OmegaConf.load(CONFIG_DIR / "model" / "linear.yaml")
    with pytest.raises(InstantiationException, match=r"model\.num_frames is not set"):
        instantiate(cfg, in_features=40)
    encoder = instantiate(cfg, in_features=40, num_frames=11)
    assert isinstance(encoder, FlattenFrames)
    assert encoder(torch.randn(2, 40, 11))[0].shape == (2, 1, 440)
