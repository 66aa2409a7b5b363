"""Resuming a run from a checkpoint: what must match between the checkpoint and the new config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import OmegaConf

from src.callbacks.run_config import load_run_config
from src.dashboard import flat_hyperparameters


def check_resumable(ckpt_path: str, run_config: Mapping[str, Any]) -> None:
    """Refuse to resume from a checkpoint whose model or label set differs from this config's.

    Raises:
        ValueError: listing the differing keys, with the checkpoint's and the asked-for values.
    """
    saved = flat_hyperparameters(OmegaConf.to_container(load_run_config(ckpt_path), resolve=True))
    wanted = flat_hyperparameters(run_config)
    defining = [
        key
        for key in wanted.keys() | saved.keys()
        if key.startswith(("frontend.", "model.", "task.", "data.words"))
    ]
    differing = sorted(
        f"{key}={saved.get(key)} (asked for {wanted.get(key)})"
        for key in defining
        if saved.get(key) != wanted.get(key)
    )
    if differing:
        raise ValueError(
            f"ckpt_path={ckpt_path} was trained with {', '.join(differing)}: resume with the overrides of "
            "that run (listed in its .hydra/overrides.yaml)"
        )
