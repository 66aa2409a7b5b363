from __future__ import annotations

import pytest
import torch

from src.backbones.bcresnet import BCResNet, SubSpectralNorm, bcresnet_widths
from src.utils.complexity import count_macs, count_parameters

# Parameters and ptflops-aten MACs of the authors' reference BCResNets(int(8 * tau), num_classes=12) on a
# (1, 40, 101) log-mel input, measured with the same counter.
REFERENCE_COUNTS = {
    1.0: (9_232, 2_482_168),
    1.5: (17_154, 4_608_006),
    2.0: (27_284, 7_323_684),
    3.0: (54_168, 14_524_560),
    6.0: (187_812, 50_283_348),
    8.0: (321_068, 85_919_340),
}


@pytest.mark.parametrize("tau", list(REFERENCE_COUNTS))
def test_parameter_count_equals_reference(tau: float) -> None:
    model = BCResNet(in_features=40, num_classes=12, width_multiplier=tau, groups=1)
    assert count_parameters(model) == REFERENCE_COUNTS[tau][0]


@pytest.mark.parametrize("tau", list(REFERENCE_COUNTS))
def test_macs_equal_reference(tau: float) -> None:
    model = BCResNet(in_features=40, num_classes=12, width_multiplier=tau, groups=1)
    assert count_macs(model, (40, 101)) == REFERENCE_COUNTS[tau][1]


@pytest.mark.parametrize("in_features", [10, 20, 30, 40, 80])
@pytest.mark.parametrize("frames", [101, 57])
def test_forward_and_backward_for_any_frequency_and_frame_count(in_features: int, frames: int) -> None:
    model = BCResNet(in_features=in_features, num_classes=7, width_multiplier=1.0)
    logits = model(torch.randn(3, in_features, frames))
    assert logits.shape == (3, 7)
    logits.square().sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(2, in_features, frames))).all()


def test_frequency_strides_round_up_and_40_mels_reach_the_classifier_as_5_rows() -> None:
    model = BCResNet(in_features=40, num_classes=2)
    rows = []
    for block in model.blocks:
        block.register_forward_hook(lambda _module, _inputs, output: rows.append(output.shape[2]))
    model(torch.randn(2, 40, 9))
    assert rows == [20, 20, 10, 10, 5, 5, 5, 5, 5, 5, 5, 5]
    rows.clear()
    model(torch.randn(2, 30, 9))
    assert rows == [15, 15, 8, 8, 4, 4, 4, 4, 4, 4, 4, 4]


def test_widths_are_truncated_like_the_reference() -> None:
    assert bcresnet_widths(1.0) == [16, 8, 12, 16, 20, 32]
    assert bcresnet_widths(1.4) == [22, 11, 16, 22, 27, 44]  # int(11.2), int(16.5), int(27.5)
    model = BCResNet(in_features=40, num_classes=3, width_multiplier=1.4)
    assert model.widths == [22, 11, 16, 22, 27, 44]
    assert model(torch.randn(2, 40, 21)).shape == (2, 3)


def test_width_multiplier_too_small_is_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"model\.width_multiplier=0\.1 gives channel widths"):
        BCResNet(in_features=40, num_classes=2, width_multiplier=0.1)


def test_groups_apply_to_every_pointwise_convolution_and_reduce_parameters() -> None:
    dense = BCResNet(in_features=40, num_classes=12, groups=1)
    grouped = BCResNet(in_features=40, num_classes=12, groups=2)
    pointwise = [m for m in grouped.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)]
    assert len(pointwise) == 12 + 4 + 1  # one per block, one per transition block, one in the classifier
    assert all(m.groups == 2 for m in pointwise)
    others = [m for m in grouped.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)]
    assert all(m.groups in (1, m.in_channels) for m in others)  # head and depthwise convolutions unchanged
    assert count_parameters(grouped) < count_parameters(dense)
    assert grouped(torch.randn(2, 40, 11)).shape == (2, 12)


def test_groups_that_do_not_divide_the_widths_is_a_config_error() -> None:
    with pytest.raises(
        ValueError,
        match=r"model\.groups=3 does not divide the channel widths \[8, 16, 20, 32\] of "
        r"model\.width_multiplier=1\.0 \(widths \[16, 8, 12, 16, 20, 32\]\)",
    ):
        BCResNet(in_features=40, num_classes=12, groups=3)


@pytest.mark.parametrize(("kwargs", "message"), [({"groups": 0}, "groups"), ({"sub_bands": 0}, "sub_bands")])
def test_impossible_settings_fail_at_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=rf"model\.{message} must be >= 1"):
        BCResNet(in_features=40, num_classes=2, **kwargs)


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
