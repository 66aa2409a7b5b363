"""The table and plots of a compression sweep: size on disk, latency and the layers factorised beside
parameters, MACs and accuracy, and the test metric against parameters on a log axis (``sweep_plots``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.reporting.sweep_conclusions import sweep_conclusions
from src.reporting.sweep_plots import write_plots
from src.reporting.sweep_table import ColumnPlot, aggregate_sweep, table_caption, table_markdown
from tests.reporting.sweep_folders import job_config, job_summary, write_job

SWEEP_PLOTS = [{"x": "params", "along": "compression.rank", "within": 0.01}]


def compressed_summary(accuracy: float, params: int, latency_ms: float, replaced: int) -> dict:
    return {
        **job_summary(accuracy, backbone_params=params),
        "size_on_disk": {"backbone_bytes": 4 * params + 900},
        "latency": {"median_ms": latency_ms, "batch_size": 1},
        "compression": {
            "method": "lowrank",
            "replaced": [{"layer": f"encoder.{index}"} for index in range(replaced)],
            "left_alone": [{"layer": "head.classifier"}],
        },
    }


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """An MLP at ranks 5, 20 and full (two layers factorised at 5 and 20), two seeds each: 0.82, 0.905 and
    0.91 test accuracy."""
    sweep = tmp_path / "multirun"
    config = {**job_config(), "sweep_plots": SWEEP_PLOTS}
    rows = [("5", 0.80, 20_000, 1.0, 2), ("5", 0.84, 20_000, 1.2, 2), ("full", 0.90, 8_000_000, 3.0, 0)]
    rows += [("full", 0.92, 8_000_000, 3.4, 0), ("20", 0.90, 80_000, 1.5, 2), ("20", 0.91, 80_000, 1.5, 2)]
    for num, (rank, accuracy, params, latency, replaced) in enumerate(rows):
        overrides = [f"compression.rank={rank}", "model=mlp", f"seed={num % 2 + 1}"]
        write_job(
            sweep, num, overrides, compressed_summary(accuracy, params, latency, replaced), config=config
        )
    return sweep


def test_the_table_shows_size_latency_and_layers_factorised(sweep: Path) -> None:
    table = aggregate_sweep("lowrank_sweep", [sweep])
    assert table.columns[-7:] == [
        "backbone_macs",
        "backbone_bytes",
        "latency_ms_mean",
        "latency_ms_std",
        "replaced_layers",
        "status",
        "error",
    ]
    five, twenty, full = table.ok_rows
    assert twenty["latency_ms_std"] == 0.0
    assert (five["backbone_bytes"], five["latency_ms_mean"], five["replaced_layers"]) == (80_900, 1.1, "2/3")
    assert full["replaced_layers"] == "0/1"
    markdown = table_markdown(table)
    assert "size on disk (backbone)" in markdown and "latency (ms per clip, CPU, batch 1)" in markdown
    assert "| 5 | 1 2 | 0.820 ± 0.028 |" in markdown and "80.9 kB" in markdown and "1.10 ± 0.14" in markdown
    assert "while other jobs may run on the machine" in table_caption(table)


def test_the_test_metric_is_plotted_against_parameters_and_the_smallest_within_a_point_named(
    sweep: Path, tmp_path: Path
) -> None:
    table = aggregate_sweep("lowrank_sweep", [sweep])
    assert table.column_plots == [ColumnPlot("params", "compression.rank", 0.01)]
    (tradeoff,) = [sentence for sentence in sweep_conclusions(table) if "within 0.01" in sentence]
    assert tradeoff == (
        "All runs: the smallest configuration whose test accuracy is within 0.01 of the largest "
        "(`compression.rank=full`, 8,000,000 params, 0.9100 ± 0.0141) is `compression.rank=20`, 80,000 "
        "params, 0.9050 ± 0.0071, 100.00x fewer params; the next smaller (`compression.rank=5`, 20,000 "
        "params, 0.8200 ± 0.0283) is 0.0900 worse."
    )
    paths = write_plots(table, tmp_path / "plots")
    assert tmp_path / "plots" / "test_acc_vs_params.png" in paths
    assert (tmp_path / "plots" / "test_acc_vs_params.png").stat().st_size > 10_000


def test_an_unknown_plot_axis_is_refused_naming_the_key(tmp_path: Path) -> None:
    config = {**job_config(), "sweep_plots": [{"x": "weights"}]}
    write_job(tmp_path / "multirun", 0, ["model=mlp"], job_summary(0.9), config=config)
    table = aggregate_sweep("sweep", [tmp_path / "multirun"])
    with pytest.raises(ValueError, match=r"sweep_plots\[0\] must be \{x: <one of params, macs"):
        assert table.column_plots
