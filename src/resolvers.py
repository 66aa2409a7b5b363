"""OmegaConf resolvers the configs use; :func:`register_resolvers` runs before any config is composed."""

from __future__ import annotations

import math
import secrets
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

from src.compression.sweep_source import full_rank_scratch_checkpoint

SWEEP_DIRECTIONS = {"max": "maximize", "min": "minimize"}
"""A task's ``mode`` as the Optuna sweeper's ``direction``."""


def sweep_direction(mode: str) -> str:
    """``"max"`` -> ``"maximize"``, ``"min"`` -> ``"minimize"`` (``${sweep_direction:${task.mode}}``)."""
    if mode not in SWEEP_DIRECTIONS:
        raise ValueError(f"task.mode must be one of {list(SWEEP_DIRECTIONS)}, got {mode!r}")
    return SWEEP_DIRECTIONS[mode]


def worst_value(mode: str) -> float:
    """The worst value of a metric of direction ``mode``: what a failed sweep job returns (``-inf`` for
    ``max``, ``+inf`` for ``min``), so a hyperparameter search ranks it last and goes on."""
    sweep_direction(mode)
    return -math.inf if mode == "max" else math.inf


def unique_stamp() -> str:
    """``<date>_<time>_<6 random hex digits>``, e.g. ``2026-12-01_09-50-00_3fa9c1``: a run or sweep folder
    name that two runs started in the same second never share (``${unique_stamp:}``, resolved once per
    config: Hydra's launchers reuse the value in every job, as they do for ``${now:...}``)."""
    return f"{datetime.now():%Y-%m-%d_%H-%M-%S}_{secrets.token_hex(3)}"


def resume_dir(ckpt_path: str | None, fresh_dir: str) -> str:
    """The run folder a run writes into: the folder of the run ``ckpt_path`` belongs to when it is a
    checkpoint of a ``train.py`` run (``<run>/checkpoints/<name>.ckpt`` beside ``<run>/.hydra``), so a
    resumed run continues in its own folder; ``fresh_dir`` otherwise."""
    if ckpt_path:
        checkpoint = Path(ckpt_path)
        run = checkpoint.parent.parent
        if checkpoint.parent.name == "checkpoints" and (run / ".hydra").is_dir():
            return str(run)
    return fresh_dir


def resume_output_subdir(ckpt_path: str | None) -> str | None:
    """Where Hydra saves a run's config: ``.hydra``, but nowhere (``None``) for a run that continues in the
    folder of the run it resumes (:func:`resume_dir`), so that run's ``.hydra/`` keeps the config and
    overrides it was started with (each attempt's overrides are in its ``metrics.json`` ``attempts``)."""
    return None if resume_dir(ckpt_path, "") else ".hydra"


def register_resolvers() -> None:
    """Register ``sweep_direction``, ``unique_stamp``, ``resume_dir``, ``resume_output_subdir`` and
    ``lowrank_source`` (:func:`src.compression.sweep_source.full_rank_scratch_checkpoint`; idempotent)."""
    OmegaConf.register_new_resolver("sweep_direction", sweep_direction, replace=True)
    OmegaConf.register_new_resolver("unique_stamp", unique_stamp, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("resume_dir", resume_dir, replace=True)
    OmegaConf.register_new_resolver("resume_output_subdir", resume_output_subdir, replace=True)
    OmegaConf.register_new_resolver("lowrank_source", full_rank_scratch_checkpoint, replace=True)
