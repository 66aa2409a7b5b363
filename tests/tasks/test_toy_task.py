"""A task is added without touching the entry points: a user's own task class and data module
(``tests/tasks/toy_task.py``, copied into a folder on ``PYTHONPATH``) and their configs (``task/toy.yaml``,
``data/toy.yaml`` in a config folder of the user's, given to Hydra with ``--config-dir``) run with the
unchanged ``train.py`` and ``test.py``, which report the toy task's own metric, monitor and direction."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_python

TOY_TASK = Path(__file__).with_name("toy_task.py")
TASK_YAML = """\
# Loudness regression: encoder -> mean over frames -> one number, mean squared error.
_target_: toy_task.LoudnessRegressionTask
monitor: val/mae
mode: min
head:
  _target_: toy_task.RegressionHead
  _partial_: true
  pooling: mean
standardize_features: false
spec_augment: ${augmentation.spec_augment}
"""
DATA_YAML = """\
# Random clips at four loudness levels.
_target_: toy_task.LoudnessDataModule
defaults:
  - override /task@_global_.task: toy
  - override /model@_global_.model: gru
sample_rate: 16000
clip_samples: 4000
split_sizes: [16, 8, 8]
batch_size: 8
"""


@pytest.fixture
def user_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` holding ``code/toy_task.py`` (on ``PYTHONPATH``) and ``conf/{task,data}/toy.yaml``."""
    code = tmp_path / "code"
    code.mkdir()
    shutil.copy(TOY_TASK, code / "toy_task.py")
    for group, text in (("task", TASK_YAML), ("data", DATA_YAML)):
        (tmp_path / "conf" / group).mkdir(parents=True)
        (tmp_path / "conf" / group / "toy.yaml").write_text(text)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")])))
    return tmp_path


def run(script: str, project: Path, *overrides: str) -> subprocess.CompletedProcess:
    result = run_python(
        script, "--config-dir", str(project / "conf"), *overrides, project_root=project, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_train_py_runs_a_task_it_does_not_know(user_project: Path) -> None:
    run_dir = user_project / "run"
    result = run("train.py", user_project, "data=toy", "trainer=fast_dev_run", f"hydra.run.dir={run_dir}")
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "ok"
    assert summary["task"] == "LoudnessRegressionTask"
    assert (summary["test_metric"], summary["test_metric_mode"]) == ("test/mae", "min")
    assert (summary["monitor"], summary["monitor_mode"], summary["best_metric"]) == (
        "val/mae",
        "min",
        "val/mae_best",
    )
    metrics = summary["metrics"]
    assert math.isfinite(metrics["test/mae"]) and metrics["test/mae"] >= 0
    assert math.isfinite(metrics["val/mae_best"]) and metrics["val/mae_best"] >= 0
    assert "test/acc" not in metrics and "test/per" not in metrics
    assert summary["split_sizes"] == {"train": 16, "val": 8, "test": 8}
    assert summary["complexity"]["complexity/head_params"] == 64 + 1  # Linear(gru's 64 units, 1)
    assert summary["test_analysis"] == {"clips": 8, "predictions": "predictions.csv"}
    rows = list(csv.DictReader((run_dir / "predictions.csv").open()))
    assert [row["file"] for row in rows] == [f"test/{index:03d}" for index in range(8)]
    assert f"test/mae = {metrics['test/mae']:.4f}" in result.stdout


def test_checkpoints_follow_and_test_py_evaluates_the_task_it_does_not_know(user_project: Path) -> None:
    run_dir, evaluation = user_project / "run", user_project / "evaluation"
    short_fit = ["trainer=cpu", "trainer.max_epochs=2", "trainer.log_every_n_steps=1"]
    run("train.py", user_project, "data=toy", *short_fit, f"hydra.run.dir={run_dir}")
    fitted = json.loads((run_dir / "metrics.json").read_text())
    # the best checkpoint is picked by the toy task's val/mae, lower is better
    best = Path(fitted["best_checkpoint"])
    assert best.is_file() and fitted["metrics"]["val/mae_best"] >= 0

    run("test.py", user_project, f"ckpt_path={best}", "trainer=cpu", f"hydra.run.dir={evaluation}")
    evaluated = json.loads((evaluation / "metrics.json").read_text())
    assert (evaluated["status"], evaluated["test_metric"], evaluated["test_metric_mode"]) == (
        "ok",
        "test/mae",
        "min",
    )
    assert evaluated["metrics"]["test/mae"] == pytest.approx(fitted["metrics"]["test/mae"], rel=1e-6)
    assert len(list(csv.DictReader((evaluation / "predictions.csv").open()))) == 8
