"""Conclusions read off an aggregated sweep table, as sentences: nothing here is typed in by hand.

- Ranking: which configuration is best by the best monitored value (the selection criterion) and by the
  test metric, in each metric's direction (lower first for an error rate), and whether its lead exceeds the
  spread between seeds.
- Settings, when jobs named their frontend setting: each setting against the first one (``A`` in the study).
- Scaling, for each numeric swept key: how parameters, MACs and epoch time change from its smallest to
  its largest value, and where epoch time stops falling although MACs still do.
- By input SNR, when the jobs scored by it: the best method at each input SNR and whether the best
  model beats the best baseline there (:func:`snr_conclusions`).
- Trade-off, for each ``sweep_plots`` entry with a ``within`` (e.g. accuracy against parameters, within one
  point): along each of its lines, the smallest configuration whose test metric is within ``within`` of
  the line's largest one, and what the next smaller one loses.

``conclusions.md`` in a sweep's results folder holds the sweep's question and these sentences.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from src.reporting.sweep_by_snr import MethodRow, score_title, snr_header, snr_table
from src.reporting.sweep_table import (
    SETTING_COLUMN,
    ColumnPlot,
    Metric,
    SweepTable,
    column_value,
    sort_key,
)
from src.utils.run_files import atomic_write

# A step of the swept key "reduces MACs" when they fall by more than this fraction.
MACS_FALL = 0.05
# A share-of-examples metric (accuracy) this close to its best possible value leaves little to separate.
SATURATION = 0.02
CONCLUSIONS_MD = "conclusions.md"


def describe(row: dict[str, Any], swept: Sequence[str]) -> str:
    return ", ".join(f"`{key}={row[key]}`" for key in swept) or "the only configuration"


def ranking_sentence(table: SweepTable, metric: Metric, split: str) -> str | None:
    """First, runner-up and last configuration by ``metric`` (its ``<stem>_mean`` column, better first),
    against the noise level: the mean seed-to-seed std, or one example of ``split`` when ``metric`` is a
    share of examples and that is larger (a smaller gap is no evidence). None when fewer than two rows have
    a value."""
    mean = f"{metric.stem}_mean"
    ranked = sorted(
        (row for row in table.ok_rows if not math.isnan(row[mean])),
        key=lambda row: (metric.better_first(row[mean]), [sort_key(row[k]) for k in table.swept]),
    )
    if len(ranked) < 2:
        return None
    first, second, last = ranked[0], ranked[1], ranked[-1]
    stds = [row[f"{metric.stem}_std"] for row in ranked if not math.isnan(row[f"{metric.stem}_std"])]
    seed_std = sum(stds) / len(stds) if stds else 0.0
    clips = (table.split_size(split) or 0) if metric.share_of_examples else 0
    one_clip = 1 / clips if clips else 0.0
    noise = max(seed_std, one_clip)
    lead = abs(first[mean] - second[mean])
    span = abs(first[mean] - last[mean])

    def gap(value: float) -> str:
        return f"{value:.4f} ({value * clips:.1f} clips)" if clips else f"{value:.4f}"

    floor = (
        f"the larger of the mean seed-to-seed std ({seed_std:.4f}) and one clip ({one_clip:.4f})"
        if clips
        else "the mean seed-to-seed std"
    )
    sentence = (
        f"By {metric.title} ({metric.direction}{f', {clips} clips' if clips else ''}), "
        f"{describe(first, table.swept)} is first with {first[mean]:.4f}, {gap(lead)} ahead of "
        f"{describe(second, table.swept)}; first and last ({describe(last, table.swept)}) differ by "
        f"{gap(span)}. Noise level: {noise:.4f}, {floor}."
    )
    if noise == 0:
        return sentence + " With one seed and no split size there is no noise level to compare with."
    if span <= noise:
        return (
            sentence + " Even first and last are within it: this sweep does not separate the configurations."
        )
    if lead <= noise:
        return sentence + f" The lead is within it; only first vs last ({span / noise:.1f}x) stands out."
    return sentence + f" The lead is {lead / noise:.1f}x the noise level."


def ranking_conclusions(table: SweepTable) -> list[str]:
    """How the configurations rank by the best monitored value (the selection criterion) and by the test
    metric, each in its direction and against its noise level."""
    if len(table.ok_rows) < 2:
        return ["Fewer than two configurations succeeded: nothing to rank."]
    ranked = (
        ranking_sentence(table, table.best_metric, "val"),
        ranking_sentence(table, table.test_metric, "test"),
    )
    sentences = [sentence for sentence in ranked if sentence is not None]
    test = table.test_metric
    values = [row[f"{test.stem}_mean"] for row in table.ok_rows]
    if test.share_of_examples and test.mode == "max" and all(value >= 1 - SATURATION for value in values):
        sentences.append(
            f"Every configuration reaches at least {1 - SATURATION:.0%} {test.title}: the task nearly "
            f"saturates, so {test.title} differences between these configurations are a few clips at most."
        )
    return sentences


def standard_error(row: dict[str, Any]) -> float:
    """Standard error of a row's mean epoch time (its std over the square root of its epoch count)."""
    return row["epoch_time_s_std"] / math.sqrt(row["epochs"]) if row["epochs"] > 1 else math.inf


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def scaling_conclusions(table: SweepTable, key: str) -> list[str]:
    """How params, MACs and epoch time scale along the numeric swept ``key`` (other keys at their first
    value), and the first step where time stops falling although MACs fall."""
    others = [k for k in table.swept if k != key]
    rows = [row for row in table.ok_rows if all(row[k] == table.ok_rows[0][k] for k in others)]
    rows = sorted(rows, key=lambda row: sort_key(row[key]))
    if len(rows) < 2 or any(sort_key(row[key])[0] for row in rows):
        return []
    low, high = rows[0], rows[-1]
    scope = f" (with {describe(low, others)})" if others else ""

    def totals(row: dict[str, Any]) -> tuple[float, float]:
        return row["frontend_params"] + row["backbone_params"], row["frontend_macs"] + row["backbone_macs"]

    (params_low, macs_low), (params_high, macs_high) = totals(low), totals(high)
    backbone_low, backbone_high = low["backbone_macs"], high["backbone_macs"]
    time_low, time_high = low["epoch_time_s_mean"], high["epoch_time_s_mean"]
    sentences = [
        f"From `{key}={low[key]}` to `{key}={high[key]}`{scope}: parameters {params_low:,.0f} → "
        f"{params_high:,.0f} ({ratio(params_high, params_low)}), backbone MACs {backbone_low:,.0f} → "
        f"{backbone_high:,.0f} ({ratio(backbone_high, backbone_low)}), total MACs with the frontend "
        f"{macs_low:,.0f} → {macs_high:,.0f} ({ratio(macs_high, macs_low)}), epoch time "
        f"{time_low:.3f} s → {time_high:.3f} s ({ratio(time_high, time_low)})."
    ]
    for before, after in itertools.pairwise(rows):
        macs_before, macs_after = totals(before)[1], totals(after)[1]
        time_drop = before["epoch_time_s_mean"] - after["epoch_time_s_mean"]
        noise = 2 * math.hypot(standard_error(before), standard_error(after))
        if macs_after < (1 - MACS_FALL) * macs_before and not time_drop > noise:
            sentences.append(
                f"Epoch time stops falling at `{key}={before[key]}`: going to `{key}={after[key]}` cuts "
                f"total MACs by {100 * (1 - macs_after / macs_before):.0f}% but changes epoch time by "
                f"{-time_drop:+.3f} s, within twice the standard error of the difference ({noise:.3f} s over "
                f"{before['epochs']} and {after['epochs']} epochs). From there on, the "
                "epoch is dominated by work that MACs do not count: data loading, the frontend, "
                "normalisation, per-layer overhead (`python -m benchmarks.sweep` measures the split)."
            )
            break
    else:
        if macs_high < macs_low:
            sentences.append("Epoch time falls at every step where MACs fall by more than 5%.")
    return sentences


