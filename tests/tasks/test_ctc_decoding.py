from __future__ import annotations

import pytest
import torch

from src.tasks.ctc_decoding import ctc_greedy_decode


def one_hot_logits(paths: list[list[int]], classes: int = 5) -> torch.Tensor:
    """``(batch, frames, classes)`` logits whose argmax at each frame is the given path."""
    return torch.nn.functional.one_hot(torch.tensor(paths), classes).float() * 3.0 - 1.0


@pytest.mark.parametrize(
    ("path", "decoded"),
    [
        ([0, 1, 1, 0, 1, 2, 2, 0], [1, 1, 2]),  # a blank separates two runs of the same label
        ([1, 1, 1, 2, 2, 3, 3, 3], [1, 2, 3]),  # repeats collapse
        ([3, 0, 0, 0, 0, 0, 0, 3], [3, 3]),
        ([0, 0, 0, 0, 0, 0, 0, 0], []),  # only blanks: empty hypothesis
        ([4, 0, 4, 4, 0, 0, 2, 0], [4, 4, 2]),
    ],
)
def test_repeats_collapse_and_blanks_drop(path: list[int], decoded: list[int]) -> None:
    assert ctc_greedy_decode(one_hot_logits([path]), torch.tensor([8])) == [decoded]


def test_frames_after_each_length_are_ignored() -> None:
    logits = one_hot_logits([[1, 2, 0, 3, 3, 4], [2, 2, 2, 1, 1, 1]])
    assert ctc_greedy_decode(logits, torch.tensor([3, 4])) == [[1, 2], [2, 1]]


def test_the_blank_index_is_a_parameter() -> None:
    logits = one_hot_logits([[4, 1, 4, 1, 0, 0]])
    assert ctc_greedy_decode(logits, torch.tensor([6]), blank=4) == [[1, 1, 0]]


def test_bad_shapes_fail_clearly() -> None:
    with pytest.raises(ValueError, match=r"\(batch, frames, classes\)"):
        ctc_greedy_decode(torch.zeros(4, 5), torch.tensor([4]))
    with pytest.raises(ValueError, match="one frame count per example"):
        ctc_greedy_decode(torch.zeros(2, 4, 5), torch.tensor([4]))
