"""The frontend contract of ``src/frontends/base.py``, for every config of the ``frontend`` group:
``forward(waveforms (batch, time), lengths (batch,) | None) -> (features (batch, out_features, frames),
frame_lengths (batch,) int64)``, and the optional hooks' documented defaults."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from src.frontends import MFCC, LogMelFilterBanks, TrainableLogMel
from src.frontends.base import Frontend
from src.frontends.standardization import FeatureStandardizer
from src.frontends.stft import StftAnalysis
from tests.conftest import CONFIG_DIR, choices
from tests.frontends.test_log_mel import speech_like_signal

SAMPLE_RATE = 16000
# Real samples per example of a padded batch of 16000 samples: full, partial, and very short.
SAMPLE_LENGTHS = [SAMPLE_RATE, 12345, 100]
FRONTENDS = choices("frontend")
# The mel-based frontends (hop 160 by default, a sample rate, a `center` switch); frontend=stft's own
# settings are tested in tests/denoising/test_stft_frontend.py.
MEL_FRONTENDS = [name for name in FRONTENDS if name != "stft"]
# Samples between frames of each config's defaults.
HOPS = {"logmel": 160, "mfcc": 160, "trainable": 160, "trainable_a": 160, "trainable_d": 160, "stft": 512}
# (trainable_stft, trainable_mel) -> the trainable-frontend study's setting letter.
SETTING_LETTERS = {(False, False): "A", (False, True): "B", (True, False): "C", (True, True): "D"}


def frontend_file(name: str) -> DictConfig:
    """``conf/frontend/<name>.yaml`` with the frontend files it extends merged in."""
    config = OmegaConf.load(CONFIG_DIR / "frontend" / f"{name}.yaml")
    for parent in config.pop("defaults", []):
        config = OmegaConf.merge(frontend_file(parent), config)
    return config


def frontend_from_config(name: str, sample_rate: int = SAMPLE_RATE, **overrides: object) -> Frontend:
    """``conf/frontend/<name>.yaml`` instantiated, with ``sample_rate`` (``${data.sample_rate}`` in a run)
    set explicitly."""
    config = frontend_file(name)
    if "sample_rate" in config:  # frontend=stft has none
        config.sample_rate = sample_rate
    for key, value in overrides.items():
        config[key] = value
    return instantiate(config)


def padded_batch(lengths: list[int], time: int = SAMPLE_RATE) -> tuple[Tensor, Tensor]:
    """``(len(lengths), time)`` speech-like clips, each zero after its ``lengths[i]`` samples."""
    waveforms = torch.cat([speech_like_signal(time, seed=seed) for seed in range(len(lengths))])
    lengths_tensor = torch.tensor(lengths)
    return waveforms * (torch.arange(time) < lengths_tensor[:, None]), lengths_tensor


def test_the_group_holds_the_four_frontends_and_settings_a_and_d() -> None:
    assert FRONTENDS == ["logmel", "mfcc", "stft", "trainable", "trainable_a", "trainable_d"] == sorted(HOPS)
    types = {name: type(frontend_from_config(name)) for name in FRONTENDS}
    trainable = dict.fromkeys(("trainable", "trainable_a", "trainable_d"), TrainableLogMel)
    assert types == {"logmel": LogMelFilterBanks, "mfcc": MFCC, "stft": StftAnalysis, **trainable}
    settings = {name: frontend_from_config(name).setting_name() for name in ("trainable_a", "trainable_d")}
    assert settings == {"trainable_a": "A", "trainable_d": "D"}


@pytest.mark.parametrize("name", FRONTENDS)
def test_every_config_returns_features_and_frame_lengths(name: str) -> None:
    frontend = frontend_from_config(name)
    waveforms, lengths = padded_batch(SAMPLE_LENGTHS)

    features, frame_lengths = frontend(waveforms, lengths)

    assert isinstance(frontend, Frontend)
    hop = HOPS[name]
    frames = frontend.num_frames(SAMPLE_RATE)
    assert frames == 1 + SAMPLE_RATE // hop  # centred: 101 at hop 160
    assert features.shape == (3, frontend.out_features, frames)
    assert features.dtype == torch.float32 and features.isfinite().all()
    assert frame_lengths.shape == (3,) and frame_lengths.dtype == torch.int64
    assert frame_lengths.tolist() == [frames, 1 + 12345 // hop, 1 + 100 // hop]
    assert torch.equal(frame_lengths, frontend.num_frames(lengths))
    assert torch.equal(features, frontend.features(waveforms))  # forward adds lengths, nothing else


@pytest.mark.parametrize("name", FRONTENDS)
def test_lengths_none_means_every_frame_is_real(name: str) -> None:
    frontend = frontend_from_config(name)
    waveforms, _ = padded_batch(SAMPLE_LENGTHS)

    features, frame_lengths = frontend(waveforms)

    assert frame_lengths.dtype == torch.int64
    assert frame_lengths.tolist() == [features.shape[-1]] * 3 == [1 + SAMPLE_RATE // HOPS[name]] * 3
    assert torch.equal(frontend(waveforms, None)[1], frame_lengths)


@pytest.mark.parametrize("name", MEL_FRONTENDS)
def test_frame_lengths_are_clamped_to_at_least_one_and_at_most_the_frames(name: str) -> None:
    # Not centred, a clip shorter than n_fft has num_frames <= 0; lengths beyond the batch's time (which
    # real batches never have) would give more frames than there are.
    frontend = frontend_from_config(name, center=False)
    waveforms, _ = padded_batch([SAMPLE_RATE, 300])
    lengths = torch.tensor([SAMPLE_RATE + 1600, 300], dtype=torch.int32)
    frames = 1 + (SAMPLE_RATE - 400) // 160

    features, frame_lengths = frontend(waveforms, lengths)

    assert features.shape[-1] == frames == 98
    assert frontend.num_frames(lengths).tolist() == [108, 0]
    assert frame_lengths.tolist() == [frames, 1]
    assert frame_lengths.dtype == torch.int64  # whatever integer type the lengths came in


@pytest.mark.parametrize("name", MEL_FRONTENDS)
def test_frame_lengths_follow_the_sample_rate_and_hop(name: str) -> None:
    frontend = frontend_from_config(name, sample_rate=8000, n_fft=256, hop_length=80)
    waveforms, lengths = padded_batch([8000, 4000, 81], time=8000)

    features, frame_lengths = frontend(waveforms, lengths)

    assert features.shape == (3, frontend.out_features, 101)
    assert frame_lengths.tolist() == [101, 51, 2]


@pytest.mark.parametrize("name", ["logmel", "mfcc"])
def test_fixed_frontends_have_the_default_hooks(name: str) -> None:
    frontend = frontend_from_config(name)
    before = {key: tensor.clone() for key, tensor in frontend.state_dict().items()}

    assert frontend.constrain_() is None
    assert all(torch.equal(tensor, before[key]) for key, tensor in frontend.state_dict().items())
    assert frontend.trainable_filters() is None
    assert frontend.filter_distance() == {}
    assert frontend.setting_name() is None
    assert frontend.analytic_macs(SAMPLE_RATE) == LogMelFilterBanks(n_mels=40).analytic_macs(SAMPLE_RATE) > 0


def test_the_base_class_defaults() -> None:
    class Halves(Frontend):
        """Two features per pair of samples: ``(batch, time) -> (batch, 2, time // 2)``."""

        out_features = 2

        def features(self, waveforms: Tensor) -> Tensor:
            return waveforms[:, : waveforms.shape[1] // 2 * 2].reshape(len(waveforms), -1, 2).transpose(1, 2)

        def num_frames(self, num_samples: int | Tensor) -> int | Tensor:
            return num_samples // 2

    frontend = Halves()
    features, lengths = frontend(torch.ones(2, 9), torch.tensor([9, 1]))

    assert features.shape == (2, 2, 4) and lengths.tolist() == [4, 1]
    assert frontend.constrain_() is None
    assert frontend.analytic_macs(SAMPLE_RATE) == 0
    assert frontend.trainable_filters() is None
    assert frontend.filter_distance() == {}
    assert frontend.setting_name() is None
    with pytest.raises(NotImplementedError):
        Frontend().features(torch.ones(1, 9))
    with pytest.raises(NotImplementedError):
        Frontend().num_frames(9)


@pytest.mark.parametrize(
    ("flags", "letter"), list(SETTING_LETTERS.items()), ids=list(SETTING_LETTERS.values())
)
def test_trainable_frontend_names_its_setting_and_exposes_its_filters(
    flags: tuple[bool, bool], letter: str
) -> None:
    trainable_stft, trainable_mel = flags
    frontend = frontend_from_config("trainable", trainable_stft=trainable_stft, trainable_mel=trainable_mel)

    assert frontend.setting_name() == letter
    mel_filters, stft_kernels = frontend.trainable_filters()
    assert mel_filters.shape == (201, 40) and stft_kernels.shape == (201, 400)
    assert torch.equal(mel_filters, frontend.mel_fbanks_init)
    assert torch.equal(stft_kernels, frontend.stft_real_init)
    assert frontend.filter_distance() == {"mel": 0.0, "stft": 0.0}


def test_feature_standardizer_fits_on_the_frontend_output_and_ignores_padding() -> None:
    frontend = frontend_from_config("logmel")
    batches = [padded_batch(SAMPLE_LENGTHS), padded_batch([8000, SAMPLE_RATE])]
    outputs = [frontend(waveforms, lengths) for waveforms, lengths in batches]
    standardizer = FeatureStandardizer(frontend.out_features)

    standardizer.fit(outputs)  # the (features, frame_lengths) tuples, as they come

    def real_frames(outputs: list[tuple[Tensor, Tensor]]) -> Tensor:
        """``(features, real frames of every example)`` in float64."""
        return torch.cat(
            [features[i, :, :n] for features, lengths in outputs for i, n in enumerate(lengths.tolist())],
            dim=1,
        ).double()

    real = real_frames(outputs)
    assert int(standardizer.frames_seen) == real.shape[1] == 101 + 78 + 1 + 51 + 101
    torch.testing.assert_close(standardizer.mean, real.mean(dim=1).float(), rtol=0, atol=1e-5)
    torch.testing.assert_close(standardizer.std, real.std(dim=1, correction=0).float(), rtol=1e-5, atol=0)
    # the padding (log of the offset, about -13.8) would pull the mean far down if it were counted
    padded_mean = torch.cat([features.flatten(1, 2) for features, _ in outputs]).mean()
    assert float(standardizer.mean.mean()) - float(padded_mean) > 1.0

    standardized = [(standardizer(features), lengths) for features, lengths in outputs]
    assert all(new.shape == old.shape for (new, _), (old, _) in zip(standardized, outputs, strict=True))
    real = real_frames(standardized)
    torch.testing.assert_close(real.mean(dim=1), torch.zeros(40, dtype=torch.float64), rtol=0, atol=1e-4)
    torch.testing.assert_close(
        real.std(dim=1, correction=0), torch.ones(40, dtype=torch.float64), rtol=1e-4, atol=0
    )
