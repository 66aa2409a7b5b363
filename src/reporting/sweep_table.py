"""Read the job folders of a Hydra multirun and aggregate them into one table per sweep.

A sweep folder holds one folder per job with ``.hydra/overrides.yaml`` and ``.hydra/config.yaml``
(written by Hydra when the job starts) and ``metrics.json`` (written atomically by ``src.training.train``
when it ends, also on failure). A configuration is a job's overrides without ``seed``; its seeds are
aggregated into one row (mean ± sample std). A failed or unfinished job is a row of its own with its error.

What a table scores comes from the jobs' ``metrics.json``, never from the task's name: ``test_metric``
and ``test_metric_mode`` (``max`` when higher is better, ``min`` when lower is), ``monitor`` and
``monitor_mode`` (the validation metric that picked the checkpoint) and ``best_metric`` (its best value over
epochs). A ``metrics.json`` written before these keys existed came from a classifier: ``test/acc`` and
``val/acc``, both ``max``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from src.run_record import is_smoke
from src.utils.run_files import atomic_write

SEED_KEY = "seed"
# (name, mode) read from a metrics.json that predates the test_metric_mode, monitor and monitor_mode keys.
OLD_TEST_METRIC = ("test/acc", "max")
OLD_MONITOR = ("val/acc", "max")
MODES = ("max", "min")
TRAIN_LOSS = "train/loss_epoch"
# Other metrics of metrics.json under these prefixes (e.g. test/macro_f1, or frontend/mel_distance, how far
# trainable filters moved) get mean and std columns too when runs have them, named with "/" as "_"
# (frontend_mel_distance_mean); the test loss does not (the loss column is the final training loss).
EXTRA_METRIC_PREFIXES = ("test/", "frontend/")
NOT_EXTRA = ("test/loss",)
# A score at one input SNR (test/si_sdr_i@5dB, test/wiener/snr@0dB): such scores, and the overall ones they
# break down (test/si_sdr_i, test/wiener/snr), go to results_by_snr (src/reporting/sweep_by_snr.py), not
# into this table's extra columns.
SNR_METRIC = re.compile(r"^(?P<base>.+)@(?P<snr>-?\d+(?:\.\d+)?)dB$")
# Aggregated over the seeds of a configuration into <stem>_mean and <stem>_std columns, after the test metric
# and the best monitored value.
LOSS_AND_TIME_COLUMNS = ("train_loss_final", "epoch_time_s")
COMPLEXITY_COLUMNS = ("frontend_params", "backbone_params", "frontend_macs", "backbone_macs")
# What shipping the model costs, from metrics.json's size_on_disk and latency (runs since these were
# measured): columns only when some job has them.
FOOTPRINT_COLUMNS = ("backbone_bytes", "latency_ms_mean", "latency_ms_std")
# How many of the candidate layers a compression replaced (metrics.json's compression), e.g. "5/6":
# a column only when some job was compressed.
COMPRESSION_COLUMN = "replaced_layers"
LATENCY_CAPTION = (
    "Latency: median wall time of one forward pass (frontend + backbone) of one {per} at batch 1 on the "
    "CPU after warm-up, measured at the end of each run while other jobs may run on the machine; mean ± "
    "std over seeds. Size on disk: the encoder's and head's weights saved by torch.save."
)
SETTING_COLUMN = "frontend_setting"
# The config group a frontend setting describes: only its keys can be what the setting stands for.
FRONTEND_GROUP = "frontend"


COLUMN_AXES = ("params", "macs", "backbone_bytes", "latency_ms")
"""Table columns a ``sweep_plots`` entry may plot the test metric against (``params`` and ``macs``: frontend
+ backbone; ``latency_ms``: the mean over seeds)."""


def column_value(row: dict[str, Any], column: str) -> float:
    """The value of a :data:`COLUMN_AXES` column in a table row (nan when the row has none)."""
    if column in ("params", "macs"):
        return float(row.get(f"frontend_{column}", math.nan) + row.get(f"backbone_{column}", math.nan))
    return float(row.get("latency_ms_mean" if column == "latency_ms" else column, math.nan))


@dataclass(frozen=True)
class ColumnPlot:
    """An entry of the jobs' ``sweep_plots`` config key: the test metric against the column ``x`` (one of
    :data:`COLUMN_AXES`), one line per value of the swept keys other than ``along``, whose values each line
    joins in order of ``x``; with ``within`` (e.g. 0.01, one point of accuracy), the conclusions name the
    smallest ``x`` of each line whose test metric is within it of the line's largest ``x``."""

    x: str
    along: str | None = None
    within: float | None = None


