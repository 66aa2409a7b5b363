"""What TensorBoard shows of runs, read through TensorBoard's own reader (its event multiplexer and the
HParams plugin's backend, as ``tensorboard --logdir`` serves them): every trial with its hyperparameters
and final metrics, for one run and for a sweep's run folders under one log folder; the complexity as a
text table and HParams metrics instead of one-point scalar cards; one readable figure per validation
example. Everything must be on disk when training returns: TensorBoard's writer thread is slowed down
here, so that events left queued behind a write (as they are lost when the process exits) are missing."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytest
import torch
import yaml
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import OmegaConf
from tensorboard import context
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import api_pb2, backend_context, get_experiment, list_session_groups
from tensorboard.plugins.text import metadata as text_metadata
from tensorboard.summary.writer.record_writer import RecordWriter
from tensorboard.util import tensor_util

from src.callbacks.spectrogram_images import FIGURE_DPI, FIGURE_SIZE_INCHES, feature_figure
from src.dashboard import (
    COMPLEXITY_NOTE,
    HPARAMS_COMPLEXITY,
    HPARAMS_RUN,
    complexity_table,
    flat_hyperparameters,
)
from src.reporting.test_analysis import analyse_test_predictions
from src.training import train
from tests.conftest import compose_config, tiny_data_overrides

# A real but short fit (checkpoints, fit and test finalise the loggers), as in tests/test_train.py.
SHORT_FIT = [
    "trainer=cpu",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=4",
    "+trainer.limit_val_batches=2",
    "+trainer.limit_test_batches=2",
    "trainer.log_every_n_steps=1",
]
# Two jobs of a sweep that differ in the frontend's and the model's keys; the second also logs to CSV.
JOBS = {
    "0": [],
    "1": ["frontend=trainable", "frontend.trainable_mel=true", "model=linear", "logger=tensorboard_csv"],
}
SECONDS_PER_RECORD = 0.05


@pytest.fixture(scope="module")
def slow_event_writer() -> Iterator[None]:
    """TensorBoard's writer thread takes :data:`SECONDS_PER_RECORD` per event, so that what a run leaves
    queued when it returns is still missing from the event files."""
    write = RecordWriter.write

    def slow_write(self: RecordWriter, data: bytes) -> None:
        time.sleep(SECONDS_PER_RECORD)
        write(self, data)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RecordWriter, "write", slow_write)
        yield


@pytest.fixture(scope="module")
def sweep(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, slow_event_writer: None
) -> dict[str, Any]:
    """The :data:`JOBS`, each a :data:`SHORT_FIT` in its own folder of one log folder, as a sweep's jobs:
    ``{"logs": folder, "jobs": {name: {"dir", "summary", "hparams", "tab", "events"}}}``; ``tab`` (its
    :func:`hparams_tab`) and ``events`` (its ``tensorboard/`` folder) are read as soon as the job returns."""
    root = tmp_path_factory.mktemp("dashboard")
    logs = root / "logs" / "sweep"
    jobs = {}
    for name, overrides in JOBS.items():
        paths = [f"paths.root_dir={root}", f"paths.output_dir={logs / name}"]
        cfg = compose_config(
            "config", [*paths, *tiny_data_overrides(overrides, request), *SHORT_FIT, *overrides]
        )
        hparams = flat_hyperparameters(OmegaConf.to_container(cfg, resolve=True))
        summary = train(cfg)
        events = EventAccumulator(str(logs / name / "tensorboard"), size_guidance={"images": 0, "tensors": 0})
        jobs[name] = {
            "dir": logs / name,
            "summary": summary,
            "hparams": hparams,
            "tab": hparams_tab(logs / name),
        }
        jobs[name]["events"] = events.Reload()
    return {"logs": logs, "jobs": jobs}


def hparams_tab(logdir: Path) -> tuple[api_pb2.Experiment, list[api_pb2.SessionGroup]]:
    """What TensorBoard's HParams tab gets for ``tensorboard --logdir <logdir>``: the experiment (its
    hyperparameter and metric columns) and the finished trials (sessions that ended successfully)."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    tab = backend_context.Context(
        base_plugin.TBContext(logdir=str(logdir), data_provider=provider, multiplexer=multiplexer)
    )
    request_context = context.RequestContext()
    experiment = get_experiment.Handler(request_context, tab, "", api_pb2.GetExperimentRequest()).run()
    request = api_pb2.ListSessionGroupsRequest(allowed_statuses=[api_pb2.STATUS_SUCCESS], slice_size=100)
    groups = list_session_groups.Handler(request_context, tab, "", request).run().session_groups
    return experiment, list(groups)


