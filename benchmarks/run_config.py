"""The config a benchmark measures: ``conf/config.yaml`` composed with overrides as ``train.py`` does."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from src.resolvers import register_resolvers

REPO_ROOT = Path(__file__).resolve().parents[1]


def compose_run_config(overrides: Sequence[str]) -> DictConfig:
    """``conf/config.yaml`` with ``overrides`` as ``python train.py <overrides>`` composes it (the project's
    resolvers registered, ``PROJECT_ROOT`` defaulting to the repository; without Hydra's runtime values)."""
    os.environ.setdefault("PROJECT_ROOT", str(REPO_ROOT))
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides))