def settings_conclusions(table: SweepTable) -> list[str]:
    """For a sweep whose jobs named two frontend settings or more (``metrics.json``'s
    ``frontend_setting``): per value of the categorical swept keys the setting does not stand for (e.g.
    each model), the test metric of every other setting against the first in name order (``A`` in the
    study), pooling every numeric value (e.g. all n_mels) and seed; a difference counts when it exceeds
    twice its standard error, and is called better or worse by the test metric's direction."""
    setting_keys = table.setting_keys
    if not setting_keys:
        return []
    test = table.test_metric
    others = [key for key in table.swept if key not in setting_keys]
    groups = [key for key in others if any(sort_key(row[key])[0] for row in table.ok_rows)]
    pooled_keys = [key.rsplit(".", 1)[-1] for key in others if key not in groups]
    pooled: dict[tuple[str, ...], dict[str, list[float]]] = {}
    for run in table.runs:
        if run.status == "ok" and run.frontend_setting:
            by_setting = pooled.setdefault(run.configuration(groups), {})
            by_setting.setdefault(run.frontend_setting, []).append(run.metric(test.name))
    reference = min(row[SETTING_COLUMN] for row in table.ok_rows if row[SETTING_COLUMN])
    clips = table.split_size("test") if test.share_of_examples else None
    sentences = []
    for group in sorted(pooled):
        values_by_setting = pooled[group]
        if reference not in values_by_setting or len(values_by_setting) < 2:
            continue
        base = values_by_setting[reference]
        parts = []
        for setting in sorted(set(values_by_setting) - {reference}):
            values = values_by_setting[setting]
            difference = statistics.fmean(values) - statistics.fmean(base)
            in_clips = f", {difference * clips:+.1f} clips" if clips else ""
            if min(len(values), len(base)) < 2:
                parts.append(f"{setting} {difference:+.4f}{in_clips} (one run: no noise level)")
                continue
            error = math.sqrt(
                statistics.variance(values) / len(values) + statistics.variance(base) / len(base)
            )
            if abs(difference) > 2 * error:
                better = (difference > 0) == (test.mode == "max")
                verdict = f"{'better' if better else 'worse'}, beyond noise"
            else:
                verdict = "within noise"
            parts.append(
                f"{setting} {difference:+.4f}{in_clips} ({verdict}: 2 standard errors = {2 * error:.4f})"
            )
        scope = ", ".join(f"`{key}={value}`" for key, value in zip(groups, group, strict=True)) or "All runs"
        pooled_over = " and ".join([", ".join(pooled_keys), "seed"] if pooled_keys else ["seed"])
        sentences.append(
            f"{scope}: {test.title} over every {pooled_over}, setting {reference} "
            f"{statistics.fmean(base):.4f} ({len(base)} runs); against {reference} ({test.direction}): "
            + "; ".join(parts)
            + "."
        )
    return sentences