def python_value(value: Any) -> Any:
    """A ``google.protobuf.Value`` of an HParams trial as the Python value it was logged from."""
    return getattr(value, value.WhichOneof("kind"))


def expected_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The HParams metrics a run of ``summary`` (its ``metrics.json``) must show."""
    metrics, complexity = summary["metrics"], summary["complexity"]
    counts = {f"hparams/{name}": complexity[f"complexity/{name}"] for name in HPARAMS_COMPLEXITY}
    return {
        "hparams/test_acc": metrics["test/acc"],
        "hparams/val_acc_best": metrics["val/acc_best"],
        **counts,
    }


def trial_metrics(group: api_pb2.SessionGroup) -> dict[str, float]:
    (session,) = group.sessions
    return {value.name.tag: value.value for value in session.metric_values}


def assert_trial(group: api_pb2.SessionGroup, job: dict[str, Any]) -> None:
    hparams = {name: python_value(value) for name, value in group.hparams.items()}
    assert hparams == {name: float(v) if type(v) is int else v for name, v in job["hparams"].items()}
    assert trial_metrics(group) == pytest.approx(expected_metrics(job["summary"]))


def test_a_single_run_is_one_finished_trial_with_its_hparams_and_metrics(sweep: dict[str, Any]) -> None:
    job = sweep["jobs"]["0"]
    experiment, groups = job["tab"]
    assert [group.name for group in groups] == [f"tensorboard/{HPARAMS_RUN}"]
    assert_trial(groups[0], job)
    assert {info.name.tag for info in experiment.metric_infos} == set(expected_metrics(job["summary"]))
    assert {info.name for info in experiment.hparam_infos} == set(job["hparams"])


def test_a_sweep_lists_every_trial_with_every_key_of_every_job(sweep: dict[str, Any]) -> None:
    experiment, groups = hparams_tab(sweep["logs"])
    by_job = {group.name.split("/")[0]: group for group in groups}
    assert sorted(by_job) == sorted(JOBS)
    for name, job in sweep["jobs"].items():
        assert_trial(by_job[name], job)
    keys = {info.name for info in experiment.hparam_infos}
    only_trainable = set(sweep["jobs"]["1"]["hparams"]) - set(sweep["jobs"]["0"]["hparams"])
    assert "frontend.trainable_mel" in only_trainable
    assert keys == set(sweep["jobs"]["0"]["hparams"]) | set(sweep["jobs"]["1"]["hparams"])
    # Per-step series (train/loss, val/acc, ...) are no columns of the HParams tab.
    assert {info.name.tag for info in experiment.metric_infos} == set(
        expected_metrics(sweep["jobs"]["0"]["summary"])
    )


def test_complexity_is_a_text_table_not_one_point_scalar_cards(sweep: dict[str, Any]) -> None:
    job = sweep["jobs"]["0"]
    events = job["events"]
    assert not [tag for tag in events.Tags()["scalars"] if tag.startswith("complexity/")]
    assert {"train/loss_epoch", "val/acc", "test/acc"} <= set(events.Tags()["scalars"])
    texts = events.PluginTagToContent(text_metadata.PLUGIN_NAME)
    assert list(texts) == ["complexity/text_summary"]  # torch's add_text names it so
    (text,) = events.Tensors("complexity/text_summary")
    table = tensor_util.make_ndarray(text.tensor_proto).item().decode()
    assert table == f"{complexity_table(job['summary']['complexity'])}\n\n{COMPLEXITY_NOTE}"
    total = job["summary"]["complexity"]["complexity/total_macs"]
    assert f"| total | {job['summary']['complexity']['complexity/total_params']:,} | {total:,} |" in table


def test_complexity_table_has_a_row_per_part() -> None:
    table = complexity_table(
        {
            "complexity/frontend_params": 0,
            "complexity/frontend_macs": 1242254,
            "complexity/encoder_params": 94464,
            "complexity/encoder_macs": 4548096,
        }
    )
    assert table.splitlines() == [
        "| part | parameters | MACs per example |",
        "|---|---:|---:|",
        "| frontend | 0 | 1,242,254 |",
        "| encoder | 94,464 | 4,548,096 |",
    ]


def test_one_readable_feature_figure_per_validation_example(sweep: dict[str, Any]) -> None:
    events = sweep["jobs"]["0"]["events"]
    tags = {tag for tag in events.Tags()["images"] if tag.startswith("features/")}
    assert tags == {f"features/validation/example_{index}" for index in range(4)}
    for tag in tags:
        (image,) = events.Images(tag)
        expected = [round(size * FIGURE_DPI) for size in FIGURE_SIZE_INCHES]
        assert [image.width, image.height] == expected


def test_a_feature_figure_labels_time_features_and_values() -> None:
    figure = feature_figure(torch.randn(40, 101), frame_rate=100.0, title="yes: validation clip 0 (1.00 s)")
    image_axes, colour_bar_axes = figure.axes[0], figure.axes[-1]
    assert image_axes.get_title() == "yes: validation clip 0 (1.00 s)"
    assert image_axes.get_xlabel() == "time (s)"
    assert image_axes.get_ylabel() == "feature bin (of 40)"
    assert image_axes.get_xlim() == pytest.approx((-0.005, 1.005))  # 101 frames at 100 per second
    assert colour_bar_axes.get_ylabel() == "frontend output"
    assert any(axes.get_xlabel() == "frame" for axes in image_axes.child_axes)
    plt.close(figure)


def test_the_trainable_frontend_filters_of_fit_end_are_on_disk(sweep: dict[str, Any]) -> None:
    events = sweep["jobs"]["1"]["events"]
    for tag in ("frontend/mel_filters", "frontend/stft_kernels"):
        steps = [image.step for image in events.Images(tag)]
        assert len(steps) == 2 and steps[0] == 0 < steps[1]


def test_the_test_confusion_matrix_is_on_disk(sweep: dict[str, Any]) -> None:
    events = sweep["jobs"]["0"]["events"]
    assert len(events.Images("test/confusion_matrix")) == 1


def test_the_csv_and_hparams_files_are_complete(sweep: dict[str, Any]) -> None:
    job = sweep["jobs"]["1"]
    with (job["dir"] / "csv" / "metrics.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    columns = set(rows[0])
    assert {"test/acc", "val/acc", "train/loss_epoch", *job["summary"]["complexity"]} <= columns
    (complexity_row,) = [row for row in rows if row["complexity/total_macs"]]
    assert (
        int(float(complexity_row["complexity/total_macs"]))
        == job["summary"]["complexity"]["complexity/total_macs"]
    )
    for logger in ("csv", "tensorboard"):
        assert yaml.safe_load((job["dir"] / logger / "hparams.yaml").read_text()) == job["hparams"], logger


def test_a_confusion_matrix_logged_after_the_logger_was_finalised_is_on_disk(
    tmp_path: Path, slow_event_writer: None
) -> None:
    logger = TensorBoardLogger(save_dir=tmp_path, name="tensorboard", version="")
    logger.experiment.add_scalar("test/acc", 0.5, 0)
    logger.finalize("success")  # what Lightning does when trainer.test ends
    probabilities = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    analyse_test_predictions(
        probabilities, [0, 1, 1], ["a.wav", "b.wav", "c.wav"], ["yes", "no"], tmp_path, [logger]
    )
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0}).Reload()
    (image,) = events.Images("test/confusion_matrix")
    assert plt.imread(io.BytesIO(image.encoded_image_string), format="png").shape[2] in (3, 4)


def test_fast_dev_run_leaves_complete_files_though_lightning_never_finalises_the_loggers(
    tmp_path: Path, request: pytest.FixtureRequest, slow_event_writer: None
) -> None:
    # fast_dev_run swaps the loggers for a dummy in the trainer, so Lightning never saves or closes them.
    overrides = ["logger=tensorboard_csv"]
    paths = [f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path / 'run'}", "trainer=fast_dev_run"]
    summary = train(compose_config("config", [*paths, *tiny_data_overrides(overrides, request), *overrides]))
    _, groups = hparams_tab(tmp_path / "run")
    assert [group.name for group in groups] == [f"tensorboard/{HPARAMS_RUN}"]
    with (tmp_path / "run" / "csv" / "metrics.csv").open() as stream:
        (row,) = list(csv.DictReader(stream))
    assert {name: int(float(value)) for name, value in row.items() if name != "step"} == summary["complexity"]
