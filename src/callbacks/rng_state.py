"""The random number generators' states in every checkpoint, so a resumed run shuffles, drops out and
augments exactly as the uninterrupted run would have."""

from __future__ import annotations

import logging
import random
from typing import Any

import lightning as L
import numpy as np
import torch

log = logging.getLogger(__name__)


def capture_rng_states() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's global generators (and every CUDA device's, when CUDA
    is initialised), as tensors, ints and tuples that ``torch.load(weights_only=True)`` reads."""
    kind, keys, position, has_gauss, cached_gauss = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gauss": float(cached_gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Set the global generators to ``states`` (from :func:`capture_rng_states`). CUDA states are restored
    when the checkpoint has them and as many devices are visible; otherwise CUDA keeps its seeded state
    (with a warning when the checkpoint has some)."""
    random.setstate(states["python"])
    saved = states["numpy"]
    np.random.set_state(
        (
            saved["kind"],
            saved["keys"].numpy().astype(np.uint32),
            saved["position"],
            saved["has_gauss"],
            saved["cached_gauss"],
        )
    )
    torch.set_rng_state(states["torch"])
    cuda = states.get("cuda")
    if cuda is None:
        return
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if visible == len(cuda):
        torch.cuda.set_rng_state_all(cuda)
    else:
        log.warning(
            "The checkpoint holds the CUDA generators of %d device(s), this run sees %d: random draws on the "
            "GPU (dropout, masks) differ from those of the uninterrupted run",
            len(cuda),
            visible,
        )


class RngStateInCheckpoint(L.Callback):
    """Saves the generators' states with every checkpoint (``state_dict``, called while the checkpoint is
    written: after the epoch's validation) and, when ``trainer.fit(ckpt_path=...)`` resumes, sets them
    back before anything random happens (``load_state_dict``, called before the first batch is drawn).

    Lightning runs its sanity check inside ``isolate_rng``, so it draws nothing; the training
    DataLoader's iterator draws its seeds after the restore in a resumed run as after the save in an
    uninterrupted one. Uninterrupted runs are unchanged: nothing is reseeded. ``trainer.test(ckpt_path=...)``
    also loads callback states; they are ignored there, so testing the best checkpoint does not roll the
    generators back.

    With ``data.num_workers > 0`` this holds for loaders that start their workers each epoch
    (``persistent_workers=False``): a persistent loader draws its workers' base seed only when its first
    epoch starts, so a resumed process draws one number more than the uninterrupted one.
    """

    def __init__(self) -> None:
        self._stage: str | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Lightning calls setup before it loads a checkpoint's callback states.
        self._stage = stage

    def state_dict(self) -> dict[str, Any]:
        return {"rng_states": capture_rng_states()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self._stage == "fit":
            restore_rng_states(state_dict["rng_states"])
