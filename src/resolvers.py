"""OmegaConf resolvers the configs use; :func:`register_resolvers` runs before any config is composed."""

from __future__ import annotations

import math

from omegaconf import OmegaConf

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


def register_resolvers() -> None:
    """Register ``sweep_direction`` (idempotent)."""
    OmegaConf.register_new_resolver("sweep_direction", sweep_direction, replace=True)
