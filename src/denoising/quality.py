"""Speech-quality scores of an enhanced waveform against its clean reference, with torchmetrics.

- SNR and SI-SDR (Le Roux et al., 2019, "SDR - half-baked or well done?") in dB;
- STOI (Taal et al., 2011), through ``pystoi``;
- PESQ (ITU-T P.862: wide band at 16 kHz, narrow band at 8 kHz), through the ``pesq`` package, which
  builds from source (it needs a C compiler); without it, or at another sample rate, PESQ is NaN and
  :func:`pesq_unavailable` says why.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math

import torch
from torch import Tensor
from torchmetrics.functional.audio import (
    perceptual_evaluation_speech_quality,
    scale_invariant_signal_distortion_ratio,
    short_time_objective_intelligibility,
    signal_noise_ratio,
)

PESQ_MODES = {16000: "wb", 8000: "nb"}
"""PESQ's mode at each sample rate it is defined for."""
FAST_SCORES = ("snr", "si_sdr")
ALL_SCORES = ("snr", "si_sdr", "stoi", "pesq")


def pesq_unavailable(sample_rate: int) -> str | None:
    """Why PESQ cannot be scored at ``sample_rate`` Hz, or ``None`` when it can."""
    if importlib.util.find_spec("pesq") is None:
        return "the pesq package is not installed (it builds from source and needs a C compiler)"
    if sample_rate not in PESQ_MODES:
        return f"PESQ is defined at 8 and 16 kHz, not at {sample_rate} Hz"
    return None


def fast_scores(estimates: Tensor, clean: Tensor, lengths: Tensor) -> dict[str, Tensor]:
    """SNR and SI-SDR (dB) of each example over its true length: ``(batch, time)`` estimates and clean
    references, ``(batch,)`` lengths -> name -> ``(batch,)``."""
    scores: dict[str, list[Tensor]] = {name: [] for name in FAST_SCORES}
    for estimate, reference, length in zip(estimates, clean, lengths.tolist(), strict=True):
        estimate, reference = estimate[:length], reference[:length]
        scores["snr"].append(signal_noise_ratio(estimate, reference))
        scores["si_sdr"].append(scale_invariant_signal_distortion_ratio(estimate, reference, zero_mean=True))
    return {name: torch.stack(values) for name, values in scores.items()}


def all_scores(estimate: Tensor, clean: Tensor, sample_rate: int) -> dict[str, float]:
    """SNR, SI-SDR, STOI and PESQ of one ``(time,)`` estimate against its ``(time,)`` clean reference.
    PESQ is NaN where :func:`pesq_unavailable` says so, or when it finds no speech in the reference."""
    estimate, clean = estimate.detach().cpu().double(), clean.detach().cpu().double()
    scores = {
        "snr": float(signal_noise_ratio(estimate, clean)),
        "si_sdr": float(scale_invariant_signal_distortion_ratio(estimate, clean, zero_mean=True)),
        "stoi": float(short_time_objective_intelligibility(estimate, clean, sample_rate)),
        "pesq": math.nan,
    }
    if pesq_unavailable(sample_rate) is None:
        from pesq import PesqError

        with contextlib.suppress(PesqError):  # e.g. NoUtterancesError: no speech in the reference
            scores["pesq"] = float(
                perceptual_evaluation_speech_quality(estimate, clean, sample_rate, PESQ_MODES[sample_rate])
            )
    return scores
