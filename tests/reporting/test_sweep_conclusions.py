"""Conclusions are computed from the table: rankings in the metric's direction against seed spread,
settings against the first, scaling along an axis."""

from __future__ import annotations

from pathlib import Path

from src.reporting.sweep_conclusions import (
    ranking_conclusions,
    scaling_conclusions,
    settings_conclusions,
)
from src.reporting.sweep_table import aggregate_sweep
from tests.reporting.sweep_folders import CLASSIFICATION, PHONE_RECOGNITION, job_summary, write_job


def write_groups_sweep(
    sweep: Path,
    scores: dict[int, tuple[float, float]],
    times: dict[int, float],
    scoring: dict[str, str] = CLASSIFICATION,
) -> None:
    """groups g with two seeds of the given test (and best validation) scores; MACs fall as 1/g, epoch
    time as given."""
    num = 0
    for groups, seed_scores in scores.items():
        for seed, score in enumerate(seed_scores, start=1):
            summary = job_summary(
                score,
                best_value=score,
                epoch_times=(times[groups] - 0.01, times[groups] + 0.01),
                backbone_params=8000 // groups,
                backbone_macs=800_000 // groups,
                scoring=scoring,
            )
            write_job(sweep, num, [f"model.groups={groups}", f"seed={seed}"], summary)
            num += 1


def test_a_lead_within_seed_noise_is_called_so(tmp_path: Path) -> None:
    write_groups_sweep(tmp_path, {1: (0.90, 0.80), 2: (0.86, 0.82)}, {1: 1.0, 2: 0.9})
    sentences = ranking_conclusions(aggregate_sweep("s", [tmp_path]))
    assert sentences[1].startswith(
        "By test accuracy (higher is better, 40 clips), `model.groups=1` is first with 0.8500, 0.0100 "
        "(0.4 clips) ahead of `model.groups=2`"
    )
    assert (
        "Noise level: 0.0495, the larger of the mean seed-to-seed std (0.0495) and one clip (0.0250)"
        in sentences[1]
    )
    assert sentences[1].endswith("this sweep does not separate the configurations.")


def test_a_lead_beyond_seed_noise_is_quantified(tmp_path: Path) -> None:
    write_groups_sweep(tmp_path, {1: (0.90, 0.92), 2: (0.70, 0.72)}, {1: 1.0, 2: 0.9})
    sentences = ranking_conclusions(aggregate_sweep("s", [tmp_path]))
    assert (
        "Noise level: 0.0250, the larger of the mean seed-to-seed std (0.0141) and one clip (0.0250)"
        in sentences[1]
    )
    assert sentences[1].endswith("The lead is 8.0x the noise level.")


def test_a_phone_error_rate_ranks_lowest_first_without_clips(tmp_path: Path) -> None:
    write_groups_sweep(tmp_path, {1: (0.40, 0.42), 2: (0.20, 0.22)}, {1: 1.0, 2: 0.9}, PHONE_RECOGNITION)
    best_val, test = ranking_conclusions(aggregate_sweep("s", [tmp_path]))
    assert best_val.startswith(
        "By best validation phone error rate (lower is better), `model.groups=2` is first with 0.2100, "
        "0.2000 ahead of `model.groups=1`"
    )
    assert test.startswith(
        "By test phone error rate (lower is better), `model.groups=2` is first with 0.2100"
    )
    assert "Noise level: 0.0141, the mean seed-to-seed std." in test
    assert test.endswith("The lead is 14.1x the noise level.")
    assert "clips" not in best_val + test


def test_scaling_names_where_time_stops_falling_although_macs_fall(tmp_path: Path) -> None:
    write_groups_sweep(
        tmp_path,
        {g: (0.9, 0.9) for g in (1, 2, 4, 8)},
        {1: 1.0, 2: 0.7, 4: 0.6, 8: 0.605},
    )
    sentences = scaling_conclusions(aggregate_sweep("s", [tmp_path]), "model.groups")
    assert sentences[0].startswith(
        "From `model.groups=1` to `model.groups=8`: parameters 8,000 → 1,000 (0.12x)"
    )
    assert "epoch time 1.000 s → 0.605 s (0.60x)" in sentences[0]
    assert sentences[1].startswith("Epoch time stops falling at `model.groups=4`: going to `model.groups=8`")


def test_scaling_says_when_time_keeps_falling(tmp_path: Path) -> None:
    write_groups_sweep(tmp_path, {g: (0.9, 0.9) for g in (1, 2, 4)}, {1: 1.0, 2: 0.7, 4: 0.5})
    sentences = scaling_conclusions(aggregate_sweep("s", [tmp_path]), "model.groups")
    assert sentences[1] == "Epoch time falls at every step where MACs fall by more than 5%."


def write_settings_sweep(
    sweep: Path, scores: dict[str, tuple[float, float]], scoring: dict[str, str] = CLASSIFICATION
) -> None:
    """Settings (as metrics.json names them) of model=linear with two seeds each (seed 1 with 20 mels,
    seed 2 with 40), and model=other with setting C only; each setting's trainable flags as overrides."""
    flags = {"A": ("false", "false"), "B": ("false", "true"), "C": ("true", "false")}
    num = 0
    for setting, seed_scores in scores.items():
        stft, mel = flags[setting]
        for seed, value in enumerate(seed_scores, start=1):
            overrides = [f"frontend.trainable_stft={stft}", f"frontend.trainable_mel={mel}", f"seed={seed}"]
            summary = job_summary(value, scoring=scoring, frontend_setting=setting)
            n_mels = f"frontend.n_mels={20 * seed}"
            write_job(sweep, num, ["model=linear", n_mels, *overrides], summary)
            num += 1
    overrides = ["frontend.trainable_stft=true", "frontend.trainable_mel=false", "seed=1"]
    summary = job_summary(0.5, scoring=scoring, frontend_setting="C")
    write_job(sweep, num, ["model=other", "frontend.n_mels=20", *overrides], summary)


def test_settings_are_compared_with_setting_a_per_model(tmp_path: Path) -> None:
    write_settings_sweep(tmp_path, {"A": (0.90, 0.92), "B": (0.80, 0.82), "C": (0.90, 0.94)})
    (sentence,) = settings_conclusions(aggregate_sweep("s", [tmp_path]))  # model=other has no setting A
    assert sentence.startswith(
        "`model=linear`: test accuracy over every n_mels and seed, setting A 0.9100 (2 runs); against A "
        "(higher is better): "
    )
    assert "B -0.1000, -4.0 clips (worse, beyond noise: 2 standard errors = 0.0283)" in sentence
    assert "C +0.0100, +0.4 clips (within noise: 2 standard errors = 0.0447)" in sentence


def test_a_lower_phone_error_rate_than_setting_a_is_better(tmp_path: Path) -> None:
    write_settings_sweep(tmp_path, {"A": (0.30, 0.32), "B": (0.20, 0.22)}, PHONE_RECOGNITION)
    (sentence,) = settings_conclusions(aggregate_sweep("s", [tmp_path]))
    assert sentence.startswith(
        "`model=linear`: test phone error rate over every n_mels and seed, setting A 0.3100 (2 runs); "
        "against A (lower is better): B -0.1000 (better, beyond noise"
    )


def test_no_settings_no_settings_conclusions(tmp_path: Path) -> None:
    write_groups_sweep(tmp_path, {1: (0.90, 0.92), 2: (0.70, 0.72)}, {1: 1.0, 2: 0.9})
    assert settings_conclusions(aggregate_sweep("s", [tmp_path])) == []
