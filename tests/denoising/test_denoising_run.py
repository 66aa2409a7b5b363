"""``python train.py data=denoising`` end to end on the tiny corpus: what its test reports and writes."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import soundfile as sf
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.denoising.classical import BASELINES
from src.training import build_task, train


def test_run_reports_improvement_per_input_snr_for_model_and_baselines(denoising_run: dict) -> None:
    metrics = denoising_run["metrics"]
    assert denoising_run["test_metric"] == "test/si_sdr_i"
    assert denoising_run["corpus_note"].startswith("generated corpus")
    for snr in (0, 5, 10, 15):
        for method in ("", *(f"{name}/" for name in BASELINES)):
            assert math.isfinite(metrics[f"test/{method}si_sdr_i@{snr}dB"])
            assert math.isfinite(metrics[f"test/{method}stoi_i@{snr}dB"])
        # the noisy input scores the SNR it was mixed at
        assert abs(metrics[f"test/noisy/snr@{snr}dB"] - snr) < 1e-3
    means = denoising_run["test_analysis"]["means"]
    assert means["model/si_sdr_i"] == pytest.approx(metrics["test/si_sdr_i"], abs=1e-3)  # float64 vs float32


def test_run_writes_scores_and_example_audio(denoising_run: dict) -> None:
    folder = Path(denoising_run["output_dir"]) / "denoising"
    with (folder / "scores.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == denoising_run["test_analysis"]["pairs"] == denoising_run["split_sizes"]["test"]
    assert len(rows) % 4 == 0  # every clean clip at each of the 4 SNRs
    assert {"file", "snr_db", "model/si_sdr", "noisy/pesq", "wiener/stoi"} <= set(rows[0])
    audio, rate = sf.read(folder / "example_0_enhanced.wav")
    assert rate == 16000 and len(audio) == 16000


def test_timit_utterances_of_every_length_are_denoised(make_config) -> None:
    overrides = ["data/speech=timit", "data.eval_clips=2", "data.babble_talkers=0", "model=tcn"]
    summary = train(
        make_config("data=denoising", *overrides)
    )  # the tiny test split has too few speakers for babble
    assert summary["status"] == "ok" and summary["split_sizes"]["test"] == 2 * 4
    assert math.isfinite(summary["metrics"]["test/si_sdr_i"])
    rows = list(csv.DictReader((Path(summary["output_dir"]) / "denoising" / "scores.csv").open()))
    assert all(row["file"].startswith("TEST/") for row in rows)


def test_tensorboard_gets_audio_and_spectrograms_of_fixed_examples(denoising_run: dict) -> None:
    audio: set[str] = set()
    images: set[str] = set()
    for events in (Path(denoising_run["output_dir"]) / "tensorboard").rglob("events.out.tfevents*"):
        accumulator = EventAccumulator(str(events), size_guidance={"audio": 0, "images": 0})
        accumulator.Reload()
        audio |= set(accumulator.Tags()["audio"])
        images |= set(accumulator.Tags()["images"])
    for stage in ("validation", "test"):
        assert {f"denoising/{stage}/example_0/{name}" for name in ("noisy", "clean", "enhanced")} <= audio
        assert f"denoising/{stage}/example_0" in images


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("frontend=logmel", "use frontend=stft"),
        ("frontend=mfcc", "use frontend=stft"),
        ("model=conv1d", "model=bigru"),
        ("data.train_snr_db=[15,0]", r"data\.train_snr_db=\[0,15\]"),
    ],
)
def test_configs_that_cannot_denoise_fail_before_training_naming_the_fix(
    make_config, override, message
) -> None:
    cfg = make_config("data=denoising", override)
    with pytest.raises((ValueError, InstantiationException), match=message):  # the data's, wrapped
        build_task(OmegaConf.to_container(cfg, resolve=True), instantiate(cfg.data, _convert_="all"))
