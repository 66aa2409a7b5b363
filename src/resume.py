"""Resuming a run from a checkpoint: which config keys may differ between the checkpoint's run and the
resumed one. Only those that say where files are, how data is loaded, what is logged and which device
trains; any other difference would change what the saved weights, optimiser, scheduler and random
generator states mean, so it is refused before training."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from src.callbacks.run_config import load_run_config

MAY_DIFFER = (
    # the checkpoint to resume from, the run's name (its log folder) and the question it is filed under
    "ckpt_path",
    "task_name",
    "question",
    # where files are read and written, and what is logged
    "paths",
    "logger",
    "callbacks",
    "trainer.default_root_dir",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    # where the corpus and its cache are, and how fast they are read (not which clips, nor their order)
    "data.root",
    "data.cache_dir",
    "data.download",
    "data.num_workers",
    "data.pin_memory",
    "data.generator.num_workers",
    # which device trains (not how many: that changes the batch of each optimiser step)
    "trainer.accelerator",
    "trainer.deterministic",
    # how the encoder runs (eager or compiled), not what it computes
    "task.compile",
)
"""Keys (and the keys under them) that may differ on resume."""

MAX_EPOCHS = "trainer.max_epochs"
"""May differ too, unless the learning-rate schedule follows it (``T_max: ${trainer.max_epochs}``)."""


def flat_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"data.words": ["yes", "no"], "frontend.n_mels": 40, ...}``: every leaf of a resolved config
    (lists are leaves; an empty mapping is a leaf ``{}``)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flat_config(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def may_differ(key: str) -> bool:
    """Whether ``key`` (dotted) is one of :data:`MAY_DIFFER` or under one."""
    return any(key == allowed or key.startswith(f"{allowed}.") for allowed in MAY_DIFFER)


def differing_keys(saved: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{key: (saved value, wanted value)}`` for every key of two resolved configs that differs and may
    not (absent keys count as ``None``); ``trainer.max_epochs`` is among them only when a ``scheduler``
    key changes with it from and to the same values (it follows ``${trainer.max_epochs}``): the schedule's
    length would change."""
    flat_saved, flat_wanted = flat_config(saved), flat_config(wanted)
    differing = {
        key: (flat_saved.get(key), flat_wanted.get(key))
        for key in sorted(flat_saved.keys() | flat_wanted.keys())
        if flat_saved.get(key) != flat_wanted.get(key) and not may_differ(key)
    }
    epochs = differing.get(MAX_EPOCHS)
    follows = any(key.startswith("scheduler.") and change == epochs for key, change in differing.items())
    if epochs is not None and not follows:
        del differing[MAX_EPOCHS]  # no schedule follows it: the run just trains longer (or shorter)
    return differing


def check_resumable(ckpt_path: str, run_config: Mapping[str, Any]) -> None:
    """Refuse to resume from ``ckpt_path`` with a resolved ``run_config`` that differs from the checkpoint's
    run in any key outside :data:`MAY_DIFFER` (label set, phones, frontend, model, task, optimiser,
    scheduler, schedule length, seed, batch size, augmentation, corpus and splits, ...).

    Raises:
        ValueError: listing each differing key with the checkpoint's value (the one to resume with) and
            the asked-for one; ``trainer.max_epochs`` with the checkpoint's value when the schedule
            follows it.
        FileNotFoundError: when ``ckpt_path`` is not a file (from :func:`load_run_config`).
    """
    saved = OmegaConf.to_container(load_run_config(ckpt_path), resolve=True)
    differing = differing_keys(saved, run_config)
    if not differing:
        return
    listed = ", ".join(f"{key}={old} (asked for {new})" for key, (old, new) in differing.items())
    schedule = ""
    if MAX_EPOCHS in differing:
        schedule = (
            f" The learning-rate schedule follows {MAX_EPOCHS}, so a resumed run cannot change it: resume "
            f"with {MAX_EPOCHS}={differing[MAX_EPOCHS][0]}, or start a new run for a longer schedule."
        )
    raise ValueError(
        f"ckpt_path={ckpt_path} was trained with {listed}: resume with the checkpoint's values, "
        f"{resume_command(ckpt_path)}, or leave ckpt_path out to train a new run. Only paths, logging, data "
        f"loading and the device may change on resume ({', '.join(MAY_DIFFER)}).{schedule}"
    )


def resume_command(ckpt_path: str | Path) -> str:
    """``python train.py <the overrides the checkpoint's run was started with> ckpt_path=<ckpt_path>``
    when its run folder (``<run>/checkpoints/<name>.ckpt``) has ``.hydra/overrides.yaml``; otherwise a
    pointer to that file."""
    overrides_file = Path(ckpt_path).parent.parent / ".hydra" / "overrides.yaml"
    if not overrides_file.is_file():
        return "with the overrides listed in its run's .hydra/overrides.yaml"
    overrides = [
        str(override)
        for override in OmegaConf.load(overrides_file)
        if not str(override).startswith(("ckpt_path=", "hydra."))
    ]
    return f"e.g. python train.py {' '.join([*overrides, f'ckpt_path={ckpt_path}'])}"
