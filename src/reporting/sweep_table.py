"""Read the job folders of a Hydra multirun and aggregate them into one table per sweep.

A sweep folder holds one folder per job with ``.hydra/overrides.yaml`` (written by Hydra when the job
starts) and ``metrics.json`` (written atomically by ``src.training.train`` when it ends, also on
failure). A configuration is a job's overrides without ``seed``; its seeds are aggregated into one
row (mean ± sample std). A failed or unfinished job is a row of its own with its error.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from src.utils.run_files import atomic_write

SEED_KEY = "seed"
# The trainable frontend's settings, as the study names them: (trainable_stft, trainable_mel) -> letter.
TRAINABLE_STFT, TRAINABLE_MEL = "frontend.trainable_stft", "frontend.trainable_mel"
FRONTEND_SETTINGS = {
    ("false", "false"): "A",
    ("false", "true"): "B",
    ("true", "false"): "C",
    ("true", "true"): "D",
}
# Metrics of metrics.json under these prefixes (e.g. test/macro_f1 of the classification tasks, the phone
# error rates of phone recognition, or frontend/mel_distance, how far trainable filters moved) get mean
# and std columns too when runs have them, named with "/" as "_" (frontend_mel_distance_mean).
EXTRA_METRIC_PREFIXES = ("test/macro_f1", "test/per", "val/per_best", "frontend/")
# Aggregated over the seeds of a configuration into <stem>_mean and <stem>_std columns.
MEAN_STD_COLUMNS = ("test_acc", "val_acc_best", "train_loss_final", "epoch_time_s")
COMPLEXITY_COLUMNS = ("frontend_params", "backbone_params", "frontend_macs", "backbone_macs")


@dataclass(frozen=True)
class JobRun:
    """One job of a sweep: its folder, its overrides (``key -> value`` as typed) and its summary."""

    job_dir: Path
    overrides: dict[str, str]
    summary: dict[str, Any] | None

    @property
    def status(self) -> str:
        """``ok``, ``failed``, or ``missing`` (no ``metrics.json``: killed, or still running)."""
        return "missing" if self.summary is None else str(self.summary.get("status", "failed"))

    @property
    def error(self) -> str:
        """The job's error on one line (empty when it succeeded)."""
        if self.summary is None:
            return f"no metrics.json in {self.job_dir.name}/: the job was killed or has not finished"
        return " ".join(str(self.summary.get("error", "")).split())

    @property
    def seed(self) -> str:
        if SEED_KEY in self.overrides:
            return self.overrides[SEED_KEY]
        return str(self.summary.get("seed", "")) if self.summary else ""

    def configuration(self, keys: Sequence[str]) -> tuple[str, ...]:
        return tuple(self.overrides.get(key, "") for key in keys)

    def epoch_times(self) -> list[float]:
        return [float(t) for t in (self.summary or {}).get("epoch_times_s", [])]

    def extra_metrics(self) -> list[str]:
        """Names of this run's metrics under ``EXTRA_METRIC_PREFIXES``."""
        return [
            name for name in (self.summary or {}).get("metrics", {}) if name.startswith(EXTRA_METRIC_PREFIXES)
        ]

    def value(self, stem: str) -> float:
        """A per-run scalar of a ``MEAN_STD_COLUMNS``, ``COMPLEXITY_COLUMNS`` or extra metric column
        (nan if absent)."""
        summary = self.summary or {}
        metrics = summary.get("metrics", {})
        complexity = summary.get("complexity", {})
        sources = {
            "test_acc": metrics.get("test/acc"),
            "val_acc_best": metrics.get("val/acc_best"),
            "train_loss_final": metrics.get("train/loss_epoch"),
            **{stem: complexity.get(f"complexity/{stem}") for stem in COMPLEXITY_COLUMNS},
            **{name.replace("/", "_"): metrics[name] for name in self.extra_metrics()},
        }
        value = sources.get(stem)
        return math.nan if value is None else float(value)


@dataclass(frozen=True)
class SweepTable:
    """The aggregated table of one sweep: ``swept`` keys first, then the fixed columns."""

    name: str
    sweep_dirs: tuple[Path, ...]
    swept: tuple[str, ...]
    fixed_overrides: dict[str, str]
    rows: list[dict[str, Any]]
    runs: list[JobRun]
    extra_stems: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        stems = (*MEAN_STD_COLUMNS, *self.extra_stems)
        stats = [f"{stem}_{kind}" for stem in stems for kind in ("mean", "std")]
        return [*self.swept, "seeds", "runs", "epochs", *stats, *COMPLEXITY_COLUMNS, "status", "error"]

    @property
    def failed_rows(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if row["status"] != "ok"]

    @property
    def ok_rows(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if row["status"] == "ok"]

    @property
    def is_phone_recognition(self) -> bool:
        """Scored by phone error rate (utterances of any length) rather than clip accuracy."""
        return "test_per" in self.extra_stems

    @property
    def corpus_notes(self) -> list[str]:
        return sorted(
            {run.summary["corpus_note"] for run in self.runs if run.summary and "corpus_note" in run.summary}
        )

    def split_size(self, split: str) -> int | None:
        """Clips in ``split`` (``train``, ``val``, ``test``) as the first successful job counted them."""
        sizes = next((run.summary.get("split_sizes", {}) for run in self.runs if run.status == "ok"), {})
        return sizes.get(split)

    @property
    def fast_dev_run(self) -> bool:
        return any(run.summary and run.summary.get("fast_dev_run") for run in self.runs)


