"""The source checkpoint of ``compression.from_ckpt``: read, checked against the run it starts, rebuilt."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
from omegaconf import OmegaConf

from src.callbacks.run_config import load_run_config
from src.resume import flat_config

KEY = "compression.from_ckpt"

SAME_HPARAMS = {
    "frontend": "frontend",
    "encoder": "model",
    "head": "task.head",
    "label_names": "data (its label set)",
    "example_samples": "data (its clip length, in samples)",
    "standardize_features": "task.standardize_features",
}
"""The task hyperparameters the source must share with the run (what its weights mean), and how the config
names each."""


def plain(value: Any) -> Any:
    """``value`` with OmegaConf containers (and Lightning's ``AttributeDict``) as plain dicts and lists."""
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def differing_hparams(source: Mapping[str, Any], target: Mapping[str, Any]) -> list[str]:
    """``"model.hidden=[64] (this run: [1024])"`` for every leaf of :data:`SAME_HPARAMS` that differs
    between the source's and the run's task hyperparameters."""
    differing = []
    for hparam, config_name in SAME_HPARAMS.items():
        saved, wanted = plain(source.get(hparam)), plain(target.get(hparam))
        if isinstance(saved, Mapping) and isinstance(wanted, Mapping):
            flat_saved, flat_wanted = flat_config(saved), flat_config(wanted)
            differing += [
                f"{config_name}.{key}={flat_saved.get(key)} (this run: {flat_wanted.get(key)})"
                for key in sorted(flat_saved.keys() | flat_wanted.keys())
                if flat_saved.get(key) != flat_wanted.get(key)
            ]
        elif saved != wanted:
            differing.append(f"{config_name}: {saved} (this run: {wanted})")
    return differing


def load_source(task: L.LightningModule, ckpt_path: str | Path) -> L.LightningModule:
    """The task of the ``train.py`` checkpoint ``ckpt_path`` (on the CPU, with its own compression rebuilt
    from its hyperparameters), when it has ``task``'s class, frontend, model, head and data.

    Raises:
        FileNotFoundError, IsADirectoryError, ValueError: naming ``compression.from_ckpt``, for a file that
            is no checkpoint of this project, a checkpoint of another task, or one trained with another
            frontend, model, head, label set or clip length (each differing key listed).
    """
    try:
        run_config = load_run_config(ckpt_path)
    except (FileNotFoundError, IsADirectoryError, ValueError) as error:
        raise type(error)(f"{KEY}={ckpt_path} cannot start this run: {error}") from error
    wanted = f"{type(task).__module__}.{type(task).__qualname__}"
    if run_config.task._target_ != wanted:
        raise ValueError(
            f"{KEY}={ckpt_path} is a checkpoint of {run_config.task._target_}, but this run trains {wanted}: "
            "pass a checkpoint of a train.py run of the same task, frontend, model and data"
        )
    source = type(task).load_from_checkpoint(ckpt_path, map_location="cpu")
    differing = differing_hparams(source.hparams, task.hparams)
    if differing:
        raise ValueError(
            f"{KEY}={ckpt_path} was trained with {', '.join(differing)}: its weights do not fit this run. "
            "Pass a checkpoint of a train.py run with the same frontend, model, task.head and data (e.g. the "
            f"full-rank run of this model and seed), or train from scratch with {KEY}=null"
        )
    return source
