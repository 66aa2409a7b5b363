"""TrainableLogMel against LogMelFilterBanks and torch.stft, and its settings, options, gradients and MACs.

Tolerances:

* float64: the conv1d STFT and its filters are the same arithmetic as ``torch.stft`` and torchaudio's
  filters, so outputs agree to ``LOG_ATOL_FLOAT64 = 1e-9`` (measured: below 1e-12).
* float32 log-mel: ``LOG_ATOL_FLOAT32 = 1e-3`` absolute, ``rtol = 0``. A direct n_fft-term sum (conv1d)
  and an FFT round differently; each bin's power then differs by a few float32 eps times the frame's
  total power, which the log divides by the band's own energy, so the error peaks in the quietest bands.
  Against float64 truth on ``chirp_and_noise`` the FFT path errs by up to 6.5e-4 and the conv1d path by
  up to 1.2e-4 (measured max |difference| between them: 6.6e-4, at n_fft=400, n_mels=80). ``rtol`` is 0
  because an absolute error in log units already is a relative error of the energy.
* float32 power spectrogram: ``32 * eps * max(power)`` absolute, ``rtol = 0`` (measured: 13.5 eps).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import ptflops
import pytest
import torch
from torch import nn

from src.frontends import LogMelFilterBanks, TrainableLogMel
from src.frontends.mel import hz_to_mel, mel_to_hz, triangular_mel_fbanks

SAMPLE_RATE = 16000
LOG_ATOL_FLOAT32 = 1e-3
LOG_ATOL_FLOAT64 = 1e-9
POWER_ATOL_EPS = 32

SETTINGS = {
    "A": {"trainable_stft": False, "trainable_mel": False},
    "B": {"trainable_stft": False, "trainable_mel": True},
    "C": {"trainable_stft": True, "trainable_mel": False},
    "D": {"trainable_stft": True, "trainable_mel": True},
    "parametric-A": {"trainable_stft": False, "trainable_mel": False, "filterbank": "parametric"},
    "parametric-B": {"trainable_stft": False, "trainable_mel": True, "filterbank": "parametric"},
    "parametric-D": {"trainable_stft": True, "trainable_mel": True, "filterbank": "parametric"},
}
PARAMETERS = {
    "A": set(),
    "B": {"mel_fbanks"},
    "C": {"stft_real", "stft_imag"},
    "D": {"stft_real", "stft_imag", "mel_fbanks"},
    "parametric-A": set(),
    "parametric-B": {"mel_centres", "mel_bandwidths"},
    "parametric-D": {"stft_real", "stft_imag", "mel_centres", "mel_bandwidths"},
}
TRAINABLE_SETTINGS = [name for name, params in PARAMETERS.items() if params]


def chirp_and_noise(
    num_samples: int = SAMPLE_RATE, seed: int = 0, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Two clips, ``(2, num_samples)``: a 50 Hz -> 7 kHz linear chirp plus white noise, and that clip
    reversed at 0.3 times the amplitude."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(num_samples, dtype=torch.float64) / SAMPLE_RATE
    frequency = 50.0 + (7000.0 - 50.0) * t / t[-1]
    chirp = 0.5 * torch.sin(2 * math.pi * torch.cumsum(frequency, dim=0) / SAMPLE_RATE)
    signal = chirp + 0.01 * torch.randn(num_samples, generator=generator, dtype=torch.float64)
    return torch.stack([signal, 0.3 * signal.flip(0)]).to(dtype)


@pytest.fixture
def float64_default() -> Iterator[None]:
    """Build modules (windows, kernels, filters) in float64, as the reference is built."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def sgd_step(frontend: nn.Module, signal: torch.Tensor, lr: float = 1e-3) -> None:
    """One SGD step on the sum of the features."""
    optimizer = torch.optim.SGD(frontend.parameters(), lr=lr)
    frontend.features(signal).sum().backward()
    optimizer.step()


