"""The DET curves of a sweep whose jobs wrote verification trial scores."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from src.reporting.aggregate_sweep import write_sweep
from src.reporting.sweep_table import aggregate_sweep
from tests.reporting.sweep_folders import job_config, job_summary, write_job

VERIFICATION = {
    "test_metric": "test/eer",
    "test_metric_mode": "min",
    "monitor": "val/eer",
    "monitor_mode": "min",
    "best_metric": "val/eer_best",
}


def write_trial_scores(job_dir: Path, separation: float, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    folder = job_dir / "verification"
    folder.mkdir()
    with (folder / "trial_scores.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["label", "enroll", "test", "condition", "score"])
        for index in range(200):
            target = index % 2
            score = float(torch.randn((), generator=generator)) * 0.2 + separation * target
            writer.writerow([target, f"a{index}.wav", f"b{index}.wav", "text_independent", f"{score:.6f}"])


def test_a_sweep_of_verification_jobs_gets_det_curves(tmp_path: Path) -> None:
    sweep = tmp_path / "logs" / "speaker_frontends" / "multiruns" / "t"
    for num, (frontend, separation, seed) in enumerate(
        [("logmel", 0.5, 1), ("logmel", 0.5, 2), ("mfcc", 0.1, 1)]
    ):
        summary = job_summary(0.1, best_value=0.1, scoring=VERIFICATION)
        job_dir = write_job(
            sweep, num, [f"frontend={frontend}", f"seed={seed}"], summary, config=job_config()
        )
        write_trial_scores(job_dir, separation, seed)
    output = tmp_path / "out"
    output.mkdir()
    plots = write_sweep(aggregate_sweep("speaker_frontends", [sweep]), output)
    assert output / "det_curves.png" in plots
    assert (output / "det_curves.png").stat().st_size > 0


def test_a_sweep_without_trial_scores_has_no_det_curves(tmp_path: Path) -> None:
    sweep = tmp_path / "logs" / "s" / "multiruns" / "t"
    write_job(sweep, 0, ["seed=1"], job_summary(0.9), config=job_config())
    output = tmp_path / "out"
    output.mkdir()
    write_sweep(aggregate_sweep("s", [sweep]), output)
    assert not (output / "det_curves.png").exists()
