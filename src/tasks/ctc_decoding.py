"""Greedy (best-path) decoding of per-frame CTC outputs."""

from __future__ import annotations

import torch


def ctc_greedy_decode(logits: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best-path decoding: the most likely output of every real frame, repeats collapsed, blanks dropped.

    A label repeated in consecutive frames is emitted once; the same label twice in the output needs a
    blank between its runs (``a a - a`` -> ``a a``), as CTC defines.

    Args:
        logits: ``(batch, frames, classes)`` scores (logits, probabilities or log-probabilities: only the
            argmax over classes is used).
        lengths: ``(batch,)`` real frame counts; frames after them are ignored.
        blank: index of the CTC blank among the classes.

    Returns:
        For each example, the decoded class indices (blank excluded, indices as in ``logits``).
    """
    if logits.dim() != 3:
        raise ValueError(f"logits must be (batch, frames, classes), got shape {tuple(logits.shape)}")
    if lengths.shape != logits.shape[:1]:
        raise ValueError(
            f"lengths must hold one frame count per example, shape ({logits.shape[0]},), "
            f"got {tuple(lengths.shape)}"
        )
    best = logits.argmax(dim=-1)
    # A frame starts a new label when it differs from the previous frame (the first frame always does).
    changed = torch.ones_like(best, dtype=torch.bool)
    changed[:, 1:] = best[:, 1:] != best[:, :-1]
    keep = (changed & (best != blank)).cpu()
    best = best.cpu()
    return [
        best[row, : int(length)][keep[row, : int(length)]].tolist()
        for row, length in enumerate(lengths.cpu())
    ]