def column_plots(config: DictConfig | None) -> list[ColumnPlot]:
    """The ``sweep_plots`` entries of a job ``config`` (``[{x: params, along: compression.rank, within:
    0.01}]``); empty when it has none.

    Raises:
        ValueError: for an entry without a known ``x``, with other keys or a ``within`` that is not a
            number >= 0, naming ``sweep_plots`` and what works.
    """
    entries = OmegaConf.select(config, "sweep_plots", default=None) if config is not None else None
    plots = []
    for index, entry in enumerate(entries or []):
        settings = OmegaConf.to_container(entry) if OmegaConf.is_config(entry) else entry
        within = settings.get("within") if isinstance(settings, dict) else None
        if (
            not isinstance(settings, dict)
            or settings.get("x") not in COLUMN_AXES
            or set(settings) - {"x", "along", "within"}
            or not (within is None or (isinstance(within, int | float) and within >= 0))
        ):
            raise ValueError(
                f"sweep_plots[{index}] must be {{x: <one of {', '.join(COLUMN_AXES)}>, along: <a swept key "
                f"or null>, within: <a number >= 0 or null>}}, got {settings!r}: e.g. "
                "sweep_plots=[{x: params, along: compression.rank, within: 0.01}]"
            )
        plots.append(ColumnPlot(settings["x"], settings.get("along"), within))
    return plots


class MetricTitle(NamedTuple):
    """How conclusions and plots name a metric, and whether it is a share of a split's examples (so that
    one example, 1 / split size, is the smallest difference it can show)."""

    title: str
    share_of_examples: bool


# Metrics the tasks log; any other metric is titled by its name.
METRIC_TITLES = {
    "test/acc": MetricTitle("test accuracy", True),
    "val/acc": MetricTitle("validation accuracy", True),
    "test/per": MetricTitle("test phone error rate", False),
    "val/per": MetricTitle("validation phone error rate", False),
    "test/si_sdr_i": MetricTitle("test SI-SDR improvement in dB", False),
    "val/si_sdr_i": MetricTitle("validation SI-SDR improvement in dB", False),
}


@dataclass(frozen=True)
class Metric:
    """A metric of ``metrics.json``'s ``metrics``, which way is better (``mode``), and how it is named:
    ``header`` in ``results.md`` (``test acc``), ``title`` in conclusions and plots (``test accuracy``)."""

    name: str
    mode: str
    title: str
    header: str
    share_of_examples: bool

    @classmethod
    def named(cls, name: str, mode: str) -> Metric:
        """The metric ``name`` (e.g. ``test/per``) with ``mode`` ``max`` or ``min``."""
        if mode not in MODES:
            raise ValueError(f"the mode of {name} is {mode!r}; expected one of {', '.join(MODES)}")
        known = METRIC_TITLES.get(name, MetricTitle(name, False))
        return cls(name, mode, known.title, name.replace("/", " "), known.share_of_examples)

    @classmethod
    def best_of(cls, monitor: Metric, name: str) -> Metric:
        """``name`` (e.g. ``val/acc_best``), the best value of ``monitor`` over epochs."""
        return cls(
            name, monitor.mode, f"best {monitor.title}", f"best {monitor.header}", monitor.share_of_examples
        )

    @property
    def stem(self) -> str:
        """Its columns' stem: ``val/acc_best`` -> ``val_acc_best`` (``val_acc_best_mean``, ...)."""
        return self.name.replace("/", "_")

    @property
    def direction(self) -> str:
        return "higher is better" if self.mode == "max" else "lower is better"

    def better_first(self, value: float) -> float:
        """A sort key that puts better values first (nan last)."""
        if math.isnan(value):
            return math.inf
        return -value if self.mode == "max" else value


