"""Predict on audio files with a keyword checkpoint: ``python predict.py ckpt_path=<run>/checkpoints/last.ckpt
inputs=<a WAV, a folder or a .txt list of WAVs>`` (``mode=detect`` for keywords in long recordings).

Exit status: 0 when every input was read, 2 when some could not be (their rows in the CSV say why), 1 when
nothing was written (a config error, an unreadable checkpoint).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.deployment.prediction import run_predictions
from src.resolvers import register_resolvers

# conf/paths/default.yaml places data/ and logs/ under PROJECT_ROOT: this repository by default.
os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))
register_resolvers()
SOME_INPUTS_FAILED = 2


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    """Write the CSV and print where it is, how many inputs failed, and the accuracy over the files with a
    true label (``mode=classify``) or the detection score against ``detect.truth`` (``mode=detect``)."""
    summary = run_predictions(cfg)
    failed = f"{summary['failed']} of {summary['inputs']} inputs could not be read"
    if summary["mode"] == "classify":
        print(f"predictions: {summary['output']} ({failed})")
        if summary["labelled"]:
            print(
                f"accuracy = {summary['accuracy']:.4f} over {summary['labelled']} files with a true label "
                f"(their folder; model trained on the {summary['trained_on']})"
            )
    else:
        print(f"detections: {summary['output']} ({summary['detections']} detections; {failed})")
        if "score" in summary:
            score = summary["score"]
            precision, recall = (_number(score[key]) for key in ("precision", "recall"))
            print(
                f"precision = {precision}, recall = {recall} ({score['matched']} matched of "
                f"{score['detections']} detections and {score['targets']} keywords, centres within "
                f"{score['tolerance_s']} s; {score['false_alarms_per_hour']:.1f} false alarms per hour; "
                f"model trained on the {summary['trained_on']})"
            )
    if summary["failed"]:
        raise SystemExit(SOME_INPUTS_FAILED)


def _number(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"


if __name__ == "__main__":
    main()
