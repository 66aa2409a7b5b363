from __future__ import annotations

import pytest
import torch

from src.encoders.bcresnet import BCResNet, SubSpectralNorm, bcresnet_widths
from src.tasks.heads import ClipClassifierHead
from src.utils.complexity import count_macs, count_parameters

# Parameters and ptflops-aten MACs of the authors' reference BCResNets(int(8 * tau), num_classes=12) on a
# (1, 40, 101) log-mel input, measured with the same counter. The reference classifier is this encoder
# followed by the mean over time and Linear(c[5], 12): the task's mean-pooling clip head without dropout.
REFERENCE_COUNTS = {
    1.0: (9_232, 2_482_168),
    1.5: (17_154, 4_608_006),
    2.0: (27_284, 7_323_684),
    3.0: (54_168, 14_524_560),
    6.0: (187_812, 50_283_348),
    8.0: (321_068, 85_919_340),
}


def reference_classifier(tau: float, num_classes: int = 12) -> tuple[BCResNet, ClipClassifierHead]:
    """BC-ResNet-``tau`` on 40 mels and the clip head that makes it the paper's classifier."""
    encoder = BCResNet(in_features=40, width_multiplier=tau, groups=1)
    head = ClipClassifierHead(encoder.out_features, num_classes, pooling="mean", dropout=0.0)
    return encoder, head


@pytest.mark.parametrize("tau", list(REFERENCE_COUNTS))
def test_parameter_count_equals_reference(tau: float) -> None:
    encoder, head = reference_classifier(tau)
    assert count_parameters(head) == encoder.out_features * 12 + 12
    assert count_parameters(encoder) + count_parameters(head) == REFERENCE_COUNTS[tau][0]


@pytest.mark.parametrize("tau", list(REFERENCE_COUNTS))
def test_macs_equal_reference(tau: float) -> None:
    encoder, head = reference_classifier(tau)
    head_macs = count_macs(head, (101, encoder.out_features))
    assert head_macs == encoder.out_features * 12 + 12  # the mean over frames is not counted
    assert count_macs(encoder, (40, 101)) + head_macs == REFERENCE_COUNTS[tau][1]


def test_with_the_clip_head_it_is_the_reference_classifier() -> None:
    # The reference's forward: mean of the classifier convolution's map over (frequency, time), then Linear.
    encoder, head = reference_classifier(1.0, num_classes=5)
    encoder.eval()
    features = torch.randn(2, 40, 17)
    maps = []
    encoder.classifier_conv.register_forward_hook(lambda _module, _inputs, output: maps.append(output))
    with torch.no_grad():
        sequence, lengths = encoder(features)
        logits = head(sequence, lengths)
        expected = head.classifier(maps[0].mean(dim=(2, 3)))
    assert maps[0].shape == (2, 32, 1, 17)
    torch.testing.assert_close(logits, expected)


@pytest.mark.parametrize("in_features", [10, 20, 30, 40, 80])
@pytest.mark.parametrize("frames", [101, 57])
def test_forward_and_backward_for_any_frequency_and_frame_count(in_features: int, frames: int) -> None:
    encoder = BCResNet(in_features=in_features, width_multiplier=1.0)
    assert encoder.out_features == 32
    sequence, lengths = encoder(torch.randn(3, in_features, frames))
    assert sequence.shape == (3, frames, 32)
    assert lengths.tolist() == [frames] * 3
    sequence.square().sum().backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
    encoder.eval()
    with torch.no_grad():
        assert torch.isfinite(encoder(torch.randn(2, in_features, frames))[0]).all()


