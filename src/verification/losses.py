"""Training objectives of speaker embeddings (``task.objective``).

- :func:`contrastive_loss`: the Siamese pair loss on the cosine similarity of every pair in a batch
  (Hadsell, Chopra & LeCun, 2006, "Dimensionality reduction by learning an invariant mapping", with the
  cosine similarity in place of the Euclidean distance).
- :class:`AdditiveMarginSoftmax`: classification of the training speakers with an additive margin on the
  cosine logits (Wang, Cheng, Liu & Liu, 2018, "Additive margin softmax for face verification"), the
  stronger baseline of speaker-embedding training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.utils.config_values import positive_number


def contrastive_loss(embeddings: Tensor, speakers: Tensor, margin: float) -> Tensor:
    """The mean over target pairs of ``(1 - cos)^2`` plus the mean over non-target pairs of
    ``max(0, cos - margin)^2``, over every pair ``i < j`` of the batch (the two means weigh target and
    non-target pairs equally, however many of each the batch holds).

    Args:
        embeddings: ``(batch, dim)`` unit-norm embeddings.
        speakers: ``(batch,)`` speaker indices.
        margin: the cosine similarity below which a non-target pair costs nothing, in ``[-1, 1)``.

    Raises:
        ValueError: a batch without a target pair or a non-target pair (``data.utterances_per_speaker``
            must be at least 2 and a batch must hold two speakers).
    """
    similarity = embeddings @ embeddings.T
    pairs = torch.triu(torch.ones_like(similarity, dtype=torch.bool), diagonal=1)
    same = speakers.unsqueeze(0) == speakers.unsqueeze(1)
    target, non_target = similarity[pairs & same], similarity[pairs & ~same]
    if len(target) == 0 or len(non_target) == 0:
        raise ValueError(
            f"task.objective=contrastive needs target and non-target pairs in every batch, got {len(target)} "
            f"and {len(non_target)}: use data.utterances_per_speaker >= 2 and a data.batch_size of at least "
            "two speakers' groups"
        )
    return (1 - target).pow(2).mean() + F.relu(non_target - margin).pow(2).mean()


class AdditiveMarginSoftmax(nn.Module):
    """Cross-entropy over the training speakers with logits ``scale * (cos(embedding, w_k) - margin *
    [k = speaker])``, ``w_k`` one learned unit-norm vector per speaker.

    ``(batch, dim) unit-norm embeddings, (batch,) speaker indices -> ()`` loss. Only training uses it:
    verification compares embeddings, never these weights.

    Args:
        embedding_dim: size of the embeddings.
        num_speakers: training speakers.
        margin: the additive cosine margin (0.2 in Wang et al.).
        scale: the logit scale (30 in Wang et al.).

    Raises:
        ValueError: for a ``margin`` outside ``[0, 1)`` or a ``scale`` that is not positive, naming
            ``task.margin`` / ``task.scale``.
    """

    def __init__(
        self, embedding_dim: int, num_speakers: int, margin: float = 0.2, scale: float = 30.0
    ) -> None:
        super().__init__()
        if not 0 <= margin < 1:
            raise ValueError(f"task.margin must be in [0, 1), got {margin}: e.g. 0.2")
        self.margin = margin
        self.scale = positive_number("task.scale", scale, 30.0)
        self.weight = nn.Parameter(torch.empty(num_speakers, embedding_dim))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, embeddings: Tensor, speakers: Tensor) -> Tensor:
        """``(batch, dim), (batch,) -> ()``."""
        cosine = embeddings @ F.normalize(self.weight, dim=-1).T
        margins = F.one_hot(speakers, cosine.shape[-1]).to(cosine.dtype) * self.margin
        return F.cross_entropy(self.scale * (cosine - margins), speakers)
