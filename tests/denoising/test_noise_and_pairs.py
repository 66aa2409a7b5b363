"""Noise for denoising pairs and the pairs the data module serves."""

from __future__ import annotations

import pytest
import soundfile as sf
import torch

from src.data.denoising.datamodule import DenoisingDataModule
from src.data.denoising.noise import BABBLE, NoiseBank, coloured_noise, mix_at_snr
from src.data.speech_commands.datamodule import SpeechCommandsDataModule
from tests.conftest import REAL_SAMPLE, TINY_CORPUS_SPEAKERS, requires_real_sample


def _spectral_slope(noise: torch.Tensor, sample_rate: int) -> float:
    """The slope of log power against log frequency above 50 Hz (dB per decade / 10)."""
    power = torch.fft.rfft(noise).abs().pow(2)
    frequencies = torch.fft.rfftfreq(len(noise), d=1 / sample_rate)
    keep = frequencies >= 50
    x, y = frequencies[keep].log10(), power[keep].log10()
    return float(((x - x.mean()) * (y - y.mean())).sum() / (x - x.mean()).pow(2).sum())


@pytest.mark.parametrize(("colour", "slope"), [("white", 0.0), ("pink", -1.0), ("brown", -2.0)])
def test_coloured_noise_has_unit_rms_its_spectral_slope_and_nothing_below_50_hz(colour, slope) -> None:
    noise = coloured_noise(colour, 32000, torch.Generator().manual_seed(0), sample_rate=16000)
    assert noise.pow(2).mean().sqrt() == pytest.approx(1.0, rel=1e-4)
    assert _spectral_slope(noise, 16000) == pytest.approx(slope, abs=0.1)
    power = torch.fft.rfft(noise).abs().pow(2)
    below = torch.fft.rfftfreq(32000, d=1 / 16000) < 50
    assert float(power[below].sum()) < 1e-6 * float(power.sum())  # no DC, no sub-audible drift
    assert abs(float(noise.mean())) < 1e-6


@pytest.mark.parametrize("snr_db", [0.0, 7.5, 15.0])
def test_mix_at_snr_gives_that_snr(snr_db: float) -> None:
    clean, noise = torch.randn(4000), 3 * torch.randn(4000)
    noisy = mix_at_snr(clean, noise, snr_db)
    measured = 10 * torch.log10(clean.pow(2).sum() / (noisy - clean).pow(2).sum())
    assert float(measured) == pytest.approx(snr_db, abs=1e-4)


def test_babble_never_uses_the_targets_speaker() -> None:
    speakers = ["a", "a", "b", "c", "a", "d"]
    bank = NoiseBank({}, 2, speakers, lambda index: torch.full((10,), float(index + 1)))
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        choice = bank.draw(0, 10, generator)
        assert choice.kind == BABBLE and len(set(choice.talkers)) == 2
        assert all(speakers[talker] != "a" for talker in choice.talkers)
    with pytest.raises(ValueError, match=r"data\.babble_talkers"):
        NoiseBank({}, 4, speakers, lambda index: torch.zeros(10))


@pytest.fixture(scope="module")
def pairs(tiny_corpus_root) -> DenoisingDataModule:
    speech = SpeechCommandsDataModule(
        root=tiny_corpus_root, words=["yes", "no"], generator={"num_speakers": TINY_CORPUS_SPEAKERS}
    )
    data = DenoisingDataModule(speech, eval_clips=3, batch_size=4)
    data.prepare_data()
    data.setup()
    return data


def test_evaluation_pairs_are_every_clip_at_every_snr_fixed_by_the_seed(pairs) -> None:
    files = pairs.files("test")
    assert len(files) == 3 * 4
    assert [name.split("@")[1].split("dB")[0] for name in files[:4]] == ["0", "5", "10", "15"]
    noisy, _, clean, snr = next(iter(pairs.test_dataloader()))
    again = next(iter(pairs.test_dataloader()))
    assert torch.equal(noisy, again[0]) and snr.tolist() == [0.0, 5.0, 10.0, 15.0]
    # the same clean clip and noise at four SNRs
    assert all(torch.equal(clean[0], clean[i]) for i in range(4))
    measured = 10 * torch.log10(clean.pow(2).sum(-1) / (noisy - clean).pow(2).sum(-1))
    assert torch.allclose(measured, snr, atol=1e-3)


def test_training_pairs_are_drawn_afresh_within_the_snr_range(pairs) -> None:
    dataset = pairs._dataset("train")
    torch.manual_seed(0)
    first = dataset[0]
    second = dataset[0]
    assert torch.equal(first[2], second[2]) and not torch.equal(first[0], second[0])
    assert 0 <= first[3] <= 15
    torch.manual_seed(0)
    assert torch.equal(dataset[0][0], first[0])  # the seed fixes the draws


def test_noise_of_the_splits_never_overlaps(pairs, tmp_path) -> None:
    synthetic = {split: pairs._recordings(split) for split in ("train", "val", "test")}
    assert not torch.equal(synthetic["train"]["pink"][0][:100], synthetic["test"]["pink"][0][:100])
    ramp = torch.arange(10000, dtype=torch.float32) / 10000
    sf.write(tmp_path / "ramp.wav", ramp.numpy(), pairs.sample_rate, subtype="FLOAT")
    pairs.noise_dir = tmp_path
    regions = {split: pairs._recordings(split)["recorded"][0] for split in ("train", "val", "test")}
    assert [len(regions[s]) for s in ("train", "val", "test")] == [8000, 1000, 1000]
    assert regions["train"].max() < regions["val"].min() and regions["val"].max() < regions["test"].min()


def test_a_noise_folder_without_recordings_is_refused(tiny_corpus_root, tmp_path) -> None:
    speech = SpeechCommandsDataModule(root=tiny_corpus_root, words=["yes"])
    with pytest.raises(FileNotFoundError, match=r"data\.noise_dir"):
        DenoisingDataModule(speech, noise_dir=tmp_path)._noise_paths()


def test_the_splits_share_no_speaker(pairs) -> None:
    speakers = {split: set(pairs.speech.speakers(split)) for split in ("train", "val", "test")}
    assert all(speakers.values())
    assert not speakers["train"] & speakers["val"] and not speakers["train"] & speakers["test"]
    assert not speakers["val"] & speakers["test"]


@requires_real_sample
def test_real_speech_and_real_noise_make_pairs_at_the_stated_snr(tmp_path) -> None:
    """The real Speech Commands sample's clips and its real ``_background_noise_`` recordings."""
    root = tmp_path / "real"
    (root / "SpeechCommands").mkdir(parents=True)
    (root / "SpeechCommands" / "speech_commands_v0.01").symlink_to(REAL_SAMPLE)
    words = sorted(p.name for p in REAL_SAMPLE.iterdir() if p.is_dir() and not p.name.startswith("_"))
    speech = SpeechCommandsDataModule(
        root=root, corpus="speechcommands", version="speech_commands_v0.01", words=words
    )
    data = DenoisingDataModule(speech, noise_dir=REAL_SAMPLE / "_background_noise_", eval_clips=None)
    data.prepare_data()
    data.setup("test")
    assert len(data.files("test")) == 4 * len(speech.files("test"))
    noisy, _, clean, snr = next(iter(data.test_dataloader()))
    measured = 10 * torch.log10(clean.pow(2).sum(-1) / (noisy - clean).pow(2).sum(-1))
    assert torch.allclose(measured, snr, atol=1e-3)
    assert "recorded" in data.files("test")[0] or "babble" in data.files("test")[0]
