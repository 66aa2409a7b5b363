"""LogMelFilterBanks against torchaudio's MelSpectrogram, at torch's default allclose tolerances.

The computation under test is ``features(x)``; ``forward`` (the frontend contract, tested in
``test_base.py``) returns it with the frame lengths, and ``frontend(x)[0]`` is the same tensor.
"""

from __future__ import annotations

import math
from pathlib import Path

import ptflops
import pytest
import soundfile as sf
import torch
import torchaudio

from src.frontends import LogMelFilterBanks
from tests.conftest import REAL_SAMPLE, requires_real_sample

SAMPLE_RATE = 16000


def speech_like_signal(num_samples: int = SAMPLE_RATE, seed: int = 0) -> torch.Tensor:
    """A voiced, speech-like 16 kHz clip of shape ``(1, num_samples)``.

    Harmonics of a gliding 110-220 Hz fundamental, shaped by three formant-like resonances, under a
    syllable-like amplitude envelope with near-silent edges, plus faint white noise.
    """
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(num_samples, dtype=torch.float64) / SAMPLE_RATE
    duration = num_samples / SAMPLE_RATE
    f0 = 110.0 + 110.0 * t / duration
    phase = 2 * math.pi * torch.cumsum(f0, dim=0) / SAMPLE_RATE
    voiced = torch.zeros_like(t)
    for harmonic in range(1, 30):
        frequency = harmonic * f0
        envelope = sum(
            gain * torch.exp(-(((frequency - centre) / width) ** 2))
            for centre, width, gain in ((700.0, 150.0, 1.0), (1200.0, 200.0, 0.5), (2600.0, 300.0, 0.25))
        )
        voiced += envelope * torch.sin(harmonic * phase) * (frequency < SAMPLE_RATE / 2)
    syllable = torch.sin(math.pi * t / duration) ** 4
    noise = 1e-3 * torch.randn(num_samples, generator=generator, dtype=torch.float64)
    signal = 0.3 * syllable * voiced / voiced.abs().max() + noise
    return signal.to(torch.float32).unsqueeze(0)


def torchaudio_log_mel(signal: torch.Tensor, **kwargs: object) -> torch.Tensor:
    """The reference: ``(batch, time) -> (batch, n_mels, frames)``."""
    return torch.log(torchaudio.transforms.MelSpectrogram(**kwargs)(signal) + 1e-6)


@pytest.mark.parametrize("num_samples", [SAMPLE_RATE, 12345])
def test_seed_snippet_matches_torchaudio(num_samples: int) -> None:
    signal = speech_like_signal(num_samples)

    melspec = torchaudio.transforms.MelSpectrogram(hop_length=160, n_mels=80)(signal)
    logmelbanks, lengths = LogMelFilterBanks()(signal)
    assert lengths.tolist() == [logmelbanks.shape[-1]]
    assert torch.log(melspec + 1e-6).shape == logmelbanks.shape
    assert torch.allclose(torch.log(melspec + 1e-6), logmelbanks)


@requires_real_sample
def test_real_speech_commands_clips_match_torchaudio() -> None:
    # one folder per word; folders starting with "_" hold long background-noise recordings, not clips
    clips = sorted(p for p in REAL_SAMPLE.glob("*/*.wav") if not p.parent.name.startswith("_"))
    assert len(clips) == 300, "the shared sample holds 10 clips for each of 30 words"
    ours = LogMelFilterBanks()
    reference = torchaudio.transforms.MelSpectrogram(hop_length=160, n_mels=80)

    mismatches = []
    for clip in clips:
        audio, sample_rate = sf.read(clip, dtype="float32")
        assert sample_rate == SAMPLE_RATE, clip
        signal = torch.from_numpy(audio).unsqueeze(0)
        expected = torch.log(reference(signal) + 1e-6)
        actual = ours.features(signal)
        if expected.shape != actual.shape or not torch.allclose(expected, actual):
            mismatches.append(clip.relative_to(REAL_SAMPLE).as_posix())
    assert mismatches == []


@pytest.mark.parametrize(
    "config",
    [
        {"n_fft": 512, "hop_length": 128},
        {"n_fft": 1024, "win_length": 400, "hop_length": 160},
        {"n_fft": 400, "hop_length": None},
        {"n_mels": 40, "f_min": 20.0, "f_max": 7600.0},
        {"norm": "slaney"},
        {"mel_scale": "slaney"},
        {"norm": "slaney", "mel_scale": "slaney", "n_mels": 64},
        {"power": 1.0},
        {"power": 1.5},
        {"n_fft": 256, "hop_length": 64, "n_mels": 40, "center": False},
        {"pad_mode": "constant"},
        {"sample_rate": 8000, "n_fft": 256, "hop_length": 80, "n_mels": 40},
    ],
    ids=lambda config: ",".join(f"{key}={value}" for key, value in config.items()),
)
def test_configurations_match_torchaudio(config: dict[str, object]) -> None:
    config = {"hop_length": 160, "n_mels": 80, **config}
    signal = speech_like_signal()
    frontend = LogMelFilterBanks(**config)

    expected = torchaudio_log_mel(signal, **config)
    actual = frontend.features(signal)

    assert actual.shape == expected.shape == (1, frontend.n_mels, frontend.num_frames(signal.shape[-1]))
    assert torch.allclose(expected, actual)