@pytest.mark.parametrize("in_features", [20, 40, 64])
@pytest.mark.parametrize("frames", [7, 98])
def test_strides_only_in_frequency_so_every_frame_is_kept(in_features: int, frames: int) -> None:
    encoder = BCResNet(in_features, width_multiplier=0.5)
    maps = []
    encoder.classifier_conv.register_forward_hook(lambda _module, _inputs, output: maps.append(output.shape))
    sequence, lengths = encoder(torch.randn(2, in_features, frames), torch.tensor([frames, 3]))
    # The head and two strided stages halve frequency (rounded up), then the 5-row kernel takes 4 rows off.
    rows = max(1, -(-in_features // 8) - 4)
    assert maps == [(2, encoder.widths[5], rows, frames)]
    assert sequence.shape == (2, frames, encoder.widths[5])
    assert lengths.tolist() == [frames, 3]


def small_encoder(in_features: int = 40) -> BCResNet:
    """A small BC-ResNet whose normalisations have non-trivial running statistics."""
    torch.manual_seed(0)
    encoder = BCResNet(in_features, width_multiplier=0.5)
    for module in encoder.modules():
        if isinstance(module, torch.nn.BatchNorm2d | SubSpectralNorm):
            module.running_mean.normal_(0, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return encoder


def test_padding_does_not_change_the_outputs_of_real_frames() -> None:
    encoder = small_encoder().eval()
    short, long = torch.randn(1, 40, 30), torch.randn(1, 40, 45)
    garbage = 100 * torch.randn(1, 40, 15)  # padding content must not matter, whatever it is
    batch = torch.cat([long, torch.cat([short, garbage], dim=-1)])
    with torch.no_grad():
        padded, lengths = encoder(batch, torch.tensor([45, 30]))
        alone_long, _ = encoder(long)
        alone_short, _ = encoder(short)
    assert lengths.tolist() == [45, 30]
    torch.testing.assert_close(padded[:1], alone_long, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(padded[1:, :30], alone_short, rtol=1e-5, atol=1e-5)


def test_without_lengths_the_padding_reaches_the_real_frames() -> None:
    # The masks matter: the same padded batch without lengths changes the short example's real frames.
    encoder = small_encoder().eval()
    short = torch.randn(1, 40, 30)
    padded = torch.cat([short, 100 * torch.randn(1, 40, 15)], dim=-1)
    with torch.no_grad():
        alone, _ = encoder(short)
        masked, _ = encoder(padded, torch.tensor([30]))
        unmasked, _ = encoder(padded)
    torch.testing.assert_close(masked[:, :30], alone, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(unmasked[:, :30], alone, rtol=1e-3, atol=1e-3)


def test_impossible_lengths_fail() -> None:
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 20\]"):
        small_encoder()(torch.randn(2, 40, 20), torch.tensor([20, 21]))


def test_frequency_strides_round_up_and_40_mels_reach_the_classifier_as_5_rows() -> None:
    encoder = BCResNet(in_features=40)
    rows = []
    for block in encoder.blocks:
        block.register_forward_hook(lambda _module, _inputs, output: rows.append(output.shape[2]))
    encoder(torch.randn(2, 40, 9))
    assert rows == [20, 20, 10, 10, 5, 5, 5, 5, 5, 5, 5, 5]
    rows.clear()
    encoder(torch.randn(2, 30, 9))
    assert rows == [15, 15, 8, 8, 4, 4, 4, 4, 4, 4, 4, 4]


def test_widths_are_truncated_like_the_reference() -> None:
    assert bcresnet_widths(1.0) == [16, 8, 12, 16, 20, 32]
    assert bcresnet_widths(1.4) == [22, 11, 16, 22, 27, 44]  # int(11.2), int(16.5), int(27.5)
    encoder = BCResNet(in_features=40, width_multiplier=1.4)
    assert encoder.widths == [22, 11, 16, 22, 27, 44]
    assert encoder.out_features == 44
    assert encoder(torch.randn(2, 40, 21))[0].shape == (2, 21, 44)


def test_width_multiplier_too_small_is_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"model\.width_multiplier=0\.1 gives channel widths"):
        BCResNet(in_features=40, width_multiplier=0.1)


def test_groups_apply_to_every_pointwise_convolution_and_reduce_parameters() -> None:
    dense = BCResNet(in_features=40, groups=1)
    grouped = BCResNet(in_features=40, groups=2)
    pointwise = [m for m in grouped.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)]
    assert len(pointwise) == 12 + 4 + 1  # one per block, one per transition block, one in the classifier
    assert all(m.groups == 2 for m in pointwise)
    others = [m for m in grouped.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)]
    assert all(m.groups in (1, m.in_channels) for m in others)  # head and depthwise convolutions unchanged
    assert count_parameters(grouped) < count_parameters(dense)
    assert grouped(torch.randn(2, 40, 11))[0].shape == (2, 11, 32)


def test_groups_that_do_not_divide_the_widths_is_a_config_error() -> None:
    with pytest.raises(
        ValueError,
        match=r"model\.groups=3 does not divide the channel widths \[8, 16, 20, 32\] of "
        r"model\.width_multiplier=1\.0 \(widths \[16, 8, 12, 16, 20, 32\]\)",
    ):
        BCResNet(in_features=40, groups=3)


@pytest.mark.parametrize(("kwargs", "message"), [({"groups": 0}, "groups"), ({"sub_bands": 0}, "sub_bands")])
def test_impossible_settings_fail_at_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=rf"model\.{message} must be >= 1"):
        BCResNet(in_features=40, **kwargs)


