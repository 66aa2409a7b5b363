"""Evaluate a checkpoint of ``train.py`` on the test split, with the data config saved in it.

The checkpoint fixes everything the model was built for; ``test.py`` may change only what it reads
(``data.root``, ``data.corpus``, ...), the trainer, the loggers and the paths. What would make the model
see other input than it was trained on is refused before any data is read (another ``data.sample_rate``,
an example length that an encoder of a fixed input size cannot read) or logged and recorded in
``metrics.json`` (another example length, another share of each class).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from src.callbacks.run_config import load_run_config
from src.distributed import SINGLE_PROCESS
from src.run_record import run_caveats
from src.tasks.base import FrontendEncoderTask
from src.training import build_loggers, command_line_overrides, corpus_note
from src.utils.run_files import write_json_atomic

log = logging.getLogger(__name__)

TEST_CONFIG_KEYS = frozenset({"task_name", "ckpt_path", "data", "trainer", "logger", "paths"})
"""The top-level keys of ``conf/test.yaml``; everything else of a run comes from the checkpoint."""


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test ``cfg.ckpt_path``: the task class of the checkpoint's config, data from that config merged
    with ``cfg.data``; writes ``metrics.json`` and the task's test outputs (``error_analysis/``,
    ``test_decodings.csv``) in ``cfg.paths.output_dir`` and returns the content of ``metrics.json``.

    Raises:
        ValueError: for a top-level key test.py does not apply (``+model.groups=2``), a ``cfg.data`` key
            the checkpoint's data config does not have, another ``data.sample_rate`` than the
            checkpoint's, examples the checkpoint's frontend or encoder cannot read, or data that serves
            other labels than the checkpoint was trained on (see :func:`checked_data_config` and
            :func:`check_test_examples`); and ``load_run_config``'s refusals of a file that is no
            checkpoint of this project.
    """
    check_test_keys(cfg)
    run_config = load_run_config(cfg.ckpt_path)
    data_config = checked_data_config(run_config.data, cfg.data, run_config.frontend)
    L.seed_everything(run_config.seed, workers=True)
    datamodule = instantiate(data_config, _convert_="all")
    model = get_class(run_config.task._target_).load_from_checkpoint(cfg.ckpt_path, map_location="cpu")
    data_changes = changed_keys(run_config.data, data_config)
    if data_changes:
        log.info("Testing on data changed from the checkpoint's: %s", ", ".join(data_changes))
    trained_on, served = list(model.hparams.label_names), list(datamodule.label_names)
    if trained_on != served:
        raise ValueError(
            f"The checkpoint was trained on labels {trained_on} but the data serves {served}"
            f"{' after ' + ', '.join(data_changes) if data_changes else ''}: evaluate it on data with the "
            "same label set"
        )
    check_test_examples(model, datamodule.example_samples, data_changes)
    # Always one process on one device (also with trainer=ddp), so the outputs hold each test example once.
    trainer: L.Trainer = instantiate(cfg.trainer, **SINGLE_PROCESS, logger=build_loggers(cfg), callbacks=[])
    test_metrics = trainer.test(model, datamodule=datamodule)[0]
    test_analysis = model.write_test_outputs(datamodule, Path(cfg.paths.output_dir), trainer.loggers)
    summary = {
        "status": "ok",
        "task_name": cfg.task_name,
        "checkpoint": str(cfg.ckpt_path),
        "caveats": run_caveats(cfg.trainer),
        "corpus": data_config.get("corpus"),
        "corpus_note": corpus_note(data_config.get("corpus")),
        "data_root": data_config.get("root"),
        "data_changes": data_changes,
        "overrides": command_line_overrides(),
        "metrics": {name: float(value) for name, value in test_metrics.items()},
        "test_metric": model.test_metric,
        "test_metric_mode": model.test_mode,
        "test_analysis": test_analysis,
    }
    write_json_atomic(Path(cfg.paths.output_dir) / "metrics.json", summary)
    return summary


def check_test_keys(cfg: DictConfig) -> None:
    """Refuse top-level keys that ``test.py`` would silently ignore (``+model.groups=2``, ``+seed=1``,
    ``+frontend.n_mels=80``): the checkpoint's own frontend, model, task and seed are evaluated.

    Raises:
        ValueError: naming the keys and those test.py applies.
    """
    ignored = sorted(set(cfg.keys()) - TEST_CONFIG_KEYS)
    if ignored:
        given = [f"+{key}={value}" for key, value in flat_keys(OmegaConf.masked_copy(cfg, ignored)).items()]
        raise ValueError(
            f"test.py evaluates the checkpoint as it was trained and does not apply {', '.join(given)}: it "
            "changes only data.*, trainer.*, logger.* and paths.*; train a model with those settings "
            "(train.py) to test them"
        )