@pytest.mark.parametrize("n_mels", [10, 20, 40, 80])
@pytest.mark.parametrize(
    "stft", [{"n_fft": 400}, {"n_fft": 512, "win_length": 480}], ids=["n_fft=400", "n_fft=512,win=480"]
)
@pytest.mark.parametrize("hop_length", [160, 128])
def test_every_setting_matches_log_mel_filterbanks_at_init(
    n_mels: int, stft: dict[str, int], hop_length: int
) -> None:
    config = {**stft, "n_mels": n_mels, "hop_length": hop_length}
    signal = chirp_and_noise()
    expected = LogMelFilterBanks(**config).features(signal)

    for setting, flags in SETTINGS.items():
        frontend = TrainableLogMel(**config, **flags)
        actual = frontend.features(signal)

        assert actual.shape == expected.shape == (2, n_mels, frontend.num_frames(SAMPLE_RATE)), setting
        difference = float((actual - expected).abs().max().detach())
        assert torch.allclose(actual, expected, atol=LOG_ATOL_FLOAT32, rtol=0), (setting, difference)


@pytest.mark.parametrize("filterbank", ["matrix", "parametric"])
@pytest.mark.parametrize(
    "config",
    [
        {"n_fft": 400, "n_mels": 80},
        {"n_fft": 512, "win_length": 480, "hop_length": 128, "n_mels": 40},
        {"n_fft": 512, "win_length": 400, "n_mels": 64, "norm": "slaney", "mel_scale": "slaney"},
        {"n_fft": 400, "n_mels": 40, "f_min": 20.0, "f_max": 7600.0, "power": 1.0},
        {"n_fft": 256, "hop_length": 64, "n_mels": 40, "center": False},
        {"n_fft": 400, "n_mels": 40, "pad_mode": "constant"},
    ],
    ids=lambda config: ",".join(f"{key}={value}" for key, value in config.items()),
)
@pytest.mark.parametrize("trainable_stft", [False, True], ids=["fft", "conv1d"])
def test_float64_matches_log_mel_filterbanks_to_rounding(
    float64_default: None, config: dict[str, object], filterbank: str, trainable_stft: bool
) -> None:
    signal = chirp_and_noise(dtype=torch.float64)
    reference = LogMelFilterBanks(**config)
    frontend = TrainableLogMel(
        **config, filterbank=filterbank, trainable_stft=trainable_stft, trainable_mel=True
    )

    spec, expected_spec = frontend.spectrogram(signal), reference.spectrogram(signal)
    assert torch.allclose(spec, expected_spec, atol=LOG_ATOL_FLOAT64 * float(expected_spec.max()), rtol=0)
    actual, expected = frontend.features(signal), reference.features(signal)
    assert torch.allclose(actual, expected, atol=LOG_ATOL_FLOAT64, rtol=0)