@dataclass(frozen=True)
class JobRun:
    """One job of a sweep: its folder, its overrides (``key -> value`` as typed), its composed config
    (``.hydra/config.yaml``, unresolved) and its summary (``metrics.json``; None when it has none)."""

    job_dir: Path
    overrides: dict[str, str]
    config: DictConfig
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

    def _metric(self, name_key: str, mode_key: str, old: tuple[str, str]) -> Metric:
        summary = self.summary or {}
        try:
            return Metric.named(summary.get(name_key, old[0]), summary.get(mode_key, old[1]))
        except ValueError as error:
            raise ValueError(f"{self.job_dir / 'metrics.json'}: {mode_key}: {error}") from None

    @property
    def test_metric(self) -> Metric:
        """``metrics.json``'s ``test_metric`` and ``test_metric_mode`` (``test/acc``, ``max`` if absent)."""
        return self._metric("test_metric", "test_metric_mode", OLD_TEST_METRIC)

    @property
    def best_metric(self) -> Metric:
        """``metrics.json``'s ``best_metric`` (``<monitor>_best`` if absent), in the direction of its
        ``monitor`` and ``monitor_mode`` (``val/acc``, ``max`` if absent)."""
        monitor = self._metric("monitor", "monitor_mode", OLD_MONITOR)
        return Metric.best_of(monitor, (self.summary or {}).get("best_metric", f"{monitor.name}_best"))

    @property
    def frontend_setting(self) -> str:
        """``metrics.json``'s ``frontend_setting`` (e.g. ``A``-``D`` of the trainable log-mel frontend);
        empty when the frontend has none or the job wrote no such key."""
        return str((self.summary or {}).get("frontend_setting") or "")

    @property
    def question(self) -> str | None:
        """The top-level ``question`` of the job's config: what its sweep asks (None if it has none)."""
        question = OmegaConf.select(self.config, "question")
        return None if question is None else str(question)

    def extra_metrics(self, test_metric: str) -> list[str]:
        """Names of this run's metrics under ``EXTRA_METRIC_PREFIXES``, but ``test_metric``, ``NOT_EXTRA``
        and the scores by input SNR (:data:`SNR_METRIC`, with the overall scores they break down)."""
        metrics = (self.summary or {}).get("metrics", {})
        by_snr = {match["base"] for match in map(SNR_METRIC.match, metrics) if match}
        return [
            name
            for name in metrics
            if name.startswith(EXTRA_METRIC_PREFIXES)
            and name not in (test_metric, *NOT_EXTRA)
            and name not in by_snr
            and not SNR_METRIC.match(name)
        ]

    def metric(self, name: str) -> float:
        """``metrics.json``'s ``metrics[name]`` (nan if absent)."""
        value = (self.summary or {}).get("metrics", {}).get(name)
        return math.nan if value is None else float(value)

    @property
    def backbone_bytes(self) -> float:
        """``metrics.json``'s ``size_on_disk.backbone_bytes`` (nan if absent)."""
        value = (self.summary or {}).get("size_on_disk", {}).get("backbone_bytes")
        return math.nan if value is None else float(value)

    @property
    def latency_ms(self) -> float:
        """``metrics.json``'s ``latency.median_ms``, per example on the CPU (nan if absent or skipped)."""
        value = (self.summary or {}).get("latency", {}).get("median_ms")
        return math.nan if value is None else float(value)

    @property
    def compression(self) -> dict[str, Any]:
        """``metrics.json``'s ``compression`` (empty if absent)."""
        return dict((self.summary or {}).get("compression") or {})

    @property
    def replaced_layers(self) -> str:
        """``"<replaced>/<candidates>"`` of a compressed run (``"5/6"``); empty without compression."""
        compression = self.compression
        if compression.get("method", "none") == "none":
            return ""
        replaced = len(compression.get("replaced", []))
        return f"{replaced}/{replaced + len(compression.get('left_alone', []))}"

    def complexity(self, column: str) -> float:
        """A ``COMPLEXITY_COLUMNS`` count from ``metrics.json``'s ``complexity`` (nan if absent)."""
        value = (self.summary or {}).get("complexity", {}).get(f"complexity/{column}")
        return math.nan if value is None else float(value)


