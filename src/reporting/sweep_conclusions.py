"""Conclusions read off an aggregated sweep table, as sentences: nothing here is typed in by hand.

- Accuracy: which configuration is best (by best validation accuracy, the selection criterion, and by
  test accuracy) and whether its lead exceeds the spread between seeds.
- Scaling, for each numeric swept key: how parameters, MACs and epoch time change from its smallest to
  its largest value, and where epoch time stops falling although MACs still do.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from typing import Any

from src.reporting.sweep_table import TRAINABLE_MEL, TRAINABLE_STFT, SweepTable, setting_letter, sort_key

# A step of the swept key "reduces MACs" when they fall by more than this fraction.
MACS_FALL = 0.05


def describe(row: dict[str, Any], swept: Sequence[str]) -> str:
    return ", ".join(f"`{key}={row[key]}`" for key in swept) or "the only configuration"


def ranking_sentence(table: SweepTable, metric: str, split: str, title: str) -> str:
    """First, runner-up and last configuration by ``<metric>_mean``, against the noise level: the
    larger of the mean seed-to-seed std and one clip of ``split`` (a smaller gap is no evidence)."""
    ranked = sorted(
        table.ok_rows, key=lambda row: (-row[f"{metric}_mean"], [sort_key(row[k]) for k in table.swept])
    )
    first, second, last = ranked[0], ranked[1], ranked[-1]
    stds = [row[f"{metric}_std"] for row in ranked if not math.isnan(row[f"{metric}_std"])]
    seed_std = sum(stds) / len(stds) if stds else 0.0
    clips = table.split_size(split) or 0
    one_clip = 1 / clips if clips else 0.0
    noise = max(seed_std, one_clip)
    lead = first[f"{metric}_mean"] - second[f"{metric}_mean"]
    span = first[f"{metric}_mean"] - last[f"{metric}_mean"]

    def gap(value: float) -> str:
        return f"{value:.4f} ({value * clips:.1f} clips)" if clips else f"{value:.4f}"

    sentence = (
        f"By {title}{f' ({clips} clips)' if clips else ''}, {describe(first, table.swept)} is first with "
        f"{first[f'{metric}_mean']:.4f}, {gap(lead)} ahead of {describe(second, table.swept)}; first and "
        f"last ({describe(last, table.swept)}) differ by {gap(span)}. Noise level: {noise:.4f}, the larger "
        f"of the mean seed-to-seed std ({seed_std:.4f}) and one clip ({one_clip:.4f})."
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


def accuracy_conclusions(table: SweepTable) -> list[str]:
    """How the configurations rank by best validation accuracy (the selection criterion) and by test
    accuracy, each against its noise level."""
    if len(table.ok_rows) < 2:
        return ["Fewer than two configurations succeeded: nothing to rank."]
    if all(math.isnan(row["test_acc_mean"]) for row in table.ok_rows):  # phone recognition: no accuracy
        return []
    sentences = [
        ranking_sentence(table, "val_acc_best", "val", "best validation accuracy"),
        ranking_sentence(table, "test_acc", "test", "test accuracy"),
    ]
    if all(row["test_acc_mean"] >= 0.98 for row in table.ok_rows):
        sentences.append(
            "Every configuration reaches at least 98% test accuracy: the task nearly saturates, so accuracy "
            "differences between these configurations are a few clips at most."
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
    """For a sweep over both trainable-frontend flags: per value of the other categorical keys (e.g.
    each model), test accuracy (test phone error rate for phone recognition) of settings B, C, D against
    A, pooling every numeric value (e.g. all n_mels) and seed; a difference counts when it exceeds twice
    its standard error."""
    if TRAINABLE_STFT not in table.swept or TRAINABLE_MEL not in table.swept:
        return []
    ok_runs = [run for run in table.runs if run.status == "ok"]
    accuracy = any(not math.isnan(run.value("test_acc")) for run in ok_runs)
    stem, title = ("test_acc", "test accuracy") if accuracy else ("test_per", "test phone error rate")
    groups = [
        key
        for key in table.swept
        if key not in (TRAINABLE_STFT, TRAINABLE_MEL)
        and any(sort_key(run.overrides[key])[0] for run in table.runs)
    ]
    pooled: dict[tuple[str, ...], dict[str, list[float]]] = {}
    for run in table.runs:
        if run.status == "ok":
            by_setting = pooled.setdefault(tuple(run.overrides[key] for key in groups), {})
            by_setting.setdefault(setting_letter(run.overrides), []).append(run.value(stem))
    clips = table.split_size("test") if accuracy else None
    sentences = []
    for group in sorted(pooled):
        accuracies = pooled[group]
        if "A" not in accuracies:
            continue
        base = accuracies["A"]
        parts = []
        for letter in sorted(set(accuracies) - {"A"}):
            values = accuracies[letter]
            difference = statistics.fmean(values) - statistics.fmean(base)
            error = math.sqrt(
                statistics.variance(values) / len(values) + statistics.variance(base) / len(base)
            )
            verdict = "beyond noise" if abs(difference) > 2 * error else "within noise"
            in_clips = f", {difference * clips:+.1f} clips" if clips else ""
            parts.append(
                f"{letter} {difference:+.4f}{in_clips} ({verdict}: 2 standard errors = {2 * error:.4f})"
            )
        scope = ", ".join(f"`{key}={value}`" for key, value in zip(groups, group, strict=True)) or "All runs"
        sentences.append(
            f"{scope}: {title} over every n_mels and seed, setting A {statistics.fmean(base):.4f} "
            f"({len(base)} runs); against A: " + "; ".join(parts) + "."
        )
    return sentences