def setting_letter(values: dict[str, str]) -> str:
    """The study's setting (A-D) of overrides or a table row holding both trainable-frontend flags."""
    return FRONTEND_SETTINGS[(values[TRAINABLE_STFT].lower(), values[TRAINABLE_MEL].lower())]


def parse_overrides(lines: Sequence[str]) -> dict[str, str]:
    """``["frontend.n_mels=40", "+trainer.x=1"]`` -> ``{"frontend.n_mels": "40", "trainer.x": "1"}``."""
    parsed = OverridesParser.create().parse_overrides(list(lines))
    return {
        override.get_key_element().lstrip("+~"): override.get_value_element_as_str() for override in parsed
    }


def read_job(job_dir: Path) -> JobRun:
    """The overrides and ``metrics.json`` of one job folder."""
    overrides = OmegaConf.to_container(OmegaConf.load(job_dir / ".hydra" / "overrides.yaml"))
    metrics_file = job_dir / "metrics.json"
    summary = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
    return JobRun(job_dir=job_dir, overrides=parse_overrides(overrides), summary=summary)


def find_jobs(sweep_dir: Path) -> list[Path]:
    """Job folders of a Hydra multirun folder (those with ``.hydra/overrides.yaml``), in job order."""
    if not sweep_dir.is_dir():
        raise FileNotFoundError(
            f"Sweep folder {sweep_dir} does not exist: pass a logs/<task>/multiruns/<time> folder"
        )
    jobs = [path.parent.parent for path in sweep_dir.glob("*/.hydra/overrides.yaml")]
    if not jobs:
        raise FileNotFoundError(
            f"{sweep_dir} holds no job folders (<job>/.hydra/overrides.yaml): is it a Hydra multirun folder "
            "(logs/<task>/multiruns/<time>)?"
        )
    return sorted(
        jobs,
        key=lambda path: (not path.name.isdigit(), int(path.name) if path.name.isdigit() else 0, path.name),
    )


