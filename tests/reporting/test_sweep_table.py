"""Aggregation of a sweep folder: rows per configuration, failed jobs as rows, the files written."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from src.reporting.aggregate_sweep import main
from src.reporting.sweep_plots import series_label, train_loss_curve, write_plots
from src.reporting.sweep_table import aggregate_sweep, table_caption, table_markdown, write_table
from tests.reporting.sweep_folders import (
    PHONE_RECOGNITION,
    QUESTION,
    failed_summary,
    job_summary,
    write_job,
    write_per_sweep,
)


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    """n_mels 100, 20, 40 (job order is not table order) with seeds; one failed and one killed job."""
    sweep = tmp_path / "logs" / "nmels_sweep" / "multiruns" / "2026-01-01_00-00-00"
    common = ["experiment=nmels_sweep"]
    write_job(sweep, 0, ["seed=1", "frontend.n_mels=100", *common], None)
    write_job(sweep, 1, ["seed=1", "frontend.n_mels=20", *common], job_summary(0.9, epoch_times=(1.0, 2.0)))
    write_job(sweep, 2, ["seed=2", "frontend.n_mels=20", *common], job_summary(0.8, epoch_times=(3.0,)))
    write_job(sweep, 3, ["seed=1", "frontend.n_mels=40", *common], job_summary(1.0, best_value=0.95))
    write_job(
        sweep, 4, ["seed=2", "frontend.n_mels=40", *common], failed_summary("ValueError: boom\n  at line 3")
    )
    return sweep


def test_a_row_per_configuration_then_failed_jobs_in_numeric_order(sweep_dir: Path) -> None:
    table = aggregate_sweep("nmels_sweep", [sweep_dir])
    assert table.swept == ("frontend.n_mels",)
    assert table.fixed_overrides == {"experiment": "nmels_sweep"}
    assert [(row["frontend.n_mels"], row["seeds"], row["status"]) for row in table.rows] == [
        ("20", "1 2", "ok"),
        ("40", "1", "ok"),
        ("40", "2", "failed"),
        ("100", "1", "missing"),
    ]
    n20, n40, failed, missing = table.rows
    assert n20["test_acc_mean"] == pytest.approx(0.85)
    assert n20["test_acc_std"] == pytest.approx(math.sqrt(0.005))  # sample std of 0.9 and 0.8
    assert (n20["epoch_time_s_mean"], n20["epoch_time_s_std"]) == pytest.approx(
        (2.0, 1.0)
    )  # all epochs pooled
    assert n40["val_acc_best_mean"] == 0.95
    assert math.isnan(n40["test_acc_std"])  # one seed: no spread
    assert n20["backbone_params"] == 1000 and n20["frontend_macs"] == 20_000
    assert failed["error"] == "ValueError: boom at line 3"
    assert "no metrics.json" in missing["error"]


def test_written_csv_and_markdown(sweep_dir: Path, tmp_path: Path) -> None:
    table = aggregate_sweep("nmels_sweep", [sweep_dir])
    csv_path, md_path = write_table(table, tmp_path / "out")
    with csv_path.open() as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == table.columns
    assert table.columns[:3] == ["frontend.n_mels", "seeds", "runs"]
    assert {
        "test_acc_mean",
        "test_acc_std",
        "val_acc_best_mean",
        "train_loss_final_mean",
        "epoch_time_s_std",
    } <= set(table.columns)
    assert table.columns[-6:] == [
        "frontend_params",
        "backbone_params",
        "frontend_macs",
        "backbone_macs",
        "status",
        "error",
    ]
    assert [row["status"] for row in rows] == ["ok", "ok", "failed", "missing"]
    assert rows[0]["backbone_macs"] == "50000" and rows[1]["test_acc_std"] == ""
    markdown = md_path.read_text()
    assert "| 20 | 1 2 | 0.850 ± 0.071 |" in markdown
    assert "**failed**: ValueError: boom at line 3" in markdown
    assert "generated corpus" in markdown


def test_aggregation_is_deterministic(sweep_dir: Path, tmp_path: Path) -> None:
    write_job(
        sweep_dir, 5, ["seed=3", "frontend.n_mels=20", "experiment=nmels_sweep"], job_summary(0.7), (0.9, 0.5)
    )
    for output in ("a", "b"):
        table = aggregate_sweep("nmels_sweep", [sweep_dir])
        write_table(table, tmp_path / output)
        write_plots(table, tmp_path / output)
    files = sorted(path.name for path in (tmp_path / "a").iterdir())
    assert len(files) == 7  # table (CSV, Markdown) and 5 plots
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_command_exits_1_on_failed_jobs_after_writing_everything(sweep_dir: Path, tmp_path: Path) -> None:
    assert main([str(sweep_dir), "--output", str(tmp_path / "out")]) == 1
    written = {path.name for path in (tmp_path / "out").iterdir()}
    assert {
        "results.csv",
        "results.md",
        "conclusions.md",
        "train_loss.png",
        "test_acc_vs_n_mels.png",
        "macs_vs_n_mels.png",
    } <= written
    conclusions = (tmp_path / "out" / "conclusions.md").read_text()
    assert conclusions.startswith(f"# nmels_sweep\n\n{QUESTION}\n\nConclusions, computed from the table:\n")
    assert "- By test accuracy (higher is better, 40 clips), `frontend.n_mels=40` is first with 1.0000" in (
        conclusions
    )


def test_command_exits_0_when_all_jobs_succeeded_and_names_the_sweep(tmp_path: Path, monkeypatch) -> None:
    sweep = tmp_path / "logs" / "groups_sweep" / "multiruns" / "t"
    write_job(sweep, 0, ["model.groups=1", "seed=1"], job_summary(0.9), train_losses=(0.5, 0.2))
    write_job(sweep, 1, ["model.groups=2", "seed=1"], job_summary(0.8), train_losses=(0.6, 0.3))
    monkeypatch.chdir(tmp_path)
    assert main([str(sweep)]) == 0
    assert (tmp_path / "sweep_results" / "groups_sweep" / "epoch_time_vs_groups.png").is_file()


def test_command_exits_2_for_a_folder_without_jobs(tmp_path: Path) -> None:
    assert main([str(tmp_path), "--output", str(tmp_path / "out")]) == 2
    assert main([str(tmp_path / "absent"), "--output", str(tmp_path / "out")]) == 2


def test_training_loss_curve_is_read_from_tensorboard_in_step_order(tmp_path: Path) -> None:
    job = write_job(tmp_path, 0, ["seed=1"], job_summary(0.9), train_losses=(0.7, 0.4, 0.1))
    assert train_loss_curve(job) == pytest.approx([0.7, 0.4, 0.1])
    assert train_loss_curve(tmp_path / "nothing") == []


def test_frontend_metrics_get_columns_and_plots_and_settings_come_from_metrics_json(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    num = 0
    for (stft, mel), setting in {
        ("false", "false"): "A",
        ("false", "true"): "B",
        ("true", "false"): "C",
        ("true", "true"): "D",
    }.items():
        summary = job_summary(0.9, frontend_setting=setting)
        summary["metrics"]["frontend/mel_distance"] = 0.1 if mel == "true" else 0.0
        overrides = [
            "frontend.n_mels=20",
            f"frontend.trainable_stft={stft}",
            f"frontend.trainable_mel={mel}",
        ]
        write_job(sweep, num, [*overrides, "seed=1"], summary)
        write_job(sweep, num + 1, ["frontend.n_mels=40", *overrides[1:], "seed=1"], summary)
        num += 2
    table = aggregate_sweep("trainable_settings", [sweep])
    assert table.extra_stems == ("frontend_mel_distance",)  # not the test loss
    assert [row["frontend_mel_distance_mean"] for row in table.rows[:4]] == [0.0, 0.0, 0.1, 0.1]
    assert "mel distance" in table_markdown(table)
    plots = {path.name for path in write_plots(table, tmp_path / "out")}
    assert "mel_distance_vs_n_mels.png" in plots
    assert table.setting_keys == ("frontend.trainable_mel", "frontend.trainable_stft")
    assert [row["frontend_setting"] for row in table.rows[:4]] == ["A", "C", "B", "D"]
    assert [series_label(table, row, table.swept[1:]) for row in table.rows[:4]] == [
        "setting A",  # swept keys in name order: trainable_mel before trainable_stft
        "setting C",
        "setting B",
        "setting D",
    ]
    assert "frontend_setting" in table.columns
    assert "| frontend.n_mels | frontend.trainable_mel | frontend.trainable_stft | setting | seeds |" in (
        table_markdown(table)
    )


def test_a_sweep_without_settings_has_no_setting_column(sweep_dir: Path) -> None:
    table = aggregate_sweep("nmels_sweep", [sweep_dir])
    assert not table.has_settings and table.setting_keys == ()
    assert "frontend_setting" not in table.columns and "setting" not in table_markdown(table)


def test_a_phone_error_rate_sweep_gets_its_metric_columns_titles_and_plots(tmp_path: Path) -> None:
    write_per_sweep(tmp_path / "sweep")
    table = aggregate_sweep("timit", [tmp_path / "sweep"])
    assert (table.test_metric.name, table.test_metric.mode) == ("test/per", "min")
    assert (table.best_metric.name, table.best_metric.mode) == ("val/per_best", "min")
    assert table.columns[4:8] == ["test_per_mean", "test_per_std", "val_per_best_mean", "val_per_best_std"]
    assert not any(column.startswith(("test_acc", "val_acc")) for column in table.columns)
    assert [row["test_per_mean"] for row in table.rows] == pytest.approx([0.3, 0.2])
    markdown = table_markdown(table)
    assert "| frontend.n_mels | seeds | test per | best val per | final train loss |" in markdown
    caption = table_caption(table)
    assert "`test/per` (lower is better)" in caption and "`val/per_best` (lower is better)" in caption
    assert "MACs per forward pass of one second of audio." in caption
    plots = {path.name for path in write_plots(table, tmp_path / "out")}
    assert {"test_per_vs_n_mels.png", "macs_vs_n_mels.png"} <= plots
    assert "test_acc_vs_n_mels.png" not in plots


def test_a_metrics_json_without_the_scoring_keys_is_read_as_a_classifier(tmp_path: Path) -> None:
    for num, accuracy in enumerate((0.8, 0.9)):
        summary = job_summary(accuracy)
        for key in ("test_metric", "test_metric_mode", "monitor", "monitor_mode", "best_metric"):
            del summary[key]
        write_job(tmp_path, num, [f"model.groups={num + 1}", "seed=1"], summary)
    table = aggregate_sweep("old", [tmp_path])
    assert (table.test_metric.name, table.test_metric.mode) == ("test/acc", "max")
    assert (table.best_metric.name, table.best_metric.mode) == ("val/acc_best", "max")
    assert [row["test_acc_mean"] for row in table.rows] == [0.8, 0.9]
    assert "MACs per forward pass of one clip." in table_caption(table)


def test_jobs_scored_by_different_metrics_are_refused(tmp_path: Path) -> None:
    write_job(tmp_path, 0, ["data=kws", "seed=1"], job_summary(0.9))
    write_job(tmp_path, 1, ["data=timit", "seed=1"], job_summary(0.2, scoring=PHONE_RECOGNITION))
    with pytest.raises(ValueError, match=r"different metrics: test/acc .* test/per"):
        aggregate_sweep("mixed", [tmp_path])


def test_an_unknown_metric_mode_names_the_file_and_key(tmp_path: Path) -> None:
    write_job(tmp_path, 0, ["seed=1"], {**job_summary(0.9), "monitor_mode": "up"})
    with pytest.raises(ValueError, match=r"0/metrics.json: monitor_mode: .*'up'"):
        aggregate_sweep("bad", [tmp_path])