def test_sub_spectral_norm_equals_batch_norm_over_reshaped_bands_when_bands_divide() -> None:
    torch.manual_seed(0)
    norm = SubSpectralNorm(num_channels=3, sub_bands=5)
    reference = torch.nn.BatchNorm2d(3 * 5)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
        reference.weight.copy_(norm.weight.reshape(-1))
        reference.bias.copy_(norm.bias.reshape(-1))
    x = torch.randn(4, 3, 20, 7) * 3 + 1
    expected = reference(x.reshape(4, 15, 4, 7)).reshape(4, 3, 20, 7)
    torch.testing.assert_close(norm(x), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(norm.running_mean.reshape(-1), reference.running_mean)
    torch.testing.assert_close(norm.running_var.reshape(-1), reference.running_var)
    norm.eval()
    reference.eval()
    torch.testing.assert_close(norm(x), reference(x.reshape(4, 15, 4, 7)).reshape(4, 3, 20, 7))


@pytest.mark.parametrize(
    ("freq", "band_sizes"), [(8, [2, 2, 2, 1, 1]), (13, [3, 3, 3, 2, 2]), (3, [1, 1, 1, 0, 0])]
)
def test_sub_spectral_norm_uses_uneven_bands_of_real_bins_only(freq: int, band_sizes: list[int]) -> None:
    torch.manual_seed(0)
    norm = SubSpectralNorm(num_channels=2, sub_bands=5)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(4, 2, freq, 6) * 2 + 0.5
    out = norm(x)
    start = 0
    for band, size in enumerate(band_sizes):
        piece = x[:, :, start : start + size]
        if size:
            mean = piece.mean(dim=(0, 2, 3), keepdim=True)
            var = piece.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
            weight = norm.weight[:, band].view(1, 2, 1, 1)
            bias = norm.bias[:, band].view(1, 2, 1, 1)
            expected = (piece - mean) / torch.sqrt(var + norm.eps) * weight + bias
            torch.testing.assert_close(out[:, :, start : start + size], expected, rtol=1e-5, atol=1e-5)
            unbiased = piece.var(dim=(0, 2, 3), unbiased=True)
            torch.testing.assert_close(norm.running_mean[:, band], 0.1 * mean.flatten())
            torch.testing.assert_close(norm.running_var[:, band], 0.9 + 0.1 * unbiased)
        else:  # an empty band keeps its running statistics
            assert torch.equal(norm.running_mean[:, band], torch.zeros(2))
            assert torch.equal(norm.running_var[:, band], torch.ones(2))
        start += size
    assert start == freq
