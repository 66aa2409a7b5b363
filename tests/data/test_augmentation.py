"""Waveform augmentations: identity when off, the documented effect when on, reproducible, checked args."""

from __future__ import annotations

import math

import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from src.data.common.augmentation import (
    WaveformAugmentation,
    change_speed,
    mix_at_snr,
    time_shift,
)
from src.frontends.spec_augment import SpecAugment
from tests.conftest import choices, compose_config

SAMPLE_RATE = 16000
TIME = SAMPLE_RATE


def tone_batch(lengths: list[int], frequency: float = 500.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(batch, TIME)`` sine tones at different phases, each ``lengths[i]`` samples then zeros."""
    t = torch.arange(TIME) / SAMPLE_RATE
    waves = torch.stack([0.5 * torch.sin(2 * math.pi * frequency * t + i) for i in range(len(lengths))])
    lengths_tensor = torch.tensor(lengths)
    return waves * (torch.arange(TIME) < lengths_tensor[:, None]), lengths_tensor


def noise_recordings(seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [
        0.1 * torch.randn(3 * TIME, generator=generator),
        0.05 * torch.randn(2 * TIME, generator=generator),
    ]


def measured_snr_db(clean: torch.Tensor, noisy: torch.Tensor, length: int) -> float:
    clean = clean[:length].double()
    return 10 * math.log10(clean.square().sum() / (noisy[:length].double() - clean).square().sum())


def full_augmentation() -> WaveformAugmentation:
    augmentation = WaveformAugmentation(
        SAMPLE_RATE, time_shift_ms=100, noise_prob=0.8, speed_prob=1.0, speed_range=(0.9, 1.1)
    )
    augmentation.set_noise(noise_recordings())
    return augmentation


def test_off_by_default_and_in_eval_mode_is_the_identity() -> None:
    waves, lengths = tone_batch([TIME, 12000, 3000])
    off = WaveformAugmentation()
    assert not off.enabled
    out_waves, out_lengths = off(waves, lengths)
    assert out_waves is waves and out_lengths is lengths

    on = full_augmentation().eval()
    out_waves, out_lengths = on(waves.clone(), lengths.clone())
    assert torch.equal(out_waves, waves) and torch.equal(out_lengths, lengths)


@pytest.mark.parametrize(
    "settings", [{"time_shift_ms": 100}, {"noise_prob": 1.0}, {"speed_prob": 1.0, "speed_range": (1.05, 1.1)}]
)
def test_each_augmentation_changes_a_batch_and_keeps_its_shape(settings: dict) -> None:
    waves, lengths = tone_batch([TIME, 12000, 9000, 15000])
    augmentation = WaveformAugmentation(SAMPLE_RATE, **settings)
    augmentation.set_noise(noise_recordings())
    out_waves, out_lengths = augmentation(waves, lengths, generator=torch.Generator().manual_seed(0))
    assert out_waves.shape == waves.shape and out_waves.dtype == waves.dtype
    assert out_lengths.shape == lengths.shape and out_lengths.dtype == lengths.dtype
    assert not torch.equal(out_waves, waves)
    assert out_waves.isfinite().all()
    assert ((out_lengths >= 1) & (out_lengths <= TIME)).all()
    # The padding after each new length is zero.
    assert (out_waves[torch.arange(TIME) >= out_lengths[:, None]] == 0).all()


def test_time_shift_moves_an_impulse_by_the_shift() -> None:
    waves = torch.zeros(3, TIME)
    waves[:, 5000] = 1.0
    lengths = torch.tensor([8000, 8000, 8000])
    shifted, new_lengths = time_shift(waves, lengths, torch.tensor([37, -1600, 0]))
    assert shifted[0].nonzero().flatten().tolist() == [5037]
    assert shifted[1].nonzero().flatten().tolist() == [3400]
    assert torch.equal(shifted[2], waves[2])
    assert new_lengths.tolist() == [8037, 6400, 8000]
    # Shifted past either end: the content is dropped, the length stays within [1, TIME].
    gone, gone_lengths = time_shift(waves[:2], torch.tensor([TIME, 6000]), torch.tensor([12000, -7000]))
    assert not gone.any()
    assert gone_lengths.tolist() == [TIME, 1]


def test_random_time_shifts_stay_within_the_maximum_and_keep_the_content() -> None:
    waves = torch.zeros(64, TIME)
    waves[:, 8000] = 1.0
    waves[:, 8010] = -0.5
    lengths = torch.full((64,), TIME)
    augmentation = WaveformAugmentation(SAMPLE_RATE, time_shift_ms=10)  # up to 160 samples
    shifted, _ = augmentation(waves, lengths, generator=torch.Generator().manual_seed(1))
    positions = (shifted == 1.0).nonzero()[:, 1] - 8000
    assert len(positions) == 64  # every impulse survives, exactly once per clip
    assert positions.abs().max() <= 160
    assert len(positions.unique()) > 40  # shifts differ between clips
    assert torch.equal(shifted[torch.arange(64), positions + 8010], torch.full((64,), -0.5))
    assert (shifted != 0).sum() == 128


def test_mixing_hits_the_requested_snr() -> None:
    waves, lengths = tone_batch([TIME, 12000, 4000, 9000])
    noise = 0.3 * torch.randn(4, TIME, generator=torch.Generator().manual_seed(2))
    snr_db = torch.tensor([-5.0, 0.0, 12.5, 30.0])
    noisy = mix_at_snr(waves, lengths, noise, snr_db)
    for clean, mixed, length, target in zip(waves, noisy, lengths.tolist(), snr_db.tolist(), strict=True):
        assert measured_snr_db(clean, mixed, length) == pytest.approx(target, abs=0.01)
        assert not mixed[length:].any()


def test_noise_mixing_draws_snrs_in_range_and_windows_of_the_recordings() -> None:
    waves, lengths = tone_batch([TIME] * 32 + [10000] * 32)
    augmentation = WaveformAugmentation(SAMPLE_RATE, noise_prob=1.0, noise_snr_db=(7.5, 7.5))
    # A ramp, so each added window reveals where in the recording it starts.
    ramp = torch.arange(1, 5 * TIME + 1, dtype=torch.float32) / (5 * TIME)
    augmentation.set_noise([ramp])
    noisy, new_lengths = augmentation(waves, lengths, generator=torch.Generator().manual_seed(3))
    assert torch.equal(new_lengths, lengths)
    starts = []
    for clean, mixed, length in zip(waves, noisy, lengths.tolist(), strict=True):
        assert measured_snr_db(clean, mixed, length) == pytest.approx(7.5, abs=0.1)
        added = (mixed - clean)[:length].double()
        steps = torch.arange(length, dtype=torch.float64)
        design = torch.stack([steps, torch.ones_like(steps)], dim=1)
        slope, intercept = torch.linalg.lstsq(design, added[:, None]).solution.flatten()
        assert torch.allclose(added, slope * steps + intercept, rtol=1e-5, atol=1e-6)  # a straight line
        start = float(intercept / slope)  # ramp value at the window's first sample, in steps
        assert start == pytest.approx(round(start), abs=0.05)
        starts.append(round(start) - 1)
        assert 0 <= starts[-1] <= 4 * TIME
    assert len(set(starts)) == len(starts)  # random offsets

    ranged = WaveformAugmentation(SAMPLE_RATE, noise_prob=1.0, noise_snr_db=(0.0, 20.0))
    ranged.set_noise(noise_recordings())
    noisy, _ = ranged(waves, lengths, generator=torch.Generator().manual_seed(4))
    snrs = [measured_snr_db(c, m, n) for c, m, n in zip(waves, noisy, lengths.tolist(), strict=True)]
    assert min(snrs) >= -0.01 and max(snrs) <= 20.01
    assert max(snrs) - min(snrs) > 10  # drawn, not fixed


def test_noise_probability_leaves_the_other_clips_bit_exact_and_silent_clips_silent() -> None:
    waves, lengths = tone_batch([TIME] * 200)
    waves[0] = 0.0  # a silent clip gets no noise and no NaN
    augmentation = WaveformAugmentation(SAMPLE_RATE, noise_prob=0.5)
    augmentation.set_noise(noise_recordings())
    noisy, _ = augmentation(waves, lengths, generator=torch.Generator().manual_seed(5))
    unchanged = (noisy == waves).all(dim=1)
    assert 60 < int(unchanged.sum()) < 140
    assert not noisy[0].any()
    assert noisy.isfinite().all()


def test_short_recordings_are_repeated() -> None:
    waves, lengths = tone_batch([TIME])
    augmentation = WaveformAugmentation(SAMPLE_RATE, noise_prob=1.0, noise_snr_db=(10, 10))
    period = 1000
    augmentation.set_noise([torch.randn(period, generator=torch.Generator().manual_seed(6))])
    noisy, _ = augmentation(waves, lengths)
    added = noisy[0] - waves[0]
    assert torch.allclose(added[period:], added[:-period], atol=1e-6)
    assert measured_snr_db(waves[0], noisy[0], TIME) == pytest.approx(10.0, abs=0.1)


def test_noise_mixing_without_recordings_says_what_to_do() -> None:
    waves, lengths = tone_batch([TIME])
    with pytest.raises(RuntimeError, match=r"set_noise.*augmentation\.waveform\.noise_prob=0"):
        WaveformAugmentation(noise_prob=0.5)(waves, lengths)


@pytest.mark.parametrize(("percent", "length"), [(110, 8000), (90, 8000), (95, 12000)])
def test_speed_change_scales_duration_and_pitch(percent: int, length: int) -> None:
    waves, lengths = tone_batch([length], frequency=500.0)
    changed, new_lengths = change_speed(waves, lengths, torch.tensor([percent]))
    expected_length = math.ceil(length * 100 / percent)
    assert new_lengths.tolist() == [expected_length]
    assert not changed[0, expected_length:].any()
    assert changed[0, expected_length - 50 : expected_length].abs().max() > 0.1  # the tone lasts to the end
    spectrum = torch.fft.rfft(changed[0, :expected_length].double(), n=16 * TIME).abs()
    peak_hz = float(spectrum.argmax()) * SAMPLE_RATE / (16 * TIME)
    assert peak_hz == pytest.approx(500.0 * percent / 100, abs=1.0)


def test_slowed_clips_longer_than_the_window_keep_their_middle() -> None:
    waves = torch.zeros(1, TIME)
    waves[0, 8000 - 400 : 8000 + 400] = torch.hann_window(800)  # a pulse in the middle
    changed, new_lengths = change_speed(waves, torch.tensor([TIME]), torch.tensor([80]))
    assert new_lengths.tolist() == [TIME]
    # Stretched by 1.25 to 20000 samples of which the middle 16000 are kept: the pulse stays centred.
    centre = float((changed[0].abs() * torch.arange(TIME)).sum() / changed[0].abs().sum())
    assert centre == pytest.approx(7999.5 * 1.25 - 2000, abs=1.0)
    width = int((waves[0] > 0.01).sum())
    assert int((changed[0] > 0.01).sum()) == pytest.approx(width * 1.25, abs=3)


def test_random_speeds_are_whole_percentages_in_range() -> None:
    waves, lengths = tone_batch([10000] * 64)
    augmentation = WaveformAugmentation(SAMPLE_RATE, speed_prob=1.0, speed_range=(0.9, 1.1))
    _, new_lengths = augmentation(waves, lengths, generator=torch.Generator().manual_seed(7))
    possible = {math.ceil(10000 * 100 / percent) for percent in range(90, 111)}
    assert set(new_lengths.tolist()) <= possible
    assert len(set(new_lengths.tolist())) > 10

    half = WaveformAugmentation(SAMPLE_RATE, speed_prob=0.5, speed_range=(1.2, 1.2))
    changed, half_lengths = half(waves, lengths, generator=torch.Generator().manual_seed(8))
    kept = half_lengths == 10000
    assert set(half_lengths.tolist()) == {10000, math.ceil(10000 / 1.2)}
    assert torch.equal(changed[kept], waves[kept])


def test_same_seed_same_augmentation() -> None:
    waves, lengths = tone_batch([TIME, 12000, 8000, 14000])
    augmentation = full_augmentation()

    def run(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        return augmentation(waves, lengths, generator=torch.Generator().manual_seed(seed))

    first, second, other = run(0), run(0), run(1)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[0], other[0])
    torch.manual_seed(0)
    global_first = augmentation(waves, lengths)
    torch.manual_seed(0)
    global_second = augmentation(waves, lengths)
    assert torch.equal(global_first[0], global_second[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_batch_on_the_gpu_gets_the_same_augmentation() -> None:
    waves, lengths = tone_batch([TIME, 12000, 8000, 14000] * 4)
    augmentation = full_augmentation()
    cpu_waves, cpu_lengths = augmentation(waves, lengths, generator=torch.Generator().manual_seed(0))
    gpu_waves, gpu_lengths = augmentation(
        waves.cuda(), lengths.cuda(), generator=torch.Generator().manual_seed(0)
    )
    assert gpu_waves.is_cuda and gpu_lengths.is_cuda
    assert torch.equal(gpu_lengths.cpu(), cpu_lengths)
    torch.testing.assert_close(gpu_waves.cpu(), cpu_waves, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"time_shift_ms": -1}, "augmentation.waveform.time_shift_ms"),
        ({"noise_prob": 1.5}, "augmentation.waveform.noise_prob"),
        ({"speed_prob": -0.1}, "augmentation.waveform.speed_prob"),
        ({"noise_snr_db": (20, 0)}, "augmentation.waveform.noise_snr_db"),
        ({"noise_snr_db": (5,)}, "augmentation.waveform.noise_snr_db"),
        ({"noise_snr_db": "0-20"}, "augmentation.waveform.noise_snr_db"),
        ({"speed_range": (0.0, 1.1)}, "augmentation.waveform.speed_range"),
        ({"speed_range": (0.905, 0.909)}, "augmentation.waveform.speed_range"),
        ({"speed_range": (float("nan"), 1.1)}, "augmentation.waveform.speed_range"),
    ],
)
def test_bad_settings_name_their_key(settings: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        WaveformAugmentation(**settings)


def test_bad_noise_recordings_are_refused() -> None:
    with pytest.raises(ValueError, match="noise recording 1"):
        WaveformAugmentation().set_noise([torch.ones(10), torch.ones(2, 10)])


# What each file of conf/augmentation/ builds: WaveformAugmentation's and SpecAugment's attributes (a mask
# count is 0 where its mask width is 0, whatever the file says).
OFF_WAVEFORM = {
    "time_shift_ms": 0.0,
    "max_shift": 0,
    "noise_prob": 0.0,
    "noise_snr_db": (0.0, 20.0),
    "speed_prob": 0.0,
    "speed_range": (0.9, 1.1),
}
OFF_SPEC = {"freq_mask_param": 0, "time_mask_param": 0, "num_freq_masks": 0, "num_time_masks": 0}
NOISE = {"noise_prob": 0.8, "noise_snr_db": (0.0, 20.0)}
SPEED = {"speed_prob": 1.0, "speed_range": (0.9, 1.1)}
TIME_SHIFT = {"time_shift_ms": 100.0, "max_shift": 1600}  # 100 ms at 16 kHz
MASKS = {"freq_mask_param": 8, "time_mask_param": 11, "num_freq_masks": 2, "num_time_masks": 2}
PRESETS = {
    "none": ({}, {}),
    "noise": (NOISE, {}),
    "speed": (SPEED, {}),
    "time_shift": (TIME_SHIFT, {}),
    "specaugment": ({}, MASKS),
    "all": ({**NOISE, **SPEED, **TIME_SHIFT}, MASKS),
}


def augmentation_config(*overrides: str) -> DictConfig:
    """The ``augmentation`` node of the composed run config with ``overrides``."""
    return compose_config("config", list(overrides)).augmentation


def test_the_presets_table_covers_every_file_of_the_group() -> None:
    assert sorted(PRESETS) == choices("augmentation")


@pytest.mark.parametrize("preset", choices("augmentation"))
def test_every_preset_builds_both_modules_with_its_values(preset: str) -> None:
    config = augmentation_config(f"augmentation={preset}")
    assert set(config) == {"waveform", "spec_augment"}

    partial = instantiate(config.waveform)
    waveform = partial(sample_rate=SAMPLE_RATE)
    spec = instantiate(config.spec_augment)

    assert isinstance(waveform, WaveformAugmentation) and isinstance(spec, SpecAugment)
    assert waveform.sample_rate == SAMPLE_RATE
    waveform_values, spec_values = PRESETS[preset]
    expected_waveform, expected_spec = {**OFF_WAVEFORM, **waveform_values}, {**OFF_SPEC, **spec_values}
    assert {key: getattr(waveform, key) for key in expected_waveform} == expected_waveform
    assert {key: getattr(spec, key) for key in expected_spec} == expected_spec
    assert waveform.enabled == bool(waveform_values) and spec.enabled == bool(spec_values)


def test_the_waveform_partial_is_completed_with_the_sample_rate() -> None:
    partial = instantiate(augmentation_config("augmentation=time_shift").waveform)
    assert partial(sample_rate=8000).max_shift == 800
    assert partial(sample_rate=SAMPLE_RATE).max_shift == 1600


@pytest.mark.parametrize("preset", choices("augmentation"))
def test_an_unknown_key_is_an_error_not_silently_dropped(preset: str) -> None:
    config = augmentation_config(
        f"augmentation={preset}",
        "+augmentation.waveform.tim_shift_ms=100",
        "+augmentation.spec_augment.freq_mask_parm=8",
    )
    with pytest.raises((TypeError, InstantiationException), match="tim_shift_ms"):
        instantiate(config.waveform)(sample_rate=SAMPLE_RATE)
    with pytest.raises((TypeError, InstantiationException), match="freq_mask_parm"):
        instantiate(config.spec_augment)


def test_an_impossible_value_names_its_config_key() -> None:
    config = augmentation_config(
        "augmentation=all",
        "augmentation.waveform.noise_prob=1.5",
        "augmentation.spec_augment.num_time_masks=-1",
    )
    with pytest.raises(ValueError, match=r"augmentation\.waveform\.noise_prob must be a probability"):
        instantiate(config.waveform)(sample_rate=SAMPLE_RATE)
    with pytest.raises(InstantiationException, match=r"augmentation\.spec_augment\.num_time_masks must be"):
        instantiate(config.spec_augment)