def test_batch_matches_rows_and_torchaudio() -> None:
    batch = torch.cat([speech_like_signal(seed=seed) * (seed + 1) for seed in range(4)])
    frontend = LogMelFilterBanks()

    actual = frontend.features(batch)

    assert actual.shape == (4, 80, 101)
    for row in range(batch.shape[0]):
        assert torch.allclose(actual[row], frontend.features(batch[row : row + 1])[0])
    assert torch.allclose(actual, torchaudio_log_mel(batch, hop_length=160, n_mels=80))


def test_gradient_matches_torchaudio() -> None:
    ours_input = speech_like_signal().requires_grad_()
    reference_input = ours_input.detach().clone().requires_grad_()

    LogMelFilterBanks()(ours_input)[0].sum().backward()
    torchaudio_log_mel(reference_input, hop_length=160, n_mels=80).sum().backward()

    assert torch.allclose(ours_input.grad, reference_input.grad)


def test_rejects_waveform_without_batch_dimension() -> None:
    with pytest.raises(ValueError, match=r"\(batch, time\)"):
        LogMelFilterBanks()(torch.zeros(SAMPLE_RATE))
    with pytest.raises(ValueError, match=r"\(batch, time\)"):
        LogMelFilterBanks().features(torch.zeros(SAMPLE_RATE))


def test_window_and_filterbank_are_buffers() -> None:
    frontend = LogMelFilterBanks(n_fft=512, win_length=400, n_mels=40)

    assert list(frontend.parameters()) == []
    state = frontend.state_dict()
    assert state["window"].shape == (400,)
    assert state["mel_fbanks"].shape == (257, 40)

    frontend.to(torch.float64)
    assert frontend.window.dtype == frontend.mel_fbanks.dtype == torch.float64
    frontend.to("meta")
    assert frontend.window.device.type == frontend.mel_fbanks.device.type == "meta"


@pytest.mark.parametrize("n_mels", [40, 80])
def test_out_features_is_the_feature_dimension(n_mels: int) -> None:
    frontend = LogMelFilterBanks(n_mels=n_mels)

    assert frontend.out_features == n_mels
    assert frontend.features(speech_like_signal()).shape[1] == frontend.out_features


def test_ptflops_plus_analytic_macs_is_the_total() -> None:
    frontend = LogMelFilterBanks(n_fft=16, hop_length=4, n_mels=3)
    num_samples = 40
    frames = 1 + num_samples // 4  # centred: 11
    bins = 16 // 2 + 1  # 9
    mel_projection = frames * bins * 3  # 297, counted by ptflops as aten.mm
    # per frame: window 16 + FFT 16 * log2(16) = 64 + power 2 * 9 = 18 -> 98
    stft_and_power = frames * (16 + 16 * 4 + 2 * bins)  # 1078

    counted, params = ptflops.get_model_complexity_info(
        frontend, (num_samples,), backend="aten", as_strings=False, print_per_layer_stat=False
    )

    assert params == 0
    assert counted == mel_projection
    assert counted + frontend.analytic_macs(num_samples) == mel_projection + stft_and_power == 1375


def test_analytic_macs_counts_frames_without_centring() -> None:
    frontend = LogMelFilterBanks(n_fft=16, hop_length=4, n_mels=3, center=False)

    # 1 + (40 - 16) // 4 = 7 frames of 98 MACs
    assert frontend.analytic_macs(40) == 7 * 98


def test_too_many_mels_for_the_fft_size_is_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"n_mels=128 is too large for n_fft=400 .* 4 mel filters"):
        LogMelFilterBanks(n_mels=128)
    assert LogMelFilterBanks(n_mels=128, n_fft=1024).out_features == 128


def test_matches_torchaudio_on_generated_corpus_clips(tiny_corpus_root: Path) -> None:
    clips = sorted((tiny_corpus_root / "SpeechCommands" / "speech_commands_v0.02").glob("[a-z]*/*.wav"))
    assert len(clips) > 100
    frontend = LogMelFilterBanks()
    reference = torchaudio.transforms.MelSpectrogram(hop_length=160, n_mels=80)
    for clip in clips[::5]:
        samples, _ = sf.read(clip, dtype="float32")
        signal = torch.from_numpy(samples).unsqueeze(0)
        assert torch.allclose(torch.log(reference(signal) + 1e-6), frontend.features(signal)), clip.name