def tradeoff_conclusions(table: SweepTable, plot: ColumnPlot) -> list[str]:
    """For a ``sweep_plots`` entry with ``within``: per line of its plot (a value of the swept keys other
    than ``along``), the row with the largest ``x`` (ties: the last ``along`` value) is the reference; the
    sentence names the smallest-``x`` row whose mean test metric is no more than ``within`` worse, the
    next smaller row's loss, and the seed-to-seed std, so the reader can tell a drop from noise."""
    if plot.within is None:
        return []
    test = table.test_metric
    mean, std = f"{test.stem}_mean", f"{test.stem}_std"
    others = [key for key in table.swept if key != plot.along]
    lines: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in table.ok_rows:
        if not math.isnan(column_value(row, plot.x)) and not math.isnan(row[mean]):
            lines.setdefault(tuple(row[key] for key in others), []).append(row)

    def loss(row: dict[str, Any], reference: dict[str, Any]) -> float:
        """How much worse ``row`` is than ``reference`` (negative: better)."""
        return (reference[mean] - row[mean]) if test.mode == "max" else (row[mean] - reference[mean])

    def stated(row: dict[str, Any]) -> str:
        spread = "" if math.isnan(row[std]) else f" ± {row[std]:.4f}"
        along = f"`{plot.along}={row[plot.along]}`, " if plot.along in row else ""
        return f"{along}{column_value(row, plot.x):,.0f} {plot.x}, {row[mean]:.4f}{spread}"

    sentences = []
    for key in sorted(lines, key=lambda values: [sort_key(v) for v in values]):
        rows = sorted(
            lines[key], key=lambda row: (column_value(row, plot.x), sort_key(str(row.get(plot.along, ""))))
        )
        reference = rows[-1]
        smallest = next(row for row in rows if loss(row, reference) <= plot.within)
        smaller = [row for row in rows if column_value(row, plot.x) < column_value(smallest, plot.x)]
        scope = describe(dict(zip(others, key, strict=True)), others) if others else "All runs"
        if column_value(smallest, plot.x) < column_value(reference, plot.x):
            sentence = (
                f"{scope}: the smallest configuration whose {test.title} is within {plot.within} of the "
                f"largest ({stated(reference)}) is {stated(smallest)}, "
                f"{ratio(column_value(reference, plot.x), column_value(smallest, plot.x))} fewer {plot.x}"
            )
        else:
            sentence = (
                f"{scope}: no configuration with fewer {plot.x} than the largest ({stated(reference)}) has a "
                f"{test.title} within {plot.within} of it"
            )
        if smaller:
            below = smaller[-1]
            sentence += f"; the next smaller ({stated(below)}) is {loss(below, reference):.4f} worse"
        sentences.append(sentence + ".")
    return sentences


def standard_error_of_mean(std: float, runs: int) -> float:
    """``std / sqrt(runs)``; nan for a single run (no spread to go by)."""
    return std / math.sqrt(runs) if runs > 1 and not math.isnan(std) else math.nan


