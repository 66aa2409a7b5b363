"""Classical single-channel enhancement gains on an STFT, with no training: the baselines of
``task=denoising``.

Both estimate the noise power spectrum as the mean noisy power over the first frames (the example is
assumed to start before the speech does) and return a real gain per bin and frame, applied to the noisy
STFT with its phase, as the learned masks are.

- :func:`spectral_subtraction_gain`: power spectral subtraction (Boll, 1979, "Suppression of acoustic
  noise in speech using spectral subtraction") with a spectral floor against musical noise (Berouti,
  Schwartz & Makhoul, 1979).
- :func:`wiener_gain`: the Wiener gain ``xi / (1 + xi)`` with the a priori SNR ``xi`` estimated by the
  decision-directed rule of Ephraim & Malah (1984, "Speech enhancement using a minimum mean-square error
  short-time spectral amplitude estimator").
"""

from __future__ import annotations

import torch
from torch import Tensor

BASELINES = ("spectral_subtraction", "wiener")
"""The baselines' names, as tables and metrics name them."""


def noise_power(power: Tensor, noise_frames: int) -> Tensor:
    """``(batch, bins, frames)`` noisy power -> ``(batch, bins, 1)``: its mean over the first
    ``noise_frames`` frames (all frames when there are fewer)."""
    return power[..., :noise_frames].mean(dim=-1, keepdim=True)


def spectral_subtraction_gain(power: Tensor, noise: Tensor, floor: float = 0.1) -> Tensor:
    """``sqrt(max(1 - noise / power, floor²))``: the magnitude gain that subtracts the noise power,
    never below ``floor``; ``power (batch, bins, frames)``, ``noise`` broadcastable to it."""
    return (1 - noise / power.clamp_min(1e-12)).clamp_min(floor**2).sqrt()


def wiener_gain(power: Tensor, noise: Tensor, smoothing: float = 0.98, floor: float = 0.1) -> Tensor:
    """The decision-directed Wiener gain, frame by frame: with the a posteriori SNR ``gamma = power /
    noise``, the a priori SNR is ``xi_t = smoothing * G_{t-1}² gamma_{t-1} + (1 - smoothing) *
    max(gamma_t - 1, 0)`` (``xi_0 = max(gamma_0 - 1, 0)``) and the gain ``G_t = max(xi_t / (1 + xi_t),
    floor)``. ``power (batch, bins, frames)``, ``noise`` broadcastable to it."""
    gamma = power / noise.clamp_min(1e-12)
    gains = []
    previous = None
    for frame in range(gamma.shape[-1]):
        instant = (gamma[..., frame] - 1).clamp_min(0)
        xi = instant if previous is None else smoothing * previous + (1 - smoothing) * instant
        gain = (xi / (1 + xi)).clamp_min(floor)
        gains.append(gain)
        previous = gain**2 * gamma[..., frame]
    return torch.stack(gains, dim=-1)


def baseline_gain(name: str, spectrum: Tensor, noise_frames: int) -> Tensor:
    """The gain of baseline ``name`` (of :data:`BASELINES`) for a complex ``(batch, bins, frames)`` noisy
    spectrum, with the noise estimated from its first ``noise_frames`` frames.

    Raises:
        ValueError: for another name.
    """
    power = spectrum.abs().pow(2)
    noise = noise_power(power, noise_frames)
    if name == "spectral_subtraction":
        return spectral_subtraction_gain(power, noise)
    if name == "wiener":
        return wiener_gain(power, noise)
    raise ValueError(f"baseline must be one of {list(BASELINES)}, got {name!r}")
