"""Evaluate a checkpoint of ``train.py`` on the test split, with the data config saved in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from src.callbacks.run_config import load_run_config
from src.data.timit.datamodule import TimitDataModule
from src.reporting.test_analysis import analyse_test
from src.tasks.classification import ClassificationTask
from src.tasks.phone_recognition import PhoneRecognitionTask
from src.training import build_loggers, command_line_overrides, corpus_note
from src.utils.run_files import write_json_atomic


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test ``cfg.ckpt_path``: data from the checkpoint's config merged with ``cfg.data``; writes
    ``metrics.json`` and the test analysis (``error_analysis/`` or ``test_decodings.csv``) in
    ``cfg.paths.output_dir`` and returns the content of ``metrics.json``."""
    run_config = load_run_config(cfg.ckpt_path)
    data_config = OmegaConf.merge(run_config.data, cfg.data)
    L.seed_everything(run_config.seed, workers=True)
    datamodule = instantiate(data_config, _convert_="all")
    task_class = PhoneRecognitionTask if isinstance(datamodule, TimitDataModule) else ClassificationTask
    model = task_class.load_from_checkpoint(cfg.ckpt_path, map_location="cpu")
    trained_on, served = (
        (model.phones, datamodule.phones)
        if task_class is PhoneRecognitionTask
        else (model.class_names, datamodule.class_names)
    )
    if list(trained_on) != list(served):
        raise ValueError(
            f"The checkpoint was trained on labels {trained_on} but the data serves {served}: evaluate it "
            "on data with the same label set"
        )
    trainer: L.Trainer = instantiate(cfg.trainer, logger=build_loggers(cfg), callbacks=[])
    test_metrics = trainer.test(model, datamodule=datamodule)[0]
    test_analysis = analyse_test(model, datamodule, cfg.paths.output_dir, trainer.loggers)
    summary = {
        "status": "ok",
        "task_name": cfg.task_name,
        "checkpoint": str(cfg.ckpt_path),
        "corpus": data_config.corpus,
        "corpus_note": corpus_note(data_config.corpus),
        "data_root": data_config.root,
        "overrides": command_line_overrides(),
        "metrics": {name: float(value) for name, value in test_metrics.items()},
        "test_metric": model.test_metric,
        "test_analysis": test_analysis,
    }
    write_json_atomic(Path(cfg.paths.output_dir) / "metrics.json", summary)
    return summary
