"""Train a model: ``python train.py [overrides]``, or a sweep: ``python train.py -m a=1,2 b=3,4``."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from src.resolvers import register_resolvers, worst_value
from src.training import train

# conf/paths/default.yaml places data/ and logs/ under PROJECT_ROOT: this repository by default.
os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))

log = logging.getLogger(__name__)
register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Fit, test the best checkpoint, print the task's test metric (accuracy, or phone error rate for
    ``task=ctc``); return the best value of the task's validation metric (what sweepers optimise).

    In a multirun a failed job returns the worst value of the task's direction (``-inf`` for
    ``task.mode=max``, ``+inf`` for ``min``, so an Optuna search ranks it last and goes on) instead of
    stopping the sweep: its ``metrics.json`` holds the error, the sweep's table lists it, and the command
    exits non-zero once all jobs ended.

    The other processes of a distributed run (``trainer=ddp``: Lightning runs this script again for each)
    print no summary and return NaN; global rank 0 prints and returns the run's values.
    """
    try:
        summary = train(cfg)
    except Exception:
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            raise
        log.exception(
            "Job %s failed; the sweep goes on and its table lists the error", HydraConfig.get().job.num
        )
        return worst_value(cfg.task.mode)
    if summary is None:
        return math.nan
    metrics, test, best = summary["metrics"], summary["test_metric"], summary["best_metric"]
    caveats = "".join(f"not a result: {caveat}; " for caveat in summary["caveats"])
    print(
        f"{test} = {metrics[test]:.4f}  ({caveats}best {best.removesuffix('_best')} = {metrics[best]:.4f}; "
        f"{summary['corpus_note']}; run folder: {summary['output_dir']})"
    )
    return metrics[best]


if __name__ == "__main__":
    main()