def sort_key(value: str) -> tuple[int, float, str]:
    """Numbers in numeric order, before anything else in text order."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def swept_keys(runs: Sequence[JobRun]) -> tuple[tuple[str, ...], dict[str, str]]:
    """Keys (other than ``seed``) whose value differs between jobs, and the overrides all jobs share."""
    keys = sorted({key for run in runs for key in run.overrides} - {SEED_KEY})
    swept = [key for key in keys if len({run.overrides.get(key) for run in runs}) > 1]
    fixed = {key: runs[0].overrides[key] for key in keys if key not in swept and key in runs[0].overrides}
    return tuple(swept), fixed


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1); the std is nan for a single value."""
    values = [value for value in values if not math.isnan(value)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan


def aggregate_runs(name: str, sweep_dirs: Sequence[Path], runs: Sequence[JobRun]) -> SweepTable:
    """One row per configuration over its successful seeds, then one row per failed or missing job.

    Accuracy, loss and epoch time are ``mean``/``std`` over seeds; the epoch time pools every epoch of
    every seed (``epochs`` of them). Parameter and MAC counts come from the configuration's first run
    (they do not depend on the seed).
    """
    swept, fixed = swept_keys(runs)
    extra_stems = tuple(sorted({name.replace("/", "_") for run in runs for name in run.extra_metrics()}))
    by_config: dict[tuple[str, ...], list[JobRun]] = {}
    for run in runs:
        by_config.setdefault(run.configuration(swept), []).append(run)

    rows: list[dict[str, Any]] = []
    for config in sorted(by_config, key=lambda values: [sort_key(v) for v in values]):
        config_runs = sorted(by_config[config], key=lambda run: sort_key(run.seed))
        ok = [run for run in config_runs if run.status == "ok"]
        if ok:
            row: dict[str, Any] = dict(zip(swept, config, strict=True))
            row["seeds"] = " ".join(run.seed for run in ok)
            row["runs"] = len(ok)
            row["epochs"] = sum(len(run.epoch_times()) for run in ok)
            for stem in (*MEAN_STD_COLUMNS, *extra_stems):
                if stem == "epoch_time_s":
                    values = [t for run in ok for t in run.epoch_times()]
                else:
                    values = [run.value(stem) for run in ok]
                row[f"{stem}_mean"], row[f"{stem}_std"] = mean_std(values)
            row.update({stem: ok[0].value(stem) for stem in COMPLEXITY_COLUMNS})
            row.update(status="ok", error="")
            rows.append(row)
        for run in config_runs:
            if run.status != "ok":
                failed: dict[str, Any] = dict(zip(swept, config, strict=True))
                failed.update(seeds=run.seed, runs=1, status=run.status, error=run.error)
                rows.append(failed)
    return SweepTable(
        name=name,
        sweep_dirs=tuple(sweep_dirs),
        swept=swept,
        fixed_overrides=fixed,
        rows=rows,
        runs=list(runs),
        extra_stems=extra_stems,
    )


def aggregate_sweep(name: str, sweep_dirs: Sequence[Path]) -> SweepTable:
    """Aggregate the jobs of one or more multirun folders of the same sweep (e.g. seeds run later)."""
    runs = [read_job(job) for sweep_dir in sweep_dirs for job in find_jobs(Path(sweep_dir))]
    return aggregate_runs(name, [Path(d) for d in sweep_dirs], runs)


def csv_cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else format(value, ".6g")
    return "" if value is None else str(value)


def table_csv(table: SweepTable) -> str:
    """The table as CSV: one column per value (means and stds apart), empty cells for no value."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([csv_cell(row.get(column)) for column in table.columns])
    return buffer.getvalue()


def plus_minus(mean: float | None, std: float | None, digits: int) -> str:
    if mean is None or math.isnan(mean):
        return ""
    if std is None or math.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def count(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{int(value):,}"


MARKDOWN_COLUMNS = (
    ("test acc", lambda r: plus_minus(r.get("test_acc_mean"), r.get("test_acc_std"), 3)),
    ("best val acc", lambda r: plus_minus(r.get("val_acc_best_mean"), r.get("val_acc_best_std"), 3)),
    (
        "final train loss",
        lambda r: plus_minus(r.get("train_loss_final_mean"), r.get("train_loss_final_std"), 4),
    ),
    ("epoch time (s)", lambda r: plus_minus(r.get("epoch_time_s_mean"), r.get("epoch_time_s_std"), 2)),
    (
        "params (frontend + backbone)",
        lambda r: (
            f"{count(r.get('frontend_params'))} + {count(r.get('backbone_params'))}"
            if r["status"] == "ok"
            else ""
        ),
    ),
    ("MACs frontend", lambda r: count(r.get("frontend_macs"))),
    ("MACs backbone", lambda r: count(r.get("backbone_macs"))),
)


def table_markdown(table: SweepTable) -> str:
    """The table as Markdown, with what it was measured on; ``mean ± std`` over seeds. A column of
    ``MARKDOWN_COLUMNS`` that is empty in every row (accuracy in a phone recognition sweep) is left out."""
    columns = [(title, render) for title, render in MARKDOWN_COLUMNS if any(map(render, table.rows))]
    extras = [stem.removeprefix("frontend_").replace("_", " ") for stem in table.extra_stems]
    header = [*table.swept, "seeds", *(title for title, _ in columns), *extras, "status"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.rows:
        status = row["status"] if row["status"] == "ok" else f"**{row['status']}**: {row['error']}"
        cells = [
            *(str(row[key]) for key in table.swept),
            row["seeds"],
            *(render(row) for _, render in columns),
            *(plus_minus(row.get(f"{stem}_mean"), row.get(f"{stem}_std"), 4) for stem in table.extra_stems),
            status,
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def table_caption(table: SweepTable) -> str:
    """What the table's numbers are and what they were measured on."""
    fixed = ", ".join(f"`{k}={v}`" for k, v in table.fixed_overrides.items()) or "none"
    folders = ", ".join(f"`{d.name}`" for d in table.sweep_dirs)
    parts = [
        f"Sweep `{table.name}`: {len(table.runs)} jobs from {folders}; overrides of all jobs: {fixed}.",
        "Metrics and loss: mean ± sample std over seeds; epoch time: mean ± std over every epoch of "
        "every seed (training only, validation excluded); MACs per forward pass of "
        + ("one second of audio." if table.is_phone_recognition else "one clip."),
    ]
    parts += [f"**Measured on the {note}.**" for note in table.corpus_notes]
    if table.fast_dev_run:
        parts.append("**fast_dev_run: one batch per stage; these numbers are a smoke test, not results.**")
    return "\n".join(parts) + "\n"


def write_table(table: SweepTable, output_dir: Path) -> tuple[Path, Path]:
    """Write ``results.csv`` and ``results.md`` into ``output_dir``, each atomically."""
    csv_path, md_path = output_dir / "results.csv", output_dir / "results.md"
    with atomic_write(csv_path) as stream:
        stream.write(table_csv(table))
    with atomic_write(md_path) as stream:
        stream.write(f"# {table.name}\n\n{table_caption(table)}\n{table_markdown(table)}")
    return csv_path, md_path