@dataclass(frozen=True)
class SweepTable:
    """The aggregated table of one sweep: ``swept`` keys first, then the fixed columns. ``test_metric``
    and ``best_metric`` are what its successful jobs were scored and selected by."""

    name: str
    sweep_dirs: tuple[Path, ...]
    swept: tuple[str, ...]
    fixed_overrides: dict[str, str]
    rows: list[dict[str, Any]]
    runs: list[JobRun]
    test_metric: Metric
    best_metric: Metric
    extra_stems: tuple[str, ...] = ()

    @property
    def mean_std_stems(self) -> tuple[str, ...]:
        """Stems of the ``<stem>_mean`` and ``<stem>_std`` columns, in column order."""
        return (self.test_metric.stem, self.best_metric.stem, *LOSS_AND_TIME_COLUMNS, *self.extra_stems)

    @property
    def has_settings(self) -> bool:
        """Whether some job named its frontend setting (then the table has a ``frontend_setting`` column)."""
        return any(run.frontend_setting for run in self.runs)

    @property
    def column_plots(self) -> list[ColumnPlot]:
        """The ``sweep_plots`` entries of the first job's config (:func:`column_plots`)."""
        return column_plots(self.runs[0].config if self.runs else None)

    @property
    def has_footprint(self) -> bool:
        """Whether some job measured its size on disk (then the table has :data:`FOOTPRINT_COLUMNS`)."""
        return any(not math.isnan(run.backbone_bytes) for run in self.runs)

    @property
    def has_compression(self) -> bool:
        """Whether some job was compressed (then the table has a :data:`COMPRESSION_COLUMN`)."""
        return any(run.replaced_layers for run in self.runs)

    @property
    def columns(self) -> list[str]:
        stats = [f"{stem}_{kind}" for stem in self.mean_std_stems for kind in ("mean", "std")]
        setting = [SETTING_COLUMN] if self.has_settings else []
        footprint = list(FOOTPRINT_COLUMNS) if self.has_footprint else []
        compression = [COMPRESSION_COLUMN] if self.has_compression else []
        return [
            *self.swept,
            *setting,
            "seeds",
            "runs",
            "epochs",
            *stats,
            *COMPLEXITY_COLUMNS,
            *footprint,
            *compression,
            "status",
            "error",
        ]

    @property
    def failed_rows(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if row["status"] != "ok"]

    @property
    def ok_rows(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if row["status"] == "ok"]

    @property
    def setting_keys(self) -> tuple[str, ...]:
        """The swept keys that the frontend setting stands for: the frontend's keys (``frontend`` and
        ``frontend.*``) that are constant within each setting, e.g. the two trainable flags of settings
        A-D. Empty unless the successful rows have two settings or more."""
        by_setting: dict[str, list[dict[str, Any]]] = {}
        for row in self.ok_rows:
            if row[SETTING_COLUMN]:
                by_setting.setdefault(row[SETTING_COLUMN], []).append(row)
        if len(by_setting) < 2:
            return ()
        return tuple(
            key
            for key in self.swept
            if key.split(".", 1)[0] == FRONTEND_GROUP
            and all(len({row[key] for row in rows}) == 1 for rows in by_setting.values())
        )

    @property
    def question(self) -> str | None:
        """The question of the sweep: the first ``question`` in its jobs' configs (None if none has one)."""
        return next((run.question for run in self.runs if run.question is not None), None)

    @property
    def macs_per(self) -> str:
        """What the MAC counts are per: ``clip`` for data of fixed-length clips (a ``data.clip_seconds`` in
        the first job's config), else ``second of audio`` (``src.training`` counts utterances so)."""
        clip_seconds = OmegaConf.select(self.runs[0].config, "data.clip_seconds")
        return "clip" if clip_seconds is not None else "second of audio"

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
    def caveats(self) -> list[str]:
        """Why some of the jobs' numbers are not full results (their ``metrics.json`` ``caveats``:
        ``fast_dev_run``, stages limited to part of a split), each reason once; empty for a full sweep."""
        found = [caveat for run in self.runs if run.summary for caveat in run.summary.get("caveats", [])]
        if any(run.summary and run.summary.get("fast_dev_run") for run in self.runs) and not found:
            found.append("fast_dev_run: one batch per stage, a smoke test, not a result")
        return list(dict.fromkeys(found))

    @property
    def smoke(self) -> bool:
        """Whether any job's numbers are not a full result (:attr:`caveats`): such a sweep is never
        published to ``sweep_results/``."""
        return any(is_smoke(run.summary) for run in self.runs)


