"""Plots of a sweep, drawn from its logged runs: TensorBoard curves and the aggregated table.

For every numeric swept key (e.g. ``frontend.n_mels``): the test metric (titled by its name, e.g. test
accuracy or test phone error rate), epoch training time, parameter count, MACs and the extra metrics against
it (mean ± std over seeds as error bars; one line per value of the other swept keys, the keys a frontend
setting stands for shown as that setting). For the whole sweep: the training loss per epoch, mean over
seeds with a band from the lowest to the highest seed. And, for every entry of the jobs' ``sweep_plots``
config key (an experiment file sets it), the test metric against a column of the table on a log axis
(:func:`plot_metric_against_column`, :attr:`SweepTable.column_plots`), e.g. accuracy against parameters
for a compression sweep. When the jobs scored their test split by input SNR
(:mod:`src.reporting.sweep_by_snr`): the headline score against the input SNR, a line per configuration
and per baseline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.reporting.sweep_by_snr import IMPROVEMENT, MODEL, SnrTable, score_title, snr_header, snr_table
from src.reporting.sweep_table import (
    SETTING_COLUMN,
    TRAIN_LOSS,
    ColumnPlot,
    JobRun,
    SweepTable,
    column_value,
    sort_key,
)
from src.utils.run_files import atomic_write

# The loss plot shades each configuration's range across seeds only up to this many configurations.
MAX_BANDS = 8
SEED_SPREAD = "error bars: ±1 std over seeds"


def column_label(table: SweepTable, column: str) -> str:
    """The axis label of a :data:`src.reporting.sweep_table.COLUMN_AXES` column."""
    return {
        "params": "parameters (frontend + backbone)",
        "macs": f"MACs per {table.macs_per} (frontend + backbone)",
        "backbone_bytes": "size on disk of the backbone (bytes)",
        "latency_ms": f"latency per {table.macs_per} (ms, CPU, batch 1)",
    }[column]


def plot_metric_against_column(table: SweepTable, plot: ColumnPlot) -> Figure:
    """The test metric (mean ± std over seeds) against the column ``plot.x`` on a log axis, one line per
    value of the other swept keys (each point labelled with its ``plot.along`` value)."""
    test = table.test_metric
    others = [key for key in table.swept if key != plot.along]
    series: dict[str, list[dict[str, Any]]] = {}
    for row in table.ok_rows:
        if not math.isnan(column_value(row, plot.x)):
            series.setdefault(series_label(table, row, others), []).append(row)

    figure, axes = plt.subplots(figsize=(8.5, 4.5))
    for label, rows in sorted(series.items()):
        rows = sorted(rows, key=lambda row: (column_value(row, plot.x), sort_key(row.get(plot.along, ""))))
        x = [column_value(row, plot.x) for row in rows]
        means = [row[f"{test.stem}_mean"] for row in rows]
        stds = [0 if math.isnan(row[f"{test.stem}_std"]) else row[f"{test.stem}_std"] for row in rows]
        axes.errorbar(x, means, yerr=stds, marker="o", capsize=3, label=label)
        if plot.along in table.swept:
            for position, mean, row in zip(x, means, rows, strict=True):
                axes.annotate(
                    str(row[plot.along]),
                    (position, mean),
                    fontsize=6,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
    axes.set_xscale("log")
    label = column_label(table, plot.x)
    axes.set_xlabel(label)
    axes.set_ylabel(test.title)
    axes.grid(alpha=0.3, which="both")
    if len(series) > 1:
        axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    along = f"; points labelled with {plot.along}" if plot.along in table.swept else ""
    axes.set_title(f"{test.title} vs {label}")
    annotate(figure, table, f"{SEED_SPREAD}{along}")
    return figure


def by_snr_png(score: str) -> str:
    """The file of :func:`plot_score_by_snr`: ``si_sdr_improvement_by_snr.png`` for ``si_sdr_i``."""
    base = score.removesuffix(IMPROVEMENT)
    return f"{base}_improvement_by_snr.png" if base != score else f"{score}_by_snr.png"


def plot_score_by_snr(snr: SnrTable, score: str) -> Figure:
    """``score`` (mean ± std) against the input SNR: a solid line per configuration of the model, a
    dashed one per row of each other method that has ``score`` (the lines nudged apart along x so that
    their error bars do not hide each other), and for an improvement the noisy input's 0."""
    rows = [*snr.model_rows(), *snr.baseline_rows(score)]
    figure, axes = plt.subplots(figsize=(8.5, 4.5))
    width = 0.04 * (max(snr.snrs) - min(snr.snrs)) if len(snr.snrs) > 1 else 0.2
    offsets = np.linspace(-width, width, len(rows)) if len(rows) > 1 else [0.0]
    for row, offset in zip(rows, offsets, strict=True):
        stats = [row.stat(score, snr_db) for snr_db in snr.snrs]
        means = [mean for mean, _ in stats]
        stds = [0 if math.isnan(std) else std for _, std in stats]
        model = row.method == MODEL
        axes.errorbar(
            [snr_db + offset for snr_db in snr.snrs],
            means,
            yerr=stds,
            marker="o" if model else "s",
            linestyle="-" if model else "--",
            capsize=3,
            label=row.label(snr.table.swept),
        )
    if score.endswith(IMPROVEMENT):
        axes.axhline(0, color="0.5", linewidth=0.8, linestyle=":", label="noisy input (no improvement)")
    axes.set_xticks(list(snr.snrs), [snr_header(snr_db) for snr_db in snr.snrs])
    axes.set_xlabel("input SNR of the test pairs")
    title = score_title(score).title
    axes.set_ylabel(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    axes.set_title(f"{title} by input SNR")
    annotate(figure, snr.table, "error bars: ±1 std over seeds (model) or over the jobs that scored it")
    return figure


class AxisPlot(NamedTuple):
    """A y value plotted against each numeric swept key: its axis label, its (mean, std) in a table row
    (std None draws no error bar) and what the error bars show."""

    label: str
    value_of: Callable[[dict[str, Any]], tuple[float, float | None]]
    spread: str


def train_loss_curve(job_dir: Path) -> list[float]:
    """Per-epoch training loss logged to TensorBoard under ``job_dir`` (empty if none was logged).
    When a resumed run logged a step twice, the later value counts."""
    by_step: dict[int, float] = {}
    for event_file in sorted(job_dir.glob("**/events.out.tfevents.*")):
        accumulator = EventAccumulator(str(event_file), size_guidance={"scalars": 0})
        accumulator.Reload()
        if TRAIN_LOSS in accumulator.Tags()["scalars"]:
            by_step.update({event.step: event.value for event in accumulator.Scalars(TRAIN_LOSS)})
    return [by_step[step] for step in sorted(by_step)]


def axis_slug(key: str, swept: Sequence[str]) -> str:
    """``frontend.n_mels`` -> ``n_mels`` (the full key, dots as ``_``, when the short one is ambiguous)."""
    short = key.rsplit(".", 1)[-1]
    return short if [k.rsplit(".", 1)[-1] for k in swept].count(short) == 1 else key.replace(".", "_")


def is_numeric(values: Sequence[str]) -> bool:
    return all(sort_key(value)[0] == 0 for value in values)


def series_label(table: SweepTable, row: dict[str, Any], keys: Sequence[str]) -> str:
    """``model=linear, setting A`` for the values of ``keys`` in ``row``; the keys that the table's frontend
    setting stands for (:attr:`SweepTable.setting_keys`) become the row's setting."""
    setting_keys = table.setting_keys
    parts = [f"{key}={row[key]}" for key in keys if key not in setting_keys]
    if any(key in setting_keys for key in keys):
        parts.append(f"setting {row[SETTING_COLUMN]}")
    return ", ".join(parts) or "all runs"


def annotate(figure: Figure, table: SweepTable, spread: str) -> None:
    """The sweep name, what the spread shows and what it was measured on, under the axes."""
    notes = ["; ".join(part for part in (f"sweep {table.name}", spread) if part), *table.corpus_notes]
    notes += [f"not a result: {caveat}" for caveat in table.caveats]
    figure.text(0.01, 0.01, "\n".join(notes), fontsize=7, color="0.35")


def save(figure: Figure, path: Path, pdf: PdfPages | None = None) -> Path:
    """Write ``figure`` as PNG to ``path`` (and as a vector page of ``pdf`` when given), then close it."""
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    with atomic_write(path, "wb") as stream:
        figure.savefig(stream, format="png", dpi=120)
    if pdf is not None:
        pdf.savefig(figure)
    plt.close(figure)
    return path


def axis_plots(table: SweepTable) -> dict[str, AxisPlot]:
    """The plots against each numeric swept key, by the name their files start with: the test metric
    (``test_acc``, ``test_per``, ...), ``epoch_time``, ``params``, ``macs`` and one per extra metric of the
    table (e.g. ``mel_distance``, how far filters moved)."""

    def stat(stem: str) -> Callable[[dict[str, Any]], tuple[float, float | None]]:
        return lambda row: (row[f"{stem}_mean"], row[f"{stem}_std"])

    test = table.test_metric
    return {
        test.stem: AxisPlot(test.title, stat(test.stem), SEED_SPREAD),
        "epoch_time": AxisPlot(
            "training time per epoch (s)",
            stat("epoch_time_s"),
            "error bars: ±1 std over every epoch of every seed",
        ),
        "params": AxisPlot(
            "parameters (frontend + backbone)",
            lambda row: (row["frontend_params"] + row["backbone_params"], None),
            "",
        ),
        "macs": AxisPlot(
            f"MACs per {table.macs_per} (frontend + backbone)",
            lambda row: (row["frontend_macs"] + row["backbone_macs"], None),
            "",
        ),
        **{
            stem.removeprefix("frontend_"): AxisPlot(stem.replace("_", " "), stat(stem), SEED_SPREAD)
            for stem in table.extra_stems
        },
    }


def plot_against_axis(table: SweepTable, key: str, name: str) -> Figure:
    """``name``'s y value (:func:`axis_plots`) against the swept ``key``, one line per other swept values."""
    y_label, value_of, spread = axis_plots(table)[name]
    others = [k for k in table.swept if k != key]
    values = sorted({row[key] for row in table.ok_rows}, key=sort_key)
    numeric = is_numeric(values)
    position = {value: (float(value) if numeric else index) for index, value in enumerate(values)}

    figure, axes = plt.subplots(figsize=(8.5, 4) if others else (6, 4))
    series: dict[str, list[dict[str, Any]]] = {}
    for row in table.ok_rows:
        series.setdefault(series_label(table, row, others), []).append(row)
    for label, rows in sorted(series.items()):
        rows = sorted(rows, key=lambda row: sort_key(row[key]))
        x = [position[row[key]] for row in rows]
        means, stds = zip(*(value_of(row) for row in rows), strict=True)
        errors = (
            None
            if all(s is None or math.isnan(s) for s in stds)
            else [0 if s is None or math.isnan(s) else s for s in stds]
        )
        axes.errorbar(x, means, yerr=errors, marker="o", capsize=4, label=label if others else None)
    if numeric and min(position.values()) > 0 and max(position.values()) / min(position.values()) >= 4:
        axes.set_xscale("log", base=2)
    axes.set_xticks(list(position.values()), list(position))
    axes.minorticks_off()
    axes.set_xlabel(key)
    axes.set_ylabel(y_label)
    axes.grid(alpha=0.3)
    if others:
        axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    axes.set_title(f"{y_label} vs {key}")
    annotate(figure, table, spread)
    return figure


def plot_train_loss(table: SweepTable) -> Figure:
    """Training loss per epoch of every configuration: mean over its seeds, band from the lowest to the
    highest seed (always positive, unlike mean - std, so it stays drawable on the log scale)."""
    runs_by_config: dict[tuple[str, ...], list[JobRun]] = {}
    for run in table.runs:
        if run.status == "ok":
            runs_by_config.setdefault(run.configuration(table.swept), []).append(run)

    figure, axes = plt.subplots(figsize=(6.5, 4))
    drawn = 0
    for config in sorted(runs_by_config, key=lambda values: [sort_key(v) for v in values]):
        runs = runs_by_config[config]
        curves = [curve for curve in (train_loss_curve(run.job_dir) for run in runs) if curve]
        if not curves:
            continue
        epochs = min(len(curve) for curve in curves)
        losses = np.array([curve[:epochs] for curve in curves])
        x = np.arange(1, epochs + 1)
        row = {**dict(zip(table.swept, config, strict=True)), SETTING_COLUMN: runs[0].frontend_setting}
        label = series_label(table, row, table.swept)
        (line,) = axes.plot(x, losses.mean(axis=0), marker=".", label=f"{label} ({len(curves)} seeds)")
        if len(runs_by_config) <= MAX_BANDS:
            axes.fill_between(x, losses.min(axis=0), losses.max(axis=0), color=line.get_color(), alpha=0.2)
        drawn += 1
    if drawn:
        axes.set_yscale("log")
        axes.legend(fontsize=7 if drawn <= MAX_BANDS else 5, ncol=1 if drawn <= MAX_BANDS else 2)
    else:
        message = f"no run logged {TRAIN_LOSS} to TensorBoard\n(fast_dev_run and logger=csv log none)"
        axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch")
    axes.set_ylabel(f"training loss ({TRAIN_LOSS})")
    axes.set_title("training loss per epoch")
    axes.grid(alpha=0.3)
    bands = "band: min to max" if len(runs_by_config) <= MAX_BANDS else f"no bands for over {MAX_BANDS} lines"
    annotate(figure, table, f"line: mean over seeds, {bands}")
    return figure


def write_plots(table: SweepTable, output_dir: Path, pdf: PdfPages | None = None) -> list[Path]:
    """Every plot of the sweep as PNG in ``output_dir`` (and as vector pages of ``pdf`` when given), in
    report order: the test metric against each numeric swept key and against each column of
    ``sweep_plots`` (:attr:`SweepTable.column_plots`), the headline score by input SNR when the jobs
    scored by input SNR (:func:`plot_score_by_snr`), the loss curves, then the other
    :func:`axis_plots` entries against each numeric key (those with a value in some row). None when no job
    succeeded."""
    if not table.ok_rows:
        return []
    # a categorical key (model=..., a flag) is a line of the numeric keys' plots, not an axis
    numeric = [key for key in table.swept if is_numeric([row[key] for row in table.ok_rows])]
    plots = axis_plots(table)

    def against_axes(name: str) -> list[Path]:
        if all(math.isnan(plots[name].value_of(row)[0]) for row in table.ok_rows):  # a metric no job logged
            return []
        return [
            save(
                plot_against_axis(table, key, name),
                output_dir / f"{name}_vs_{axis_slug(key, table.swept)}.png",
                pdf,
            )
            for key in numeric
        ]

    test_plot = table.test_metric.stem
    paths = against_axes(test_plot)
    paths += [
        save(plot_metric_against_column(table, plot), output_dir / f"{test_plot}_vs_{plot.x}.png", pdf)
        for plot in table.column_plots
    ]
    snr = snr_table(table)
    if snr is not None and snr.headline is not None:
        figure = plot_score_by_snr(snr, snr.headline)
        paths.append(save(figure, output_dir / by_snr_png(snr.headline), pdf))
    paths.append(save(plot_train_loss(table), output_dir / "train_loss.png", pdf))
    for name in plots:
        if name != test_plot:
            paths += against_axes(name)
    return paths
