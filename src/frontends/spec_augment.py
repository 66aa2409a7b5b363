"""SpecAugment's frequency and time masking of features, for training only.

Masks are drawn by ``torchaudio.transforms.FrequencyMasking`` / ``TimeMasking`` with ``iid_masks=True``
(independent masks per example, from torch's global RNG on the features' device, which
``lightning.seed_everything`` seeds).

Masked entries are set to each example's mean feature value, not to 0: log-mel features are logs of
energies (about -14 for silence with the usual 1e-6 offset, around 0 for speech), so a band of zeros would
be a loud, flat artefact that marks the mask, whereas the mean is a neutral level. (SpecAugment's paper
masks with 0 because its features are normalised to zero mean; the per-example mean is the same thing
without requiring normalised features.)
"""

from __future__ import annotations

import torch
import torchaudio.transforms as T
from torch import Tensor, nn

CONFIG_PREFIX = "augmentation.spec_augment"


class SpecAugment(nn.Module):
    """Random frequency bands and frame ranges of each example set to its mean: ``(batch, features, frames)
    -> (batch, features, frames)``; the identity in eval mode or when masking is off.

    Args:
        freq_mask_param: Each frequency mask covers a uniform random number of bands in
            ``[0, freq_mask_param)`` (torchaudio's convention); 0 turns frequency masking off.
        time_mask_param: Each time mask covers a uniform random number of frames in
            ``[0, time_mask_param)``; 0 turns time masking off.
        num_freq_masks: Frequency masks per example (they may overlap).
        num_time_masks: Time masks per example (they may overlap).
    """

    def __init__(
        self,
        freq_mask_param: int = 0,
        time_mask_param: int = 0,
        num_freq_masks: int = 1,
        num_time_masks: int = 1,
    ) -> None:
        super().__init__()
        for key, value in (
            ("freq_mask_param", freq_mask_param),
            ("time_mask_param", time_mask_param),
            ("num_freq_masks", num_freq_masks),
            ("num_time_masks", num_time_masks),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{CONFIG_PREFIX}.{key} must be an integer >= 0 (0 is off), got {value!r}")
        self.freq_mask_param = freq_mask_param
        self.time_mask_param = time_mask_param
        self.num_freq_masks = num_freq_masks if freq_mask_param > 0 else 0
        self.num_time_masks = num_time_masks if time_mask_param > 0 else 0
        self.frequency_masking = T.FrequencyMasking(freq_mask_param, iid_masks=True)
        self.time_masking = T.TimeMasking(time_mask_param, iid_masks=True)

    @property
    def enabled(self) -> bool:
        """Whether any mask is drawn."""
        return self.num_freq_masks > 0 or self.num_time_masks > 0

    def forward(self, features: Tensor) -> Tensor:
        """Mask ``(batch, features, frames) -> (batch, features, frames)`` in training mode.

        Returns ``features`` itself in eval mode or when masking is off; otherwise a new tensor that equals
        ``features`` outside the masks.
        """
        if features.dim() != 3:
            raise ValueError(
                f"expected features of shape (batch, features, frames), got {tuple(features.shape)}"
            )
        if not self.training or not self.enabled:
            return features
        batch, bands, frames = features.shape
        for key, param, size, what in (
            ("freq_mask_param", self.freq_mask_param, bands, "feature bands"),
            ("time_mask_param", self.time_mask_param, frames, "frames"),
        ):
            if param > size:
                raise ValueError(
                    f"{CONFIG_PREFIX}.{key} ({param}) exceeds the {size} {what} of the features; lower it"
                )
        # Masks are drawn on (batch, channel=1, bands, 1) and (batch, 1, 1, frames) tensors of ones (iid
        # masks need a 4-D input) and set to 0 there; masked entries are where either is 0.
        keep_bands = features.new_ones(batch, 1, bands, 1)
        for _ in range(self.num_freq_masks):
            keep_bands = self.frequency_masking(keep_bands)
        keep_frames = features.new_ones(batch, 1, 1, frames)
        for _ in range(self.num_time_masks):
            keep_frames = self.time_masking(keep_frames)
        keep = (keep_bands * keep_frames).squeeze(1) != 0
        mean = features.detach().mean(dim=(1, 2), keepdim=True)
        return torch.where(keep, features, mean)
