"""Learning-rate schedules composed from ``torch.optim.lr_scheduler`` parts, for configs."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR


def warmup_cosine(
    optimizer: Optimizer, warmup_epochs: int, max_epochs: int, warmup_start_factor: float = 0.01
) -> LRScheduler:
    """Linear warm-up from ``warmup_start_factor * lr`` to ``lr`` over ``warmup_epochs`` epochs, then
    cosine decay to 0 over the remaining ``max_epochs - warmup_epochs`` (stepped once per epoch).

    With fewer epochs than the warm-up (e.g. a short smoke run), the warm-up is shortened to leave one
    epoch of decay."""
    if warmup_epochs < 0 or max_epochs < 1:
        raise ValueError(f"need warmup_epochs >= 0 and max_epochs >= 1, got {warmup_epochs} and {max_epochs}")
    warmup_epochs = min(warmup_epochs, max_epochs - 1)
    cosine = CosineAnnealingLR(optimizer, T_max=max_epochs - warmup_epochs)
    if warmup_epochs == 0:
        return cosine
    warmup = LinearLR(optimizer, start_factor=warmup_start_factor, end_factor=1.0, total_iters=warmup_epochs)
    return SequentialLR(optimizer, schedulers=[warmup, cosine], milestones=[warmup_epochs])