@pytest.mark.parametrize(
    "config",
    [
        {"n_fft": 400, "hop_length": 160},
        {"n_fft": 512, "win_length": 480, "hop_length": 160},
        {"n_fft": 512, "win_length": 400, "hop_length": 128, "center": False},
    ],
    ids=lambda config: ",".join(f"{key}={value}" for key, value in config.items()),
)
@pytest.mark.parametrize("trainable_stft", [False, True], ids=["fft", "conv1d"])
def test_power_spectrogram_matches_torch_stft(config: dict[str, int | bool], trainable_stft: bool) -> None:
    signal = chirp_and_noise()
    frontend = TrainableLogMel(**config, n_mels=40, trainable_stft=trainable_stft)
    window = torch.hann_window(frontend.win_length)

    expected = torch.stft(signal, window=window, return_complex=True, pad_mode="reflect", **config).abs() ** 2
    actual = frontend.spectrogram(signal)

    assert actual.shape == expected.shape == (2, config["n_fft"] // 2 + 1, frontend.num_frames(SAMPLE_RATE))
    atol = POWER_ATOL_EPS * torch.finfo(torch.float32).eps * float(expected.max())
    assert torch.allclose(actual, expected, atol=atol, rtol=0)


def test_stft_kernels_are_the_windowed_dft_basis() -> None:
    frontend = TrainableLogMel(n_fft=512, win_length=480, n_mels=40)
    frames = torch.randn(3, 512, dtype=torch.float64)
    window = torch.nn.functional.pad(torch.hann_window(480, dtype=torch.float64), (16, 16))

    expected = torch.fft.rfft(frames * window)
    actual = frames @ frontend.stft_kernels().double().T + 1j * (frames @ frontend.stft_imag.double().T)

    assert frontend.stft_kernels().shape == (257, 512)
    assert torch.allclose(actual, expected, atol=1e-5, rtol=0)  # float32 kernels: |error| <= ~eps * sum|x|


@pytest.mark.parametrize("mel_scale", ["htk", "slaney"])
@pytest.mark.parametrize("n_mels", [10, 20, 40, 80])
def test_parametric_filters_equal_the_triangular_filterbank_at_init(n_mels: int, mel_scale: str) -> None:
    frontend = TrainableLogMel(n_mels=n_mels, filterbank="parametric", mel_scale=mel_scale)
    expected = triangular_mel_fbanks(
        sample_rate=SAMPLE_RATE,
        n_fft=400,
        f_min=0.0,
        f_max=8000.0,
        n_mels=n_mels,
        norm=None,
        mel_scale=mel_scale,
    )
    # The edges in mel equal torchaudio's bit for bit, but float32 pow/exp may round an edge's value in Hz
    # differently by one ulp (vectorised or scalar path: torchaudio converts n_mels + 2 points, we convert
    # 3 * n_mels). One ulp of an edge f moves a filter value by at most ulp(f) / (width of that slope in
    # Hz); allow two such shifts (measured: 8.6e-7 for n_mels=20 htk, exact otherwise).
    points = mel_to_hz(
        torch.linspace(hz_to_mel(0.0, mel_scale), hz_to_mel(8000.0, mel_scale), n_mels + 2), mel_scale
    )
    lower, centre, upper = points[:-2], points[1:-1], points[2:]
    ulp = torch.nextafter(upper, torch.full_like(upper, math.inf)) - upper
    atol = 2 * float(torch.maximum(ulp / (upper - centre), ulp / (centre - lower)).max())

    actual = frontend.mel_filters()

    assert actual.shape == (201, n_mels)
    assert torch.allclose(actual, expected, atol=atol, rtol=0)


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_exactly_the_trainable_tensors_are_parameters(setting: str) -> None:
    frontend = TrainableLogMel(n_fft=400, n_mels=40, **SETTINGS[setting])
    parametric = SETTINGS[setting].get("filterbank") == "parametric"
    mel_tensors = {"mel_centres", "mel_bandwidths"} if parametric else {"mel_fbanks"}
    tensors = {"stft_real", "stft_imag", *mel_tensors}
    always_buffers = {"freq_mask", "fft_freqs", "stft_real_init", "stft_imag_init", "mel_fbanks_init"}

    parameters = dict(frontend.named_parameters())
    buffers = dict(frontend.named_buffers())

    assert set(parameters) == PARAMETERS[setting]
    assert set(buffers) == (tensors - PARAMETERS[setting]) | always_buffers | {"window"}
    assert "window" not in frontend.state_dict()  # the FFT's window is derived, not saved
    assert all(p.requires_grad for p in parameters.values())
    sizes = {"stft_real": 201 * 400, "stft_imag": 201 * 400, "mel_fbanks": 201 * 40}
    sizes |= {"mel_centres": 40, "mel_bandwidths": 2 * 40}
    assert sum(p.numel() for p in frontend.parameters()) == sum(sizes[name] for name in PARAMETERS[setting])
    # the state dict is the same in every setting of a filterbank type, so checkpoints are interchangeable
    reference = TrainableLogMel(n_fft=400, n_mels=40, filterbank="parametric" if parametric else "matrix")
    assert set(frontend.state_dict()) == set(reference.state_dict())


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_an_optimiser_step_changes_only_the_trainable_tensors(setting: str) -> None:
    frontend = TrainableLogMel(n_fft=400, n_mels=40, **SETTINGS[setting])
    before = {name: tensor.clone() for name, tensor in frontend.state_dict().items()}

    if PARAMETERS[setting]:
        sgd_step(frontend, chirp_and_noise())

    changed = {
        name for name, tensor in frontend.state_dict().items() if not torch.equal(tensor, before[name])
    }
    assert changed == PARAMETERS[setting]


@pytest.mark.parametrize("power", [2.0, 1.0])
@pytest.mark.parametrize("setting", TRAINABLE_SETTINGS)
def test_gradients_are_finite_and_reach_the_trainable_tensors_even_on_silence(
    setting: str, power: float
) -> None:
    frontend = TrainableLogMel(n_fft=400, n_mels=40, power=power, **SETTINGS[setting])
    # row 0 is digital silence: |z| = 0 there, where d sqrt(re² + im²) is infinite (nnAudio's NaN)
    signal = torch.cat([torch.zeros(1, SAMPLE_RATE), chirp_and_noise()[:1]]).requires_grad_()

    frontend(signal)[0].sum().backward()

    assert torch.isfinite(signal.grad).all()
    for name, parameter in frontend.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name

    frontend.zero_grad()
    frontend(torch.zeros(2, SAMPLE_RATE))[0].sum().backward()  # silence alone
    for name, parameter in frontend.named_parameters():
        assert torch.isfinite(parameter.grad).all(), name


def test_maskout_zeroes_its_bins_and_keeps_gradients_of_the_others() -> None:
    signal = chirp_and_noise()
    frontend = TrainableLogMel(n_fft=400, n_mels=40, trainable_stft=True, maskout=[20, 60])
    unmasked = TrainableLogMel(n_fft=400, n_mels=40, trainable_stft=True)

    spec = frontend.spectrogram(signal)
    assert (spec[:, 20:60] == 0).all()
    assert torch.equal(spec[:, :20], unmasked.spectrogram(signal)[:, :20])
    assert torch.equal(spec[:, 60:], unmasked.spectrogram(signal)[:, 60:])
    assert frontend.freq_mask.sum() == 201 - 40

    frontend.features(signal).sum().backward()  # no in-place write on a tensor autograd needs

    # bins 0 and 200 (0 Hz, 8 kHz) get no gradient anyway: the mel filters weigh them 0 and their sine
    # kernels are 0; every other unmasked bin does
    unmasked_bins = torch.cat([torch.arange(1, 20), torch.arange(60, 200)])
    for kernels in (frontend.stft_real, frontend.stft_imag):
        assert (kernels.grad[20:60] == 0).all()
        assert (kernels.grad[unmasked_bins].abs().sum(dim=1) > 0).all()
    sgd_step(frontend, signal)
    assert (frontend.spectrogram(signal)[:, 20:60] == 0).all()


def test_a_fixed_stft_computes_the_kernels_it_loads() -> None:
    signal = chirp_and_noise()
    trained = TrainableLogMel(n_fft=400, n_mels=40, trainable_stft=True)
    with torch.no_grad():
        trained.stft_real.mul_(1.5)  # as if setting C had trained them
    frozen = TrainableLogMel(n_fft=400, n_mels=40)
    assert frozen.stft_by_fft

    frozen.load_state_dict(trained.state_dict())
    assert not frozen.stft_by_fft  # the FFT would ignore the loaded kernels
    assert torch.equal(frozen.features(signal), trained.features(signal).detach())

    frozen.load_state_dict(TrainableLogMel(n_fft=400, n_mels=40).state_dict())
    assert frozen.stft_by_fft  # the DFT basis again: back to the FFT


def test_maskout_zeroes_its_bins_of_the_fixed_stft_too() -> None:
    signal = chirp_and_noise()
    masked = TrainableLogMel(n_fft=400, n_mels=40, maskout=[20, 60]).spectrogram(signal)
    unmasked = TrainableLogMel(n_fft=400, n_mels=40).spectrogram(signal)

    assert (masked[:, 20:60] == 0).all() and (unmasked[:, 20:60] > 0).all()
    assert torch.equal(masked[:, :20], unmasked[:, :20]) and torch.equal(masked[:, 60:], unmasked[:, 60:])


@pytest.mark.parametrize("maskout", [[60, 20], [0, 202], [5], [-1, 3]])
def test_impossible_maskout_names_the_config_key(maskout: list[int]) -> None:
    with pytest.raises(ValueError, match=r"frontend\.maskout="):
        TrainableLogMel(n_fft=400, n_mels=40, maskout=maskout)


def test_constrain_makes_trainable_mel_filters_nonnegative() -> None:
    signal = chirp_and_noise()
    frontend = TrainableLogMel(n_fft=400, n_mels=40, trainable_mel=True, nonnegative_mel=True)
    unconstrained = TrainableLogMel(n_fft=400, n_mels=40, trainable_mel=True)
    # d(sum of log-mels)/d(filter) > 0 wherever the bin has energy, so a step lowers every filter entry
    # and pushes the zero entries below 0
    for module in (frontend, unconstrained):
        sgd_step(module, signal)
    stepped = frontend.mel_fbanks.detach().clone()
    assert (stepped < 0).sum() > 1000

    frontend.constrain_()
    unconstrained.constrain_()

    assert (frontend.mel_fbanks >= 0).all()
    assert torch.equal(frontend.mel_fbanks[stepped >= 0], stepped[stepped >= 0])
    assert torch.equal(unconstrained.mel_fbanks, stepped)  # flag off: a no-op


def test_constrain_leaves_fixed_and_parametric_filters_alone() -> None:
    for flags in ({"trainable_mel": False}, {"trainable_mel": True, "filterbank": "parametric"}):
        frontend = TrainableLogMel(n_fft=400, n_mels=40, nonnegative_mel=True, trainable_stft=True, **flags)
        sgd_step(frontend, chirp_and_noise())
        before = {name: tensor.clone() for name, tensor in frontend.state_dict().items()}

        frontend.constrain_()

        assert all(torch.equal(tensor, before[name]) for name, tensor in frontend.state_dict().items())


def test_random_mel_is_seeded_nonnegative_and_not_triangular() -> None:
    triangular = TrainableLogMel(n_fft=400, n_mels=40).mel_filters()
    torch.manual_seed(0)
    first = TrainableLogMel(n_fft=400, n_mels=40, random_mel=True, trainable_mel=True)
    torch.manual_seed(0)
    second = TrainableLogMel(n_fft=400, n_mels=40, random_mel=True, trainable_mel=True)

    filters = first.mel_filters().detach()
    assert filters.shape == triangular.shape
    assert torch.equal(filters, second.mel_filters())
    assert (filters >= 0).all() and (filters <= triangular.max()).all()
    assert filters.std() > 0.2 * triangular.max()  # spread over [0, max], unlike a triangle's support
    assert (filters - triangular).abs().max() > 0.5
    assert torch.equal(first.mel_fbanks_init, filters)  # the distance is measured from the random start
    signal = chirp_and_noise()
    reference = LogMelFilterBanks(n_fft=400, n_mels=40).features(signal)
    assert not torch.allclose(first.features(signal), reference, atol=1.0)


def test_random_mel_needs_the_matrix_filterbank() -> None:
    with pytest.raises(ValueError, match=r"frontend\.random_mel=.*frontend\.filterbank=matrix"):
        TrainableLogMel(random_mel=True, filterbank="parametric")


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_filter_distance_is_zero_at_init_and_grows_for_trainable_parts_only(setting: str) -> None:
    frontend = TrainableLogMel(n_fft=400, n_mels=40, **SETTINGS[setting])
    assert frontend.filter_distance() == {"mel": 0.0, "stft": 0.0}

    if PARAMETERS[setting]:
        sgd_step(frontend, chirp_and_noise())
    distance = frontend.filter_distance()

    assert (distance["mel"] > 0) == SETTINGS[setting]["trainable_mel"]
    assert (distance["stft"] > 0) == SETTINGS[setting]["trainable_stft"]
    if SETTINGS[setting]["trainable_mel"]:
        initial = frontend.mel_fbanks_init
        expected = torch.linalg.norm(frontend.mel_filters().detach() - initial) / torch.linalg.norm(initial)
        assert distance["mel"] == pytest.approx(float(expected))


@pytest.mark.parametrize(
    ("flags", "analytic"),
    [
        # per frame: power 2 * 9 bins = 18 -> 11 frames * 18
        ({}, 11 * 18),
        # + mask multiply 1 * 9 bins per frame
        ({"maskout": [2, 5]}, 11 * (18 + 9)),
        # + building the filters once: 2 slopes * 9 bins * 3 filters
        ({"filterbank": "parametric"}, 11 * 18 + 2 * 9 * 3),
        # + Slaney normalisation, 1 per filter entry
        ({"filterbank": "parametric", "norm": "slaney"}, 11 * 18 + 3 * 9 * 3),
    ],
    ids=["matrix", "maskout", "parametric", "parametric-slaney"],
)
@pytest.mark.parametrize("trainable", [False, True], ids=["fixed", "trainable"])
def test_ptflops_plus_analytic_macs_is_the_hand_count(
    flags: dict[str, object], analytic: int, trainable: bool
) -> None:
    frontend = TrainableLogMel(
        n_fft=16, hop_length=4, n_mels=3, trainable_stft=trainable, trainable_mel=trainable, **flags
    )
    num_samples = 40
    frames = 1 + num_samples // 4  # centred: 11
    bins = 16 // 2 + 1  # 9
    stft_conv = frames * 2 * bins * 16  # 3168: conv1d with 18 kernels of 16 taps, counted by ptflops
    stft_fft = frames * (16 + 16 * 4)  # 880: window + 16 * log2(16) per frame, not seen by ptflops
    mel_projection = frames * bins * 3  # 297, counted by ptflops as a matrix product

    counted, params = ptflops.get_model_complexity_info(
        frontend, (num_samples,), backend="aten", as_strings=False, print_per_layer_stat=False
    )

    assert counted == (stft_conv if trainable else 0) + mel_projection
    assert frontend.analytic_macs(num_samples) == analytic + (0 if trainable else stft_fft)
    assert params == sum(p.numel() for p in frontend.parameters())


def test_fixed_stft_macs_equal_log_mel_filterbanks() -> None:
    settings = {"n_fft": 480, "hop_length": 160, "n_mels": 40}
    assert TrainableLogMel(**settings).analytic_macs(SAMPLE_RATE) == LogMelFilterBanks(
        **settings
    ).analytic_macs(SAMPLE_RATE)


def test_num_frames_matches_the_output() -> None:
    for center in (True, False):
        frontend = TrainableLogMel(n_fft=512, win_length=480, hop_length=128, n_mels=40, center=center)
        for num_samples in (4000, 12345):
            frames = frontend.features(torch.zeros(1, num_samples)).shape[-1]
            assert frames == frontend.num_frames(num_samples)
    frontend = TrainableLogMel(n_fft=16, hop_length=4, n_mels=3, center=False, trainable_stft=True)
    assert frontend.analytic_macs(40) == 7 * 18


def test_out_features_is_the_feature_dimension() -> None:
    frontend = TrainableLogMel(n_mels=40)
    assert frontend.out_features == 40 == frontend.features(chirp_and_noise()).shape[1]


def test_moves_to_float64_with_its_parameters_and_buffers() -> None:
    frontend = TrainableLogMel(n_fft=400, n_mels=40, trainable_stft=True, filterbank="parametric").double()

    output, lengths = frontend(chirp_and_noise(dtype=torch.float64))

    assert output.dtype == torch.float64 and lengths.dtype == torch.int64
    assert all(t.dtype == torch.float64 for t in [*frontend.parameters(), *frontend.buffers()])


def test_too_many_mels_is_the_same_config_error_as_log_mel_filterbanks() -> None:
    pattern = r"n_mels=128 is too large for n_fft=400 .* 4 mel filters.*frontend\.n_mels"
    for filterbank in ("matrix", "parametric"):
        with pytest.raises(ValueError, match=pattern):
            TrainableLogMel(n_mels=128, filterbank=filterbank)
    assert TrainableLogMel(n_mels=128, n_fft=1024).out_features == 128


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"filterbank": "gammatone"}, "filterbank"),
        ({"win_length": 500}, "win_length"),
        ({"hop_length": 0}, "hop_length"),
        ({"power": 0.0}, "power"),
        ({"f_min": 9000.0}, "f_min"),
    ],
)
def test_impossible_configs_name_the_key(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=rf"frontend\.{key}="):
        TrainableLogMel(**kwargs)


def test_rejects_waveform_without_batch_dimension() -> None:
    with pytest.raises(ValueError, match=r"\(batch, time\)"):
        TrainableLogMel()(torch.zeros(SAMPLE_RATE))
