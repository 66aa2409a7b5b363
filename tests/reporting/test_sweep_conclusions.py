"""Conclusions are computed from the table: rankings against seed spread, scaling along an axis."""

from __future__ import annotations

from pathlib import Path

from src.reporting.sweep_conclusions import accuracy_conclusions, scaling_conclusions, settings_conclusions
from src.reporting.sweep_table import aggregate_sweep
from tests.reporting.sweep_folders import job_summary, write_job


def write_groups_sweep(
    sweep: Path, accuracies: dict[int, tuple[float, float]], times: dict[int, float]
) -> None:
    """groups g with two seeds of the given test accuracies; MACs fall as 1/g, epoch time as given."""
    num = 0
    for groups, seed_accuracies in accuracies.items():
        for seed, accuracy in enumerate(seed_accuracies, start=1):
            summary = job_summary(
                accuracy,
                val_acc=accuracy,
                epoch_times=(times[groups] - 0.01, times[groups] + 0.01),
                backbone_params=8000 // groups,
                backbone_macs=800_000 // groups,
            )
            write_job(sweep, num, [f"model.groups={groups}", f"seed={seed}"], summary)
            num += 1


def test_a_lead_within_seed_noise_is_called_so(tmp_path: Path) -> None:
    write_groups_sweep(tmp_path, {1: (0.90, 0.80), 2: (0.86, 0.82)}, {1: 1.0, 2: 0.9})
    sentences = accuracy_conclusions(aggregate_sweep("s", [tmp_path]))
    assert sentences[1].startswith(
        "By test accuracy (40 clips), `model.groups=1` is first with 0.8500, 0.0100 (0.4 clips) ahead of "
        "`model.groups=2`"
    )
    assert (
        "Noise level: 0.0495, the larger of the mean seed-to-seed std (0.0495) and one clip (0.0250)"
        in sentences[1]
    )
    assert sentences[1].endswith("this sweep does not separate the configurations.")


def test_a_lead_beyond_seed_noise_is_quantified(tmp_path: Path) -> None:
    write_groups_sweep(tmp_path, {1: (0.90, 0.92), 2: (0.70, 0.72)}, {1: 1.0, 2: 0.9})
    sentences = accuracy_conclusions(aggregate_sweep("s", [tmp_path]))
    assert (
        "Noise level: 0.0250, the larger of the mean seed-to-seed std (0.0141) and one clip (0.0250)"
        in sentences[1]
    )
    assert sentences[1].endswith("The lead is 8.0x the noise level.")


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


def test_settings_are_compared_with_setting_a_per_model(tmp_path: Path) -> None:
    accuracy = {
        ("false", "false"): (0.90, 0.92),
        ("false", "true"): (0.80, 0.82),
        ("true", "false"): (0.90, 0.94),
    }
    num = 0
    for (stft, mel), seed_accuracies in accuracy.items():
        for seed, value in enumerate(seed_accuracies, start=1):
            flags = [f"frontend.trainable_stft={stft}", f"frontend.trainable_mel={mel}"]
            write_job(
                tmp_path,
                num,
                ["model=linear", "frontend.n_mels=20", *flags, f"seed={seed}"],
                job_summary(value),
            )
            num += 1
    write_job(tmp_path, num, ["model=other", "frontend.n_mels=20", *flags, "seed=1"], job_summary(0.5))
    (sentence,) = settings_conclusions(aggregate_sweep("s", [tmp_path]))  # model=other has no setting A
    assert sentence.startswith(
        "`model=linear`: test accuracy over every n_mels and seed, setting A 0.9100 (2 runs)"
    )
    assert "B -0.1000, -4.0 clips (beyond noise: 2 standard errors = 0.0283)" in sentence
    assert "C +0.0100, +0.4 clips (within noise: 2 standard errors = 0.0447)" in sentence