def parse_overrides(lines: Sequence[str]) -> dict[str, str]:
    """``["frontend.n_mels=40", "+trainer.x=1"]`` -> ``{"frontend.n_mels": "40", "trainer.x": "1"}``."""
    parsed = OverridesParser.create().parse_overrides(list(lines))
    return {
        override.get_key_element().lstrip("+~"): override.get_value_element_as_str() for override in parsed
    }


def read_job(job_dir: Path) -> JobRun:
    """The ``.hydra/overrides.yaml``, ``.hydra/config.yaml`` and ``metrics.json`` of one job folder."""
    overrides = OmegaConf.to_container(OmegaConf.load(job_dir / ".hydra" / "overrides.yaml"))
    config = OmegaConf.load(job_dir / ".hydra" / "config.yaml")
    metrics_file = job_dir / "metrics.json"
    summary = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
    return JobRun(job_dir=job_dir, overrides=parse_overrides(overrides), config=config, summary=summary)


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


def scoring(runs: Sequence[JobRun]) -> tuple[Metric, Metric]:
    """The test metric and best monitored metric of the successful ``runs`` (of all runs when none
    succeeded); a ``ValueError`` when they differ, since one column cannot average two metrics."""
    scored = [run for run in runs if run.status == "ok"] or list(runs)
    found = {(run.test_metric, run.best_metric): run for run in scored}
    if len(found) > 1:
        pairs = "; ".join(
            f"{test.name} ({test.mode}) and {best.name} ({best.mode}) in {run.job_dir}"
            for (test, best), run in found.items()
        )
        raise ValueError(f"The jobs of one sweep are scored by different metrics: {pairs}")
    return next(iter(found))


