"""Evaluate a checkpoint on the test split: ``python test.py ckpt_path=<run>/checkpoints/last.ckpt``."""

from __future__ import annotations

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.evaluation import evaluate
from src.resolvers import register_resolvers

# conf/paths/default.yaml places data/ and logs/ under PROJECT_ROOT: this repository by default.
os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))
register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="test")
def main(cfg: DictConfig) -> float:
    """Test the checkpoint; print its task's test metric (accuracy, or phone error rate), with the data keys
    that differ from the checkpoint's, and return the metric."""
    summary = evaluate(cfg)
    name = summary["test_metric"]
    caveats = "".join(f"not a result: {caveat}; " for caveat in summary["caveats"])
    print(f"{name} = {summary['metrics'][name]:.4f}  ({caveats}{summary['corpus_note']}; {cfg.ckpt_path})")
    if summary["data_changes"]:
        print(f"tested on data changed from the checkpoint's: {', '.join(summary['data_changes'])}")
    return summary["metrics"][name]


if __name__ == "__main__":
    main()
