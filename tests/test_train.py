"""End to end: train, test the checkpoint with test.py, resume, reproduce, sweep, what is logged."""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra.types import RunMode
from omegaconf import DictConfig
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.callbacks.run_config import CHECKPOINT_FORMAT, FORMAT_KEY
from src.resolvers import worst_value
from src.training import train
from tests.conftest import TINY_CORPUS_SPEAKERS, choices, compose_config, run_python, tiny_data_overrides

# A real but short fit: one epoch of a few batches, so checkpoints are written.
SHORT_FIT = [
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=4",
    "+trainer.limit_val_batches=2",
    "+trainer.limit_test_batches=2",
    "trainer.log_every_n_steps=1",
]


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def run_script(script: str, *overrides: str, project_root: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``script`` of the repository as a user would and require it to succeed (see ``run_python``)."""
    result = run_python(script, *overrides, project_root=project_root, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def short_fit(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The summary of one :data:`SHORT_FIT` of the default config (its checkpoints are written)."""
    root = tmp_path_factory.mktemp("short_fit")
    paths = [f"paths.root_dir={root}", f"paths.output_dir={root / 'run'}", "trainer=cpu"]
    return train(compose_config("config", [*paths, *tiny_data_overrides([], request), *SHORT_FIT]))


def test_fast_dev_run_trains_tests_and_writes_metrics(
    make_config: Callable[..., DictConfig], tmp_path: Path
) -> None:
    summary = train(make_config())
    assert summary["status"] == "ok"
    assert summary["fast_dev_run"] is True
    assert read_metrics(tmp_path / "run") == json.loads(json.dumps(summary, default=str))
    metrics = summary["metrics"]
    assert 0.0 <= metrics["test/acc"] <= 1.0
    assert metrics["test/loss"] > 0
    assert summary["corpus"] == "generated"
    assert "synthetic" in summary["corpus_note"]
    assert (summary["task"], summary["test_metric"], summary["test_metric_mode"]) == (
        "ClassificationTask",
        "test/acc",
        "max",
    )
    assert (summary["monitor"], summary["monitor_mode"], summary["best_metric"]) == (
        "val/acc",
        "max",
        "val/acc_best",
    )
    assert summary["frontend_setting"] is None and summary["question"] is None
    complexity = summary["complexity"]
    assert complexity["complexity/frontend_params"] == 0
    assert complexity["complexity/frontend_macs"] > 0
    assert complexity["complexity/encoder_params"] > 0 and complexity["complexity/head_params"] > 0
    assert complexity["complexity/backbone_params"] == (
        complexity["complexity/encoder_params"] + complexity["complexity/head_params"]
    )
    assert complexity["complexity/total_macs"] == (
        complexity["complexity/frontend_macs"] + complexity["complexity/backbone_macs"]
    )


CLIP_MODELS = choices("model")
# Every model but those that collapse time serves CTC.
TIME_COLLAPSING = ("linear", "mlp", "cnn2d")
PER_FRAME_MODELS = [model for model in choices("model") if model not in TIME_COLLAPSING]


# frontend=stft (the denoising analysis) is trained with every mask estimator in tests/denoising/ and built
# with every model in tests/test_configs.py; here it trains one classifier.
FRONTEND_MODELS = [
    (frontend, model)
    for frontend in choices("frontend")
    for model in CLIP_MODELS
    if frontend != "stft" or model == "conv1d"
]


@pytest.mark.parametrize(("frontend", "model"), FRONTEND_MODELS)
def test_every_frontend_and_model_runs_fast_dev_run(
    make_config: Callable[..., DictConfig], frontend: str, model: str
) -> None:
    summary = train(make_config(f"frontend={frontend}", f"model={model}"))
    assert summary["status"] == "ok"
    assert 0.0 <= summary["metrics"]["test/acc"] <= 1.0
    assert summary["complexity"]["complexity/backbone_params"] > 0


@pytest.mark.parametrize("model", PER_FRAME_MODELS)
def test_every_phone_recognition_model_runs_fast_dev_run_on_timit(
    make_config: Callable[..., DictConfig], tmp_path: Path, model: str
) -> None:
    summary = train(make_config("data=timit", f"model={model}", "frontend=trainable"))
    assert summary["status"] == "ok"
    assert (summary["task"], summary["monitor"], summary["monitor_mode"]) == (
        "PhoneRecognitionTask",
        "val/per",
        "min",
    )
    assert (summary["test_metric"], summary["best_metric"]) == ("test/per", "val/per_best")
    assert summary["frontend_setting"] == "A"
    assert summary["metrics"]["test/per"] >= 0.0 and "test/acc" not in summary["metrics"]
    assert summary["split_sizes"] == {"train": 16, "val": 8, "test": 8}
    rows = list(csv.DictReader((tmp_path / "run" / "test_decodings.csv").open()))
    assert len(rows) == 8  # the whole (tiny) core test set fits one batch
    assert all(row["file"].startswith("TEST/") and row["reference"] for row in rows)


@pytest.mark.parametrize("data", ["kws10", "kws12", "kws35"])
@pytest.mark.parametrize("model", ["rnn", "lstm", "bilstm", "gru", "crnn"])
def test_every_sequence_model_runs_every_keyword_task(
    make_config: Callable[..., DictConfig], data: str, model: str
) -> None:
    summary = train(make_config(f"data={data}", f"model={model}", "task.standardize_features=true"))
    assert summary["status"] == "ok"
    assert 0.0 <= summary["metrics"]["test/macro_f1"] <= 1.0


@pytest.mark.parametrize(
    "overrides",
    [
        ["data=kws12", "model=gru", "augmentation=all", "task.standardize_features=true"],
        ["data=kws35", "model=crnn"],
    ],
    ids=["kws12-gru-augmented", "kws35-crnn"],
)
def test_keyword_tasks_with_sequence_models_train_and_analyse_errors(
    make_config: Callable[..., DictConfig], tmp_path: Path, overrides: list[str]
) -> None:
    summary = train(make_config(*overrides, *SHORT_FIT, trainer="cpu"))
    assert summary["status"] == "ok"
    classes = 12 if "data=kws12" in overrides else 35
    per_class = list(csv.DictReader((tmp_path / "run" / "error_analysis" / "per_class.csv").open()))
    assert len(per_class) == classes
    predictions = list(csv.DictReader((tmp_path / "run" / "error_analysis" / "predictions.csv").open()))
    assert (
        len(predictions) == summary["test_analysis"]["clips"] == min(2 * 64, summary["split_sizes"]["test"])
    )
    assert 0 <= summary["metrics"]["test/macro_f1"] <= 1


@pytest.mark.parametrize("logger", ["csv", "tensorboard_csv"])
def test_training_with_each_logger(
    make_config: Callable[..., DictConfig], tmp_path: Path, logger: str
) -> None:
    assert train(make_config(*SHORT_FIT, f"logger={logger}", trainer="cpu"))["status"] == "ok"
    rows = (tmp_path / "run" / "csv" / "metrics.csv").read_text().splitlines()
    assert "test/acc" in rows[0] and len(rows) > 2
    assert (tmp_path / "run" / "csv" / "hparams.yaml").read_text().count("frontend.n_mels") == 1


def test_a_failing_run_still_writes_metrics_json(
    make_config: Callable[..., DictConfig], tmp_path: Path
) -> None:
    with pytest.raises(Exception, match="groups"):
        train(make_config("model.groups=5"))
    summary = read_metrics(tmp_path / "run")
    assert summary["status"] == "failed"
    assert "model.groups=5" in summary["error"]


def test_tensorboard_gets_scalars_complexity_and_spectrogram(
    make_config: Callable[..., DictConfig], tmp_path: Path
) -> None:
    train(make_config(*SHORT_FIT, trainer="cpu"))
    event_dir = tmp_path / "run" / "tensorboard"
    events = EventAccumulator(str(event_dir), size_guidance={"images": 0}).Reload()
    scalars = set(events.Tags()["scalars"])
    for tag in (
        "train/loss_step",
        "train/loss_epoch",
        "val/acc",
        "val/loss",
        "train/epoch_time_s",
        "test/acc",
    ):
        assert tag in scalars, f"{tag} not logged; got {sorted(scalars)}"
    assert events.Scalars("train/epoch_time_s")[0].value > 0
    assert not [tag for tag in scalars if tag.startswith("complexity/")]  # a text table instead
    assert "complexity/text_summary" in events.Tags()["tensors"]
    assert {f"features/validation/example_{index}" for index in range(4)} <= set(events.Tags()["images"])
    trial = EventAccumulator(str(event_dir / "hparams")).Reload()
    assert {"_hparams_/session_start_info", "_hparams_/session_end_info"} <= set(trial.Tags()["tensors"])
    assert {"hparams/test_acc", "hparams/total_params", "hparams/total_macs"} <= set(trial.Tags()["tensors"])


def test_trainable_frontend_logs_its_filters_and_how_far_they_moved(
    make_config: Callable[..., DictConfig], tmp_path: Path
) -> None:
    summary = train(
        make_config(
            *SHORT_FIT, "frontend=trainable", "frontend.trainable_mel=true", "model=linear", trainer="cpu"
        )
    )
    assert summary["metrics"]["frontend/mel_distance"] > 0  # trained
    assert summary["metrics"]["frontend/stft_distance"] == 0  # fixed in setting B
    event_dir = tmp_path / "run" / "tensorboard"
    events = EventAccumulator(str(event_dir), size_guidance={"images": 0}).Reload()
    assert {"frontend/mel_distance", "frontend/stft_distance"} <= set(events.Tags()["scalars"])
    for tag in ("frontend/mel_filters", "frontend/stft_kernels"):
        steps = [image.step for image in events.Images(tag)]
        assert len(steps) == 2 and steps[0] == 0 < steps[1]  # at the start and at the end of fit


def test_same_seed_gives_same_metrics_and_another_seed_does_not(
    make_config: Callable[..., DictConfig],
) -> None:
    first = train(make_config(*SHORT_FIT, "seed=7", run="a", trainer="cpu"))["metrics"]
    second = train(make_config(*SHORT_FIT, "seed=7", run="b", trainer="cpu"))["metrics"]
    other = train(make_config(*SHORT_FIT, "seed=8", run="c", trainer="cpu"))["metrics"]
    for name in ("train/loss_epoch", "val/loss", "test/loss", "test/acc"):
        assert first[name] == second[name], name
    assert first["train/loss_epoch"] != other["train/loss_epoch"]


def test_last_checkpoint_follows_the_latest_epoch_not_the_best(
    make_config: Callable[..., DictConfig], tmp_path: Path
) -> None:
    # lr=0: validation accuracy never improves after the first epoch, so the best stays epoch 0.
    summary = train(make_config(*SHORT_FIT[1:], "trainer.max_epochs=3", "optimizer.lr=0", trainer="cpu"))
    assert Path(summary["best_checkpoint"]).name == "epoch_000.ckpt"
    assert Path(summary["last_checkpoint"]).name == "last.ckpt"
    assert torch.load(summary["last_checkpoint"], map_location="cpu", weights_only=True)["epoch"] == 2


def test_resume_continues_from_last_checkpoint(
    make_config: Callable[..., DictConfig], short_fit: dict[str, Any]
) -> None:
    last = Path(short_fit["last_checkpoint"])
    assert last.name == "last.ckpt" and last.is_file()
    resumed = train(
        make_config(
            *SHORT_FIT[1:],
            "trainer.max_epochs=2",
            "scheduler.T_max=1",
            f"ckpt_path={last}",
            run="resumed",
            trainer="cpu",
        )
    )
    assert short_fit["epochs_completed"] == 1
    assert resumed["epochs_completed"] == 2
    assert resumed["epoch_times_s"][:1] == short_fit["epoch_times_s"]
    assert len(resumed["epoch_times_s"]) == 2, "the resumed run must train only the missing epoch"
    with pytest.raises(ValueError, match=r"frontend\.n_mels=40 \(asked for 20\)"):
        train(make_config(f"ckpt_path={last}", "frontend.n_mels=20", run="mismatch"))
    with pytest.raises(ValueError, match=r"task\.standardize_features=False \(asked for True\)"):
        train(make_config(f"ckpt_path={last}", "task.standardize_features=true", run="mismatch_2"))


def test_test_py_evaluates_a_checkpoint_with_its_saved_config(
    short_fit: dict[str, Any], tmp_path: Path
) -> None:
    fitted = short_fit
    best = fitted["best_checkpoint"]
    run_script(
        "test.py",
        f"ckpt_path={best}",
        "trainer=cpu",
        "+trainer.limit_test_batches=2",
        f"hydra.run.dir={tmp_path / 'evaluation'}",
    )
    evaluated = read_metrics(tmp_path / "evaluation")
    assert (evaluated["test_metric"], evaluated["test_metric_mode"]) == ("test/acc", "max")
    assert evaluated["metrics"]["test/acc"] == fitted["metrics"]["test/acc"]
    assert evaluated["metrics"]["test/loss"] == pytest.approx(fitted["metrics"]["test/loss"], rel=1e-6)
    assert evaluated["corpus"] == "generated"
    # the error analysis covers the tested clips: its accuracy is the one Lightning logged
    folder = tmp_path / "evaluation" / "error_analysis"
    rows = list(csv.DictReader((folder / "predictions.csv").open()))
    assert len(rows) == evaluated["test_analysis"]["clips"] == min(2 * 64, fitted["split_sizes"]["test"])
    correct = [row for row in rows if row["correct"] == "1"]
    assert len(correct) / len(rows) == pytest.approx(evaluated["metrics"]["test/acc"])
    wrong = list(csv.DictReader((folder / "misclassified.csv").open()))
    assert sorted(row["file"] for row in wrong) == sorted(
        row["file"] for row in rows if row["correct"] == "0"
    )
    assert evaluated["test_analysis"]["metrics"]["test/acc"] == pytest.approx(
        evaluated["metrics"]["test/acc"]
    )
    assert (folder / "confusion_matrix.png").is_file()


def without_format_key(checkpoint: str, destination: Path) -> Path:
    """A copy of ``checkpoint`` as the code before tasks as configuration wrote it: no format key."""
    content = torch.load(checkpoint, map_location="cpu", weights_only=False)
    assert content[FORMAT_KEY] == CHECKPOINT_FORMAT
    del content[FORMAT_KEY]
    torch.save(content, destination)
    return destination


def test_test_py_refuses_a_checkpoint_of_the_older_format(short_fit: dict[str, Any], tmp_path: Path) -> None:
    old = without_format_key(short_fit["best_checkpoint"], tmp_path / "old.ckpt")
    result = run_python(
        "test.py", f"ckpt_path={old}", "trainer=cpu", f"hydra.run.dir={tmp_path / 'evaluation'}", timeout=600
    )
    assert result.returncode != 0
    assert f"{old} predates tasks as configuration (checkpoint format 1, this code reads 2)" in result.stderr
    assert not (tmp_path / "evaluation" / "metrics.json").exists()


def test_train_refuses_to_resume_from_a_checkpoint_of_the_older_format(
    make_config: Callable[..., DictConfig], short_fit: dict[str, Any], tmp_path: Path
) -> None:
    old = without_format_key(short_fit["last_checkpoint"], tmp_path / "old.ckpt")
    with pytest.raises(ValueError, match=r"old\.ckpt predates tasks as configuration \(checkpoint format 1"):
        train(make_config(f"ckpt_path={old}", trainer="cpu"))
    summary = read_metrics(tmp_path / "run")
    assert summary["status"] == "failed" and "Retrain it with train.py" in summary["error"]


@pytest.mark.parametrize(
    ("overrides", "mode", "error"),
    [
        (["data=timit", "model=linear"], "min", r"CTC needs one output per frame: choose model="),
        (["model.groups=5"], "max", r"model\.groups=5 does not divide"),
    ],
    ids=["ctc-linear", "conv1d-groups"],
)
def test_a_failed_sweep_job_returns_the_worst_value_of_the_task_direction(
    make_config: Callable[..., DictConfig], tmp_path: Path, overrides: list[str], mode: str, error: str
) -> None:
    import train as train_script  # the entry point, whose Hydra task function takes a composed config

    cfg = make_config(*overrides, mode=RunMode.MULTIRUN)
    assert cfg.task.mode == mode
    returned = train_script.main(cfg)
    assert returned == worst_value(mode) == (math.inf if mode == "min" else -math.inf)
    summary = read_metrics(tmp_path / "run")
    assert summary["status"] == "failed"
    assert re.search(error, summary["error"])
    # a single run raises instead
    with pytest.raises(Exception, match=error):
        train_script.main(make_config(*overrides, run="single"))


def test_a_sweep_job_returns_the_best_value_of_the_task_metric(
    make_config: Callable[..., DictConfig], tmp_path: Path
) -> None:
    import train as train_script

    returned = train_script.main(make_config("data=timit", "model=gru", mode=RunMode.MULTIRUN))
    summary = read_metrics(tmp_path / "run")
    assert summary["best_metric"] == "val/per_best"
    assert returned == summary["metrics"]["val/per_best"] >= 0


def test_train_py_runs_a_multirun_grid_from_the_command_line(tiny_corpus_root: Path, tmp_path: Path) -> None:
    result = run_script(
        "train.py",
        "-m",
        "frontend.n_mels=20,40",
        "model.groups=1,2",
        "trainer=fast_dev_run",
        f"data.root={tiny_corpus_root}",
        f"data.generator.num_speakers={TINY_CORPUS_SPEAKERS}",
        project_root=tmp_path,
    )
    runs = sorted((tmp_path / "logs" / "train" / "multiruns").glob("*/*/metrics.json"))
    assert len(runs) == 12, result.stdout[-2000:]  # 4 configurations x the default seeds 1, 2, 3
    seen = set()
    for path in runs:
        summary = json.loads(path.read_text())
        assert summary["status"] == "ok"
        seen.add(
            tuple(sorted(o for o in summary["overrides"] if o.startswith(("frontend", "model", "seed"))))
        )
    assert seen == {
        (f"frontend.n_mels={n}", f"model.groups={g}", f"seed={seed}")
        for n in (20, 40)
        for g in (1, 2)
        for seed in (1, 2, 3)
    }