def aggregate_runs(name: str, sweep_dirs: Sequence[Path], runs: Sequence[JobRun]) -> SweepTable:
    """One row per configuration over its successful seeds, then one row per failed or missing job.

    The test metric, the best monitored value, the final training loss, epoch time and extra metrics are
    ``mean``/``std`` over seeds; the epoch time pools every epoch of every seed (``epochs`` of them).
    Parameter and MAC counts and the frontend setting come from the configuration's first run (they do not
    depend on the seed).
    """
    swept, fixed = swept_keys(runs)
    test_metric, best_metric = scoring(runs)
    extra_names = sorted({name for run in runs for name in run.extra_metrics(test_metric.name)})
    metric_names = {
        test_metric.stem: test_metric.name,
        best_metric.stem: best_metric.name,
        "train_loss_final": TRAIN_LOSS,
        **{name.replace("/", "_"): name for name in extra_names},
    }
    by_config: dict[tuple[str, ...], list[JobRun]] = {}
    for run in runs:
        by_config.setdefault(run.configuration(swept), []).append(run)

    rows: list[dict[str, Any]] = []
    for config in sorted(by_config, key=lambda values: [sort_key(v) for v in values]):
        config_runs = sorted(by_config[config], key=lambda run: sort_key(run.seed))
        ok = [run for run in config_runs if run.status == "ok"]
        if ok:
            row: dict[str, Any] = dict(zip(swept, config, strict=True))
            row[SETTING_COLUMN] = ok[0].frontend_setting
            row["seeds"] = " ".join(run.seed for run in ok)
            row["runs"] = len(ok)
            row["epochs"] = sum(len(run.epoch_times()) for run in ok)
            for stem, metric in metric_names.items():
                row[f"{stem}_mean"], row[f"{stem}_std"] = mean_std([run.metric(metric) for run in ok])
            times = [t for run in ok for t in run.epoch_times()]
            row["epoch_time_s_mean"], row["epoch_time_s_std"] = mean_std(times)
            row.update({column: ok[0].complexity(column) for column in COMPLEXITY_COLUMNS})
            row["backbone_bytes"] = ok[0].backbone_bytes
            row["latency_ms_mean"], row["latency_ms_std"] = mean_std([run.latency_ms for run in ok])
            row[COMPRESSION_COLUMN] = ok[0].replaced_layers
            row.update(status="ok", error="")
            rows.append(row)
        for run in config_runs:
            if run.status != "ok":
                failed: dict[str, Any] = dict(zip(swept, config, strict=True))
                failed[SETTING_COLUMN] = run.frontend_setting
                failed.update(seeds=run.seed, runs=1, status=run.status, error=run.error)
                rows.append(failed)
    return SweepTable(
        name=name,
        sweep_dirs=tuple(sweep_dirs),
        swept=swept,
        fixed_overrides=fixed,
        rows=rows,
        runs=list(runs),
        test_metric=test_metric,
        best_metric=best_metric,
        extra_stems=tuple(name.replace("/", "_") for name in extra_names),
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


def kilobytes(value: float | None) -> str:
    """Bytes as ``"33,412.5 kB"`` (1 kB = 1000 bytes); empty for no value."""
    return "" if value is None or math.isnan(value) else f"{value / 1e3:,.1f} kB"


def markdown_columns(table: SweepTable) -> list[tuple[str, Callable[[dict[str, Any]], str]]]:
    """(header, cell of a row) of the fixed columns of ``results.md``: the test metric, the best monitored
    value, loss, epoch time, the complexity counts, size on disk, latency and the layers a compression
    replaced (the last three empty for runs that did not measure them)."""

    def stat(stem: str, digits: int) -> Callable[[dict[str, Any]], str]:
        return lambda row: plus_minus(row.get(f"{stem}_mean"), row.get(f"{stem}_std"), digits)

    return [
        (table.test_metric.header, stat(table.test_metric.stem, 3)),
        (table.best_metric.header, stat(table.best_metric.stem, 3)),
        ("final train loss", stat("train_loss_final", 4)),
        ("epoch time (s)", stat("epoch_time_s", 2)),
        (
            "params (frontend + backbone)",
            lambda row: (
                f"{count(row.get('frontend_params'))} + {count(row.get('backbone_params'))}"
                if row["status"] == "ok"
                else ""
            ),
        ),
        ("MACs frontend", lambda row: count(row.get("frontend_macs"))),
        ("MACs backbone", lambda row: count(row.get("backbone_macs"))),
        ("size on disk (backbone)", lambda row: kilobytes(row.get("backbone_bytes"))),
        (f"latency (ms per {table.macs_per}, CPU, batch 1)", stat("latency_ms", 2)),
        ("layers compressed", lambda row: str(row.get(COMPRESSION_COLUMN) or "")),
    ]


def table_markdown(table: SweepTable) -> str:
    """The table as Markdown, with what it was measured on; ``mean ± std`` over seeds. A column of
    :func:`markdown_columns` that is empty in every row (e.g. the test metric when every job failed) is left
    out; the frontend setting is a column when jobs named one."""
    columns = [(title, render) for title, render in markdown_columns(table) if any(map(render, table.rows))]
    extras = [stem.removeprefix("frontend_").replace("_", " ") for stem in table.extra_stems]
    setting = ["setting"] if table.has_settings else []
    header = [*table.swept, *setting, "seeds", *(title for title, _ in columns), *extras, "status"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.rows:
        status = row["status"] if row["status"] == "ok" else f"**{row['status']}**: {row['error']}"
        cells = [
            *(str(row[key]) for key in table.swept),
            *([row[SETTING_COLUMN]] if table.has_settings else []),
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
    test, best = table.test_metric, table.best_metric
    parts = [
        f"Sweep `{table.name}`: {len(table.runs)} jobs from {folders}; overrides of all jobs: {fixed}.",
        f"Scored by `{test.name}` ({test.direction}) on the checkpoint with the best validation metric, "
        f"whose best value over epochs is `{best.name}` ({best.direction}).",
        "Metrics and loss: mean ± sample std over seeds; epoch time: mean ± std over every epoch of "
        f"every seed (training only, validation excluded); MACs per forward pass of one {table.macs_per}.",
    ]
    if table.has_footprint:
        parts.append(LATENCY_CAPTION.format(per=table.macs_per))
    parts += [f"**Measured on the {note}.**" for note in table.corpus_notes]
    parts += [f"**Not a result: {caveat}.**" for caveat in table.caveats]
    return "\n".join(parts) + "\n"


def write_table(table: SweepTable, output_dir: Path) -> tuple[Path, Path]:
    """Write ``results.csv`` and ``results.md`` into ``output_dir``, each atomically."""
    csv_path, md_path = output_dir / "results.csv", output_dir / "results.md"
    with atomic_write(csv_path) as stream:
        stream.write(table_csv(table))
    with atomic_write(md_path) as stream:
        stream.write(f"# {table.name}\n\n{table_caption(table)}\n{table_markdown(table)}")
    return csv_path, md_path
