"""SpecAugment masking: the identity when off or in eval mode, else masks of the requested sizes set to
the mean."""

from __future__ import annotations

import pytest
import torch

from src.frontends.spec_augment import SpecAugment

BANDS, FRAMES = 40, 101


def log_mel_like(batch: int, seed: int = 0) -> torch.Tensor:
    """``(batch, BANDS, FRAMES)`` negative, log-energy-like values that never equal their mean."""
    generator = torch.Generator().manual_seed(seed)
    return -8.0 + 3.0 * torch.rand(batch, BANDS, FRAMES, generator=generator)


def masked_runs(masked: torch.Tensor) -> list[tuple[int, int]]:
    """``(start, width)`` of each run of ``True`` in a 1-D bool tensor."""
    runs, start = [], None
    for index, value in enumerate([*masked.tolist(), False]):
        if value and start is None:
            start = index
        elif not value and start is not None:
            runs.append((start, index - start))
            start = None
    return runs


def test_off_by_default_and_in_eval_mode_is_the_identity() -> None:
    features = log_mel_like(4)
    off = SpecAugment()
    assert not off.enabled
    assert off(features) is features
    assert not SpecAugment(freq_mask_param=8, num_freq_masks=0).enabled
    on = SpecAugment(freq_mask_param=8, time_mask_param=11, num_freq_masks=2, num_time_masks=2).eval()
    assert on(features) is features


def test_masks_are_single_bands_and_frame_ranges_of_the_requested_sizes_set_to_the_mean() -> None:
    torch.manual_seed(0)
    features = log_mel_like(256)
    augment = SpecAugment(freq_mask_param=8, time_mask_param=11)
    out = augment(features)
    assert out.shape == features.shape and out.dtype == features.dtype
    changed = out != features
    mean = features.mean(dim=(1, 2))
    band_widths, frame_widths = [], []
    for example in range(len(features)):
        assert torch.equal(out[example][changed[example]], mean[example].expand(int(changed[example].sum())))
        band_masked = changed[example].all(dim=1)
        frame_masked = changed[example].all(dim=0)
        # Every changed entry lies in a fully masked band or a fully masked frame.
        assert torch.equal(changed[example], band_masked[:, None] | frame_masked[None, :])
        band_runs, frame_runs = masked_runs(band_masked), masked_runs(frame_masked)
        assert len(band_runs) <= 1 and len(frame_runs) <= 1  # one contiguous mask each
        band_widths.append(band_runs[0][1] if band_runs else 0)
        frame_widths.append(frame_runs[0][1] if frame_runs else 0)
    # Widths are uniform in [0, param): every width occurs, the parameter itself never.
    assert set(band_widths) == set(range(8))
    assert set(frame_widths) == set(range(11))
    # Independent masks per example: their positions differ.
    band_masks = {tuple(changed[example].all(dim=1).nonzero().flatten().tolist()) for example in range(256)}
    assert len(band_masks) > 20


def test_several_masks_per_axis_cover_at_most_their_total_width() -> None:
    torch.manual_seed(1)
    features = log_mel_like(256)
    out = SpecAugment(freq_mask_param=8, num_freq_masks=2, time_mask_param=5, num_time_masks=3)(features)
    changed = out != features
    masked_bands = changed.all(dim=2).sum(dim=1)
    masked_frames = changed.all(dim=1).sum(dim=1)
    assert int(masked_bands.max()) <= 2 * 7 and int(masked_frames.max()) <= 3 * 4
    assert int(masked_bands.max()) > 7  # two masks do cover more than one can
    assert max(len(masked_runs(changed[i].all(dim=1))) for i in range(256)) == 2


def test_frequency_masking_alone_leaves_every_frame_partly_unmasked() -> None:
    torch.manual_seed(2)
    features = log_mel_like(32)
    changed = SpecAugment(freq_mask_param=10)(features) != features
    assert changed.any()
    assert not changed.all(dim=1).any()


def test_same_seed_same_masks() -> None:
    features = log_mel_like(16)
    augment = SpecAugment(freq_mask_param=8, time_mask_param=11, num_freq_masks=2, num_time_masks=2)
    torch.manual_seed(3)
    first = augment(features)
    torch.manual_seed(3)
    second = augment(features)
    third = augment(features)
    assert torch.equal(first, second)
    assert not torch.equal(first, third)


def test_gradients_reach_only_unmasked_features() -> None:
    torch.manual_seed(4)
    features = log_mel_like(8).requires_grad_()
    out = SpecAugment(freq_mask_param=8, time_mask_param=11)(features)
    out.sum().backward()
    unmasked = out.detach() == features.detach()
    assert torch.equal(features.grad, unmasked.float())


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"freq_mask_param": -1}, "augmentation.spec_augment.freq_mask_param"),
        ({"time_mask_param": 2.5}, "augmentation.spec_augment.time_mask_param"),
        ({"num_freq_masks": -2}, "augmentation.spec_augment.num_freq_masks"),
        ({"num_time_masks": True}, "augmentation.spec_augment.num_time_masks"),
    ],
)
def test_bad_settings_name_their_key(settings: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        SpecAugment(**settings)


def test_masks_wider_than_the_features_and_wrong_shapes_are_refused() -> None:
    prefix = r"augmentation\.spec_augment\."
    with pytest.raises(ValueError, match=prefix + r"freq_mask_param \(41\) exceeds the 40"):
        SpecAugment(freq_mask_param=41)(log_mel_like(2))
    with pytest.raises(ValueError, match=prefix + r"time_mask_param \(200\) exceeds the 101"):
        SpecAugment(time_mask_param=200)(log_mel_like(2))
    with pytest.raises(ValueError, match=r"\(batch, features, frames\)"):
        SpecAugment(freq_mask_param=4)(log_mel_like(2)[0])
