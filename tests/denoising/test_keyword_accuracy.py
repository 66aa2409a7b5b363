"""Keyword accuracy with and without a denoiser in front: the table, the test clips it counts, the noise
it mixes, and the checkpoint pairs it refuses."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from src.callbacks.run_config import load_run_config
from src.data.common.audio import read_clip
from src.data.speech_commands.splits import SILENCE_LABEL
from src.denoising import keyword_accuracy as module
from src.denoising.classical import BASELINES
from src.denoising.keyword_accuracy import (
    Settings,
    evaluation_noise,
    evaluation_noise_bank,
    keyword_accuracy,
    mix_clips,
    speech_test_clips,
)
from src.training import train
from tests.conftest import ONE_BATCH_FIT, compose_config, tiny_data_overrides


@pytest.fixture(scope="session")
def kws12_checkpoint(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """``last.ckpt`` of one batch of training of ``data=kws12`` (log-mel, Conv1d CNN) on the tiny
    generated corpus."""
    root = tmp_path_factory.mktemp("kws12_checkpoint")
    overrides = [f"paths.root_dir={root}", f"paths.output_dir={root / 'run'}", "trainer=cpu", "data=kws12"]
    summary = train(
        compose_config("config", [*overrides, *tiny_data_overrides(overrides, request), *ONE_BATCH_FIT])
    )
    return Path(summary["last_checkpoint"])


@pytest.fixture(scope="session")
def kws12_test_split(kws12_checkpoint: Path):
    """The kws12 checkpoint's data module, set up for its test split."""
    datamodule = instantiate(load_run_config(kws12_checkpoint).data, _convert_="all")
    datamodule.setup("test")
    return datamodule


def measure(kws: Path, denoiser: Path, output_dir: Path, *overrides: str) -> dict:
    """:func:`keyword_accuracy` of the pair with ``overrides``, writing into ``output_dir``."""
    config = [f"kws_ckpt={kws}", f"denoiser_ckpt={denoiser}", f"paths.output_dir={output_dir}", *overrides]
    return keyword_accuracy(compose_config("keyword_accuracy", config))


def test_the_table_has_every_snr_and_front_end_over_the_speech_clips_of_the_test_split(
    kws12_checkpoint: Path, denoising_checkpoint: Path, kws12_test_split, tmp_path: Path
) -> None:
    summary = measure(kws12_checkpoint, denoising_checkpoint, tmp_path / "a")
    assert json.loads((tmp_path / "a" / "keyword_accuracy.json").read_text()) == summary
    assert [row["input"] for row in summary["rows"]] == ["clean", "0 dB", "5 dB", "10 dB"]
    assert summary["conditions"] == ["noisy", "denoised", *BASELINES]
    for row in summary["rows"]:
        assert set(row["accuracy"]) == set(summary["conditions"])
        assert all(0.0 <= value <= 1.0 for value in row["accuracy"].values())
    labels = kws12_test_split.labels("test")
    silence = kws12_test_split.class_names.index(SILENCE_LABEL)
    assert summary["silence_clips_left_out"] == labels.count(silence) > 0
    assert summary["test_clips"] == len(labels) - labels.count(silence) > 0
    assert summary["noise"]["kinds"] == ["brown", "pink", "white", "babble"]
    table = (tmp_path / "a" / "keyword_accuracy.md").read_text()
    assert table.startswith("Keyword accuracy with and without a denoiser in front (generated corpus: synth")
    assert "\n| input SNR | noisy | denoised | spectral_subtraction | wiener |\n" in table
    for name in ("| clean |", "| 0 dB |", "| 5 dB |", "| 10 dB |", f"{summary['test_clips']} test clips"):
        assert name in table
    # the same seed draws the same noise: the 0 dB row again, measured alone
    again = measure(kws12_checkpoint, denoising_checkpoint, tmp_path / "b", "snr_db=[0]")
    assert [row["input"] for row in again["rows"]] == ["clean", "0 dB"]
    assert again["rows"] == summary["rows"][:2]


def test_the_noise_is_fixed_by_the_seed_and_mixed_at_the_snr_over_each_true_length(kws12_test_split) -> None:
    clips = speech_test_clips(kws12_test_split, kws12_test_split.class_names)
    settings = Settings(snr_db=[5.0], batch_size=8, babble_talkers=3, synthetic_noise_seconds=2.0, seed=0)
    noisy = mix_clips(clips, *evaluation_noise_bank(clips, None, 16000, settings), 5.0)
    assert torch.equal(noisy, mix_clips(clips, *evaluation_noise_bank(clips, None, 16000, settings), 5.0))
    other = dataclasses.replace(settings, seed=1)
    assert not torch.equal(noisy, mix_clips(clips, *evaluation_noise_bank(clips, None, 16000, other), 5.0))
    for index, length in enumerate(clips.lengths.tolist()):
        clean, mixed = clips.waveforms[index, :length], noisy[index, :length]
        snr = 10 * torch.log10(clean.pow(2).sum() / (mixed - clean).pow(2).sum())
        assert snr.item() == pytest.approx(5.0, abs=1e-3)
        assert not noisy[index, length:].any()


def test_recorded_noise_is_the_test_region_of_each_recording(tiny_corpus_root: Path, tmp_path: Path) -> None:
    noise_dir = tiny_corpus_root / "SpeechCommands" / "speech_commands_v0.02" / "_background_noise_"
    recordings = evaluation_noise(noise_dir, 16000, 30.0, torch.Generator().manual_seed(0))
    paths = sorted(noise_dir.glob("*.wav"))
    assert list(recordings) == ["recorded"] and len(recordings["recorded"]) == len(paths) > 0
    for path, cut in zip(paths, recordings["recorded"], strict=True):
        whole = read_clip(path, 16000)
        assert torch.equal(cut, whole[round(len(whole) * 0.9) :]) and 0 < len(cut) < 0.11 * len(whole)
    with pytest.raises(FileNotFoundError, match=r"noise_dir=.* holds no .wav recordings.*noise_dir=null"):
        evaluation_noise(tmp_path, 16000, 30.0, torch.Generator())


def test_pairs_of_the_wrong_task_or_sample_rate_and_bad_settings_are_refused(
    kws12_checkpoint: Path, denoising_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match=r"kws_ckpt=.*DenoisingTask checkpoint.*not a keyword classifier"):
        measure(denoising_checkpoint, denoising_checkpoint, tmp_path)
    with pytest.raises(ValueError, match=r"denoiser_ckpt=.*ClassificationTask checkpoint, not a denoiser"):
        measure(kws12_checkpoint, kws12_checkpoint, tmp_path)
    with pytest.raises(ValueError, match=r"snr_db must list input SNRs"):
        measure(kws12_checkpoint, denoising_checkpoint, tmp_path, "snr_db=[]")
    load_denoiser = module.load_denoiser

    def at_8khz(ckpt_path: Path, **keys: str):
        loaded = load_denoiser(ckpt_path, **keys)
        loaded.task.sample_rate = 8000
        return loaded

    monkeypatch.setattr(module, "load_denoiser", at_8khz)
    with pytest.raises(
        ValueError, match=r"denoiser_ckpt: .*8000 Hz.*16000 Hz.*data.speech.sample_rate=16000"
    ):
        measure(kws12_checkpoint, denoising_checkpoint, tmp_path)
    assert not list(tmp_path.iterdir())  # refused before anything is written
