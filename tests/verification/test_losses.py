"""The training objectives: the contrastive pair loss and additive-margin softmax."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from src.verification.losses import AdditiveMarginSoftmax, contrastive_loss


def test_contrastive_loss_is_zero_for_same_speaker_equal_and_others_orthogonal() -> None:
    embeddings = torch.eye(3).repeat_interleave(2, dim=0)
    speakers = torch.tensor([0, 0, 1, 1, 2, 2])
    assert float(contrastive_loss(embeddings, speakers, margin=0.3)) == 0.0


def test_contrastive_loss_weighs_target_and_non_target_pairs_as_two_means() -> None:
    # Pairs: (0,1) target with cos 0 -> (1 - 0)^2 = 1; (0,2), (1,2) non-targets with cos 1 and 0:
    # relu(1 - 0.3)^2 = 0.49 and 0 -> mean 0.245.
    embeddings = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    loss = contrastive_loss(embeddings, torch.tensor([0, 0, 1]), margin=0.3)
    assert float(loss) == pytest.approx(1.0 + 0.245)


def test_contrastive_loss_refuses_a_batch_without_target_pairs() -> None:
    with pytest.raises(ValueError, match=r"data\.utterances_per_speaker"):
        contrastive_loss(torch.eye(3), torch.tensor([0, 1, 2]), margin=0.3)


def test_am_softmax_is_cross_entropy_of_scaled_cosines_minus_the_margin() -> None:
    torch.manual_seed(0)
    loss_fn = AdditiveMarginSoftmax(embedding_dim=4, num_speakers=3, margin=0.2, scale=10.0)
    embeddings = F.normalize(torch.randn(5, 4), dim=-1)
    speakers = torch.tensor([0, 1, 2, 0, 1])
    cosine = (embeddings @ F.normalize(loss_fn.weight, dim=-1).T).detach()
    expected = (
        sum(
            -math.log(
                math.exp(10 * (cosine[i, k] - 0.2))
                / sum(math.exp(10 * (cosine[i, j] - 0.2 * (j == k))) for j in range(3))
            )
            for i, k in enumerate(speakers.tolist())
        )
        / 5
    )
    assert float(loss_fn(embeddings, speakers).detach()) == pytest.approx(expected, rel=1e-5)


def test_am_softmax_refuses_a_margin_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match=r"task\.margin"):
        AdditiveMarginSoftmax(4, 3, margin=1.5)
