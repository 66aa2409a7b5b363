"""Train a model: ``python train.py [overrides]``, or a sweep: ``python train.py -m a=1,2 b=3,4``."""

from __future__ import annotations

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.training import train

# conf/paths/default.yaml places data/ and logs/ under PROJECT_ROOT: this repository by default.
os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Fit, test the best checkpoint, print the test accuracy; return the best validation
    accuracy (the value hyperparameter sweepers optimise)."""
    summary = train(cfg)
    metrics = summary["metrics"]
    smoke = "fast_dev_run: one batch per stage, not a result; " if summary["fast_dev_run"] else ""
    print(
        f"test/acc = {metrics['test/acc']:.4f}  ({smoke}best val/acc = {metrics['val/acc_best']:.4f}; "
        f"{summary['corpus_note']}; run folder: {summary['output_dir']})"
    )
    return metrics["val/acc_best"]


if __name__ == "__main__":
    main()