def checked_data_config(
    saved: DictConfig, overrides: DictConfig, frontend: Mapping[str, Any] | None = None
) -> DictConfig:
    """The checkpoint's data config ``saved`` with ``test.py``'s ``overrides`` (``cfg.data``) merged on.

    Args:
        saved: the ``data`` node of the checkpoint's run config (resolved).
        overrides: the ``data`` keys given to ``test.py`` (``+data.<key>=...``).
        frontend: the checkpoint's ``frontend`` node, for the rate its frontend was built for.

    Raises:
        ValueError: for a key ``saved`` does not have (a misspelt ``+data.<key>``, listing the keys);
            another ``data.corpus`` without ``data.root`` when the saved root was derived from the saved
            corpus; or another ``data.sample_rate``: the checkpoint's frontend was built for its rate, and
            the data module already resamples every file to ``data.sample_rate``.
    """
    known = set(flat_keys(saved))
    # a whole node may be given too (+data.augmentation=null): every prefix of a known key
    nodes = {key.rsplit(".", depth)[0] for key in known for depth in range(1, key.count(".") + 1)}
    unknown = [key for key in flat_keys(overrides) if key not in known | nodes]
    if unknown:
        raise ValueError(
            f"{', '.join(f'+data.{key}' for key in unknown)}: not a key of the checkpoint's data config, "
            f"whose keys are {', '.join(sorted(known))}"
        )
    corpus, root = overrides.get("corpus"), saved.get("root")
    # the data configs' root is ${paths.data_dir}/${.corpus}, resolved when the checkpoint was trained
    root_of_saved_corpus = root is not None and Path(root).name == saved.get("corpus")
    if corpus not in (None, saved.get("corpus")) and "root" not in overrides and root_of_saved_corpus:
        raise ValueError(
            f"+data.corpus={corpus} keeps the checkpoint's data.root={root}, which was resolved from "
            f"data.corpus={saved.corpus} when it was trained: also set +data.root to the folder that "
            f"holds the {corpus} corpus, e.g. +data.root={Path(root).parent / corpus}"
        )
    rate = overrides.get("sample_rate", saved.get("sample_rate"))
    if rate != saved.get("sample_rate"):
        built_for = (frontend or {}).get("sample_rate", saved.sample_rate)
        raise ValueError(
            f"+data.sample_rate={rate} differs from the checkpoint's data.sample_rate={saved.sample_rate}: "
            f"its frontend was built for {built_for} Hz audio (frontend.sample_rate={built_for}), and "
            f"{rate} Hz waveforms would be read as {built_for} Hz ones. Leave data.sample_rate out: the "
            f"data module resamples every file, whatever its rate, to the checkpoint's {saved.sample_rate} Hz"
        )
    return OmegaConf.merge(saved, overrides)


def check_test_examples(model: FrontendEncoderTask, example_samples: int, data_changes: list[str]) -> None:
    """Refuse test examples of ``example_samples`` samples that the checkpoint's frontend or encoder
    cannot read; warn when their length differs from the one it was trained on.

    Args:
        model: the checkpoint's task.
        example_samples: samples of one test example (``datamodule.example_samples``).
        data_changes: the data keys that differ from the checkpoint's (:func:`changed_keys`), for the
            messages.

    Raises:
        ValueError: from the frontend's ``check_input_samples`` (too short), or the encoder's
            ``check_input_frames`` (``model=linear`` reads a fixed number of frames), naming the keys.
    """
    model.frontend.check_input_samples(example_samples)
    trained = int(model.hparams.example_samples)
    if example_samples == trained:
        return
    frames, trained_frames = model.frontend.num_frames(example_samples), model.frontend.num_frames(trained)
    changed = ", ".join(data_changes) or "the data"
    try:
        model.encoder.check_input_frames(frames)
    except ValueError as error:
        raise ValueError(
            f"{error}. The checkpoint was trained on examples of {trained} samples ({trained_frames} frames) "
            f"and the test data ({changed}) gives {example_samples} ({frames} frames): leave those keys out"
        ) from error
    log.warning(
        "Testing on examples of %d samples (%d frames) with a checkpoint trained on %d (%d frames), "
        "after %s: the result is not the trained configuration's",
        example_samples,
        frames,
        trained,
        trained_frames,
        changed,
    )


def changed_keys(saved: Mapping[str, Any], tested: Mapping[str, Any], prefix: str = "data.") -> list[str]:
    """``"data.<key>=<tested> (checkpoint: <saved>)"`` for each key whose value differs between the two
    data configs, nested nodes compared key by key (a node replaced by a value is one change)."""
    saved, tested = _plain(saved), _plain(tested)
    changes = []
    for key in sorted(saved.keys() | tested.keys()):
        before, after = saved.get(key), tested.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            changes += changed_keys(before, after, f"{prefix}{key}.")
        elif before != after:
            changes.append(f"{prefix}{key}={after} (checkpoint: {before})")
    return changes


def _plain(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` as plain containers, interpolations resolved."""
    return OmegaConf.to_container(config, resolve=True) if OmegaConf.is_config(config) else dict(config)


def flat_keys(config: DictConfig) -> dict[str, Any]:
    """Dotted key -> value of every leaf of ``config`` (a list is a leaf)."""
    flat: dict[str, Any] = {}
    for key, value in OmegaConf.to_container(config, resolve=True).items():
        if isinstance(value, dict) and value:
            flat.update(
                {f"{key}.{inner}": leaf for inner, leaf in flat_keys(OmegaConf.create(value)).items()}
            )
        else:
            flat[key] = value
    return flat