def snr_conclusions(table: SweepTable) -> list[str]:
    """For jobs that scored by input SNR (:func:`src.reporting.sweep_by_snr.snr_table`), by the headline
    score (the test metric, in its direction): at each input SNR and over all test pairs, the best method
    of the by-SNR table, and whether the best configuration of the model beats the best baseline there; a
    difference beyond twice its standard error (over the seeds of the model's configuration and the jobs
    that scored the baseline) is beyond noise. Then the input SNRs at which the model beats the baselines.
    Empty without such scores."""
    snr = snr_table(table)
    if snr is None or snr.headline is None:
        return []
    score, test = snr.headline, table.test_metric
    digits = score_title(score).digits
    models, baselines = snr.model_rows(), snr.baseline_rows(score)

    def best(rows: list[MethodRow], snr_db: float | None) -> MethodRow | None:
        scored = [row for row in rows if not math.isnan(row.stat(score, snr_db)[0])]
        return min(scored, key=lambda row: test.better_first(row.stat(score, snr_db)[0]), default=None)

    def stated(row: MethodRow, snr_db: float | None) -> str:
        mean, std = row.stat(score, snr_db)
        spread = "" if math.isnan(std) else f" ± {std:.{digits}f}"
        return f"`{row.label(table.swept)}` with {mean:.{digits}f}{spread}"

    sentences: list[str] = []
    beats: dict[str, list[str]] = {"beyond noise": [], "no noise level": [], "within noise": [], "not": []}
    for snr_db in [*snr.snrs, None]:
        where = f"At {snr_header(snr_db)} input SNR" if snr_db is not None else "Over all test pairs"
        lead_in = f"{where}, by {test.title} ({test.direction})"
        model, baseline = best(models, snr_db), best(baselines, snr_db)
        if model is None or baseline is None:
            winner = model or baseline
            if winner is not None:
                sentences.append(f"{lead_in}, the best is {stated(winner, snr_db)}.")
            continue
        (model_mean, model_std), (base_mean, base_std) = (
            model.stat(score, snr_db),
            baseline.stat(score, snr_db),
        )
        lead = (model_mean - base_mean) if test.mode == "max" else (base_mean - model_mean)
        error = math.hypot(
            standard_error_of_mean(model_std, len(model.runs)),
            standard_error_of_mean(base_std, len(baseline.runs)),
        )
        if math.isnan(error):
            noise = "no noise level"
            evidence = "one seed: no noise level to compare with"
        else:
            noise = "beyond noise" if abs(lead) > 2 * error else "within noise"
            evidence = f"{noise}: 2 standard errors of the difference = {2 * error:.{digits}f}"
        if lead > 0:
            sentence = (
                f"{lead_in}, the best method is the model, {stated(model, snr_db)}: it beats the best "
                f"baseline, {stated(baseline, snr_db)}, by {lead:.{digits}f} ({evidence})."
            )
        else:
            sentence = (
                f"{lead_in}, the best method is the baseline {stated(baseline, snr_db)}: the best model, "
                f"{stated(model, snr_db)}, does not beat it ({-lead:.{digits}f} behind; {evidence})."
            )
        sentences.append(sentence)
        if snr_db is not None:
            beats[noise if lead > 0 else "not"].append(snr_header(snr_db))
    parts = [
        f"{'not' if kind == 'not' else f'beats it ({kind})'} at {', '.join(values)}"
        for kind, values in beats.items()
        if values
    ]
    if parts:
        sentences.append(
            f"By {test.title}, the best model against the best baseline at each input SNR: "
            + "; ".join(parts)
            + "."
        )
    return sentences


def sweep_conclusions(table: SweepTable) -> list[str]:
    """Every conclusion of the sweep, in report order: ranking, by input SNR, settings, scaling along each
    swept key, trade-offs of the ``sweep_plots`` entries."""
    return [
        *ranking_conclusions(table),
        *snr_conclusions(table),
        *settings_conclusions(table),
        *(sentence for key in table.swept for sentence in scaling_conclusions(table, key)),
        *(sentence for plot in table.column_plots for sentence in tradeoff_conclusions(table, plot)),
    ]


def conclusions_markdown(table: SweepTable) -> str:
    """``conclusions.md``: the sweep's question (from its jobs' config), then :func:`sweep_conclusions`."""
    question = table.question or "(The jobs' config has no top-level `question`.)"
    sentences = [f"- {sentence}" for sentence in sweep_conclusions(table)]
    return "\n".join(
        [f"# {table.name}", "", question, "", "Conclusions, computed from the table:", "", *sentences, ""]
    )


def write_conclusions(table: SweepTable, output_dir: Path) -> Path:
    """Write :func:`conclusions_markdown` to ``output_dir/conclusions.md`` atomically; returns its path."""
    path = output_dir / CONCLUSIONS_MD
    with atomic_write(path) as stream:
        stream.write(conclusions_markdown(table))
    return path
