"""MFCC against torchaudio's MFCC with ``log_mels=True``, at torch's default allclose tolerances.

Both take ``log(mel + 1e-6)`` of bit-identical mel energies and multiply by the same DCT matrix in the
same order, so the outputs are equal (measured max |difference|: 0.0); the default tolerances
(``rtol=1e-5``, ``atol=1e-8``) are kept rather than asserting bitwise equality across platforms.
"""

from __future__ import annotations

import ptflops
import pytest
import torch
import torchaudio

from src.frontends import MFCC, LogMelFilterBanks
from tests.frontends.test_log_mel import speech_like_signal


@pytest.mark.parametrize(
    ("n_mfcc", "config"),
    [
        (20, {"n_fft": 400, "hop_length": 160, "n_mels": 40}),
        (13, {"n_fft": 400, "hop_length": 160, "n_mels": 23, "center": False}),
        (40, {"n_fft": 512, "win_length": 480, "hop_length": 128, "n_mels": 80}),
        (30, {"n_fft": 512, "hop_length": 160, "n_mels": 64, "norm": "slaney", "mel_scale": "slaney"}),
        (40, {"n_fft": 400, "hop_length": 160, "n_mels": 40, "f_min": 20.0, "f_max": 7600.0}),
    ],
    ids=lambda value: (
        str(value) if isinstance(value, int) else ",".join(f"{k}={v}" for k, v in value.items())
    ),
)
def test_matches_torchaudio_mfcc_with_log_mels(n_mfcc: int, config: dict[str, object]) -> None:
    signal = torch.cat([speech_like_signal(seed=seed) * (seed + 1) for seed in range(2)])
    reference = torchaudio.transforms.MFCC(
        sample_rate=16000, n_mfcc=n_mfcc, dct_type=2, norm="ortho", log_mels=True, melkwargs=config
    )
    frontend = MFCC(n_mfcc=n_mfcc, **config)

    expected = reference(signal)
    actual = frontend.features(signal)

    assert actual.shape == expected.shape == (2, n_mfcc, frontend.num_frames(signal.shape[-1]))
    assert torch.allclose(actual, expected)


def test_first_coefficients_are_the_orthonormal_dct_of_the_log_mel() -> None:
    signal = speech_like_signal()
    log_mel = LogMelFilterBanks(n_mels=40).features(signal).double()
    n = torch.arange(40, dtype=torch.float64)
    # DCT-II, orthonormal: c_0 = sum / sqrt(N); c_1 = sqrt(2 / N) sum x_n cos(pi (n + 0.5) / N)
    c0 = log_mel.sum(dim=1) / 40**0.5
    c1 = (2 / 40) ** 0.5 * (log_mel * torch.cos(torch.pi * (n + 0.5) / 40)[:, None]).sum(dim=1)

    mfcc = MFCC(n_mfcc=2, n_mels=40).features(signal).double()

    assert torch.allclose(mfcc[:, 0], c0, atol=1e-4, rtol=0)  # float32 sums of 40 values of |x| < 20
    assert torch.allclose(mfcc[:, 1], c1, atol=1e-4, rtol=0)


def test_out_features_frames_and_buffers() -> None:
    frontend = MFCC(n_mfcc=20, n_mels=40)

    assert frontend.out_features == 20 == frontend.features(speech_like_signal()).shape[1]
    assert frontend.num_frames(16000) == 101
    assert list(frontend.parameters()) == []
    assert frontend.state_dict()["dct_mat"].shape == (40, 20)


def test_ptflops_plus_analytic_macs_is_the_total() -> None:
    frontend = MFCC(n_mfcc=2, n_fft=16, hop_length=4, n_mels=3)
    # 11 frames: mel projection 11 * 9 * 3 = 297 and DCT 11 * 3 * 2 = 66 seen by ptflops;
    # window 16 + FFT 16 * log2(16) + power 2 * 9 = 98 per frame counted analytically
    counted, _ = ptflops.get_model_complexity_info(
        frontend, (40,), backend="aten", as_strings=False, print_per_layer_stat=False
    )

    assert counted == 297 + 66
    assert frontend.analytic_macs(40) == 11 * 98


def test_more_coefficients_than_mels_names_the_config_key() -> None:
    with pytest.raises(ValueError, match=r"frontend\.n_mfcc=41 must be an integer between 1 and n_mels=40"):
        MFCC(n_mfcc=41, n_mels=40)
    with pytest.raises(ValueError, match=r"frontend\.n_mfcc=0"):
        MFCC(n_mfcc=0)


def test_too_many_mels_is_log_mel_filterbanks_config_error() -> None:
    with pytest.raises(ValueError, match=r"n_mels=128 is too large for n_fft=400"):
        MFCC(n_mfcc=20, n_mels=128)
