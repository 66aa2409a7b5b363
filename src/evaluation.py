"""Evaluate a checkpoint of ``train.py`` on the test split, with the data config saved in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from src.callbacks.run_config import load_run_config
from src.training import build_loggers, command_line_overrides, corpus_note
from src.utils.run_files import write_json_atomic


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test ``cfg.ckpt_path``: the task class of the checkpoint's config, data from that config merged
    with ``cfg.data``; writes ``metrics.json`` and the task's test outputs (``error_analysis/``,
    ``test_decodings.csv``) in ``cfg.paths.output_dir`` and returns the content of ``metrics.json``.

    Raises:
        ValueError: when the data serves other labels than the checkpoint was trained on.
    """
    run_config = load_run_config(cfg.ckpt_path)
    data_config = OmegaConf.merge(run_config.data, cfg.data)
    L.seed_everything(run_config.seed, workers=True)
    datamodule = instantiate(data_config, _convert_="all")
    model = get_class(run_config.task._target_).load_from_checkpoint(cfg.ckpt_path, map_location="cpu")
    trained_on, served = list(model.hparams.label_names), list(datamodule.label_names)
    if trained_on != served:
        raise ValueError(
            f"The checkpoint was trained on labels {trained_on} but the data serves {served}: evaluate it "
            "on data with the same label set"
        )
    trainer: L.Trainer = instantiate(cfg.trainer, logger=build_loggers(cfg), callbacks=[])
    test_metrics = trainer.test(model, datamodule=datamodule)[0]
    test_analysis = model.write_test_outputs(datamodule, Path(cfg.paths.output_dir), trainer.loggers)
    summary = {
        "status": "ok",
        "task_name": cfg.task_name,
        "checkpoint": str(cfg.ckpt_path),
        "corpus": data_config.get("corpus"),
        "corpus_note": corpus_note(data_config.get("corpus")),
        "data_root": data_config.get("root"),
        "overrides": command_line_overrides(),
        "metrics": {name: float(value) for name, value in test_metrics.items()},
        "test_metric": model.test_metric,
        "test_metric_mode": model.test_mode,
        "test_analysis": test_analysis,
    }
    write_json_atomic(Path(cfg.paths.output_dir) / "metrics.json", summary)
    return summary
