"""BC-ResNet: broadcasted residual learning over (frequency, time) log-mel maps.

Kim et al., "Broadcasted Residual Learning for Efficient Keyword Spotting", Interspeech 2021. The layout,
widths, paddings and strides follow the authors' reference implementation (Qualcomm AI Research,
``bcresnet.py``), so that at 40 mel bands the parameter and MAC counts equal the reference's; the two
additions (uneven sub-bands in :class:`SubSpectralNorm` and zero padding before the classifier when fewer
than 5 frequency rows remain) only act on frequency sizes the reference does not accept.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from src.encoders.base import Encoder
from src.encoders.config_values import common_divisors
from src.utils.config_values import positive_int, positive_number, probability
from src.utils.lengths import check_lengths, frame_mask, full_lengths

STAGE_DEPTHS = (2, 2, 4, 4)
"""Blocks per stage; the first block of a stage is a transition block (its width changes)."""

STRIDED_STAGES = (1, 2)
"""Stages whose first block halves the frequency axis."""

CLASSIFIER_KERNEL = 5
"""Frequency and time extent of the classifier's depthwise convolution."""


def bcresnet_widths(width_multiplier: float) -> list[int]:
    """Channel widths of BC-ResNet-``tau``: head, output of each of the 4 stages, classifier.

    As in the reference, the base width is ``int(8 * tau)`` and fractional widths are truncated by ``int``:
    ``[2b, b, int(1.5 b), 2b, int(2.5 b), 4b]`` with ``b = int(8 * tau)``.
    """
    base = int(width_multiplier * 8)
    return [base * 2, base, int(base * 1.5), base * 2, int(base * 2.5), base * 4]


class SubSpectralNorm(nn.Module):
    """Batch normalisation with its own statistics and affine parameters per (channel, frequency sub-band).

    ``(batch, channels, freq, frames) -> (batch, channels, freq, frames)``. The frequency axis is cut into
    ``sub_bands`` contiguous bands and each (channel, band) pair is normalised over batch, the band's bins
    and time, as ``BatchNorm2d(channels * sub_bands)`` on the reshaped input in the reference.

    The reference requires ``freq % sub_bands == 0``. Here a frequency size that does not divide is split
    into uneven bands the way ``torch.tensor_split`` does: the first ``freq % sub_bands`` bands hold
    ``freq // sub_bands + 1`` bins, the others ``freq // sub_bands``. Every bin is normalised with
    statistics of real bins only (no padding enters the statistics). When ``freq < sub_bands`` the last
    ``sub_bands - freq`` bands are empty: their parameters get zero gradient and their running statistics
    stay as they are. When the size divides, the result is exactly the reference's.

    Args:
        num_channels: channels of the input.
        sub_bands: number of frequency sub-bands.
        eps: added to the variance, as in ``BatchNorm2d``.
        momentum: running-statistics momentum, as in ``BatchNorm2d``.
    """

    def __init__(
        self, num_channels: int, sub_bands: int = 5, eps: float = 1e-5, momentum: float = 0.1
    ) -> None:
        super().__init__()
        if sub_bands < 1:
            raise ValueError(f"model.sub_bands must be >= 1, got {sub_bands}")
        self.sub_bands = sub_bands
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(num_channels, sub_bands))
        self.bias = nn.Parameter(torch.zeros(num_channels, sub_bands))
        self.register_buffer("running_mean", torch.zeros(num_channels, sub_bands))
        self.register_buffer("running_var", torch.ones(num_channels, sub_bands))

    def band_groups(self, freq: int) -> list[tuple[int, int, int]]:
        """Runs of equal-size bands as ``(first_band, num_bands, bins_per_band)``, empty bands left out."""
        bins, larger = divmod(int(freq), self.sub_bands)  # an int also while torch.jit.trace runs
        runs = [(0, larger, bins + 1), (larger, self.sub_bands - larger, bins)]
        return [(first, count, size) for first, count, size in runs if count > 0 and size > 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``(batch, channels, freq, frames)`` per (channel, sub-band); same shape out."""
        batch, channels, _, frames = x.shape
        pieces = []
        start = 0
        for first, count, size in self.band_groups(x.shape[2]):
            stop = start + count * size
            bands = slice(first, first + count)
            # (batch, channels, count * size, frames) -> (batch, channels * count, size, frames):
            # feature index c * count + band, matching the (channels, bands) layout of the parameters.
            piece = x[:, :, start:stop].reshape(batch, channels * count, size, frames)
            # Copies, updated in place by batch_norm and written back below: autograd saves them, so the
            # buffers themselves must not be what batch_norm receives.
            running_mean = self.running_mean[:, bands].reshape(-1).clone()
            running_var = self.running_var[:, bands].reshape(-1).clone()
            normalised = F.batch_norm(
                piece,
                running_mean,
                running_var,
                self.weight[:, bands].reshape(-1),
                self.bias[:, bands].reshape(-1),
                training=self.training,
                momentum=self.momentum,
                eps=self.eps,
            )
            if self.training:
                with torch.no_grad():
                    self.running_mean[:, bands] = running_mean.view(channels, count)
                    self.running_var[:, bands] = running_var.view(channels, count)
            pieces.append(normalised.reshape(batch, channels, count * size, frames))
            start = stop
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=2)


class BCResBlock(nn.Module):
    """One broadcasted residual block: ``(batch, c_in, freq, frames) -> (batch, c_out, freq', frames)``.

    2-D part ``f2``: (transition blocks only) ``Conv 1x1 (groups) -> BN -> ReLU``, then a frequency-wise
    depthwise ``Conv (3, 1)`` with frequency stride ``freq_stride`` and padding 1 (so
    ``freq' = ceil(freq / freq_stride)`` for any ``freq``) and :class:`SubSpectralNorm`.
    1-D part ``f1`` on the frequency average ``(batch, c_out, 1, frames)``: temporal depthwise ``Conv (1, 3)``
    with dilation ``2 ** stage`` and padding ``2 ** stage`` (frames unchanged) ``-> BN -> SiLU ->
    Conv 1x1 (groups) -> Dropout2d``. Output ``ReLU(f1 broadcast over frequency + f2 [+ input])``; the
    identity shortcut is only added when the width does not change.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stage: int,
        freq_stride: int,
        groups: int,
        sub_bands: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.is_transition = in_channels != out_channels
        layers: list[nn.Module] = []
        if self.is_transition:
            layers += [
                nn.Conv2d(in_channels, out_channels, 1, groups=groups, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(),
            ]
        layers += [
            nn.Conv2d(
                out_channels,
                out_channels,
                (3, 1),
                stride=(freq_stride, 1),
                padding=(1, 0),
                groups=out_channels,
                bias=False,
            ),
            SubSpectralNorm(out_channels, sub_bands),
        ]
        self.f2 = nn.Sequential(*layers)
        dilation = 2**stage
        self.f1 = nn.Sequential(
            nn.Conv2d(
                out_channels,
                out_channels,
                (1, 3),
                padding=(0, dilation),
                dilation=(1, dilation),
                groups=out_channels,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
            nn.SiLU(),
            nn.Conv2d(out_channels, out_channels, 1, groups=groups, bias=False),
            nn.Dropout2d(dropout),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(batch, c_in, freq, frames) -> (batch, c_out, freq', frames)``.

        ``mask`` ``(batch, 1, 1, frames)`` (1 on real frames, 0 on padding), if given, zeroes the
        padded frames of the temporal branch's input, the only part of the block that mixes frames.
        """
        spectral = self.f2(x)
        temporal = spectral.mean(dim=2, keepdim=True)
        if mask is not None:
            temporal = temporal * mask
        out = spectral + self.f1(temporal)
        if not self.is_transition:
            out = out + x
        return F.relu(out)


class BCResNet(Encoder):
    """BC-ResNet-``tau`` up to its pooling over time, as an encoder of frames (``model=bcresnet``).

    ``(batch, in_features, frames) -> (batch, frames, c[5])``; the features become a one-channel image
    ``(batch, 1, in_features, frames)`` (frequency, time), the layers below give ``(batch, c[5], rows,
    frames)``, and the mean over the ``rows`` frequency rows (1 for 40 mel bands) leaves ``c[5]`` features
    per frame. The paper's classifier is this encoder with the task's mean-pooling clip head (mean over
    frames, then ``Linear(c[5], num_classes)``); a per-frame head gives the CTC variant. Layout, with
    widths ``c`` from :func:`bcresnet_widths`:

    - head: ``Conv 5x5``, stride (2, 1), padding 2 ``-> BN -> ReLU`` to ``c[0]`` channels;
    - 4 stages of (2, 2, 4, 4) :class:`BCResBlock` with widths ``c[1..4]`` and temporal dilation
      ``2 ** stage``; the first block of stages 1 and 2 has frequency stride 2;
    - classifier convolution: depthwise ``Conv 5x5``, padding (0, 2) ``-> Conv 1x1 (groups)`` to ``c[5]``
      ``-> BN -> ReLU``.

    No layer strides or pools in time, so every frame is kept. Every frequency stride pads so the size
    becomes ``ceil(freq / 2)``, whatever its parity; 40 mel bands give 20, 10, 5 rows, which the
    classifier's unpadded 5-row kernel collapses to ``rows = 1``. With fewer than 5 rows left
    (``in_features <= 32``) the rows are zero-padded symmetrically to 5 first, as convolution padding
    would; more rows leave several. Sub-spectral norms whose frequency size is not a multiple of
    ``sub_bands`` use uneven bands (see :class:`SubSpectralNorm`).

    ``groups`` is the ``groups`` of every pointwise (1x1) convolution (transition, ``f1`` and classifier
    convolutions); the head and the depthwise convolutions are unaffected.

    Args:
        in_features: features per frame delivered by the frontend (set by the task).
        width_multiplier: ``tau`` of BC-ResNet-``tau``; widths as :func:`bcresnet_widths`.
        groups: ``groups`` of the pointwise convolutions; must divide every width.
        sub_bands: frequency sub-bands of every :class:`SubSpectralNorm` (5 in the reference).
        dropout: ``Dropout2d`` probability at the end of each block's temporal branch (0.1 in the reference).

    Raises:
        ValueError: for a setting that cannot work (``width_multiplier`` below 0.125, ``groups`` or
            ``sub_bands`` that are not integers >= 1, ``groups`` that does not divide every width,
            ``dropout`` outside ``[0, 1)``), naming the ``model.<key>``.
    """

    def __init__(
        self,
        in_features: int,
        width_multiplier: float = 1.0,
        groups: int = 1,
        sub_bands: int = 5,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        positive_number("model.width_multiplier", width_multiplier, 1.0)
        positive_int("model.groups", groups, 1)
        positive_int("model.sub_bands", sub_bands, 5)
        probability("model.dropout", dropout, 0.1)
        widths = bcresnet_widths(width_multiplier)
        if min(widths) < 1:
            raise ValueError(
                f"model.width_multiplier={width_multiplier} gives channel widths {widths}: "
                "it must be at least 0.125 so that int(8 * width_multiplier) >= 1"
            )
        not_divisible = sorted({c for c in widths if c % groups})
        if not_divisible:
            divisors = common_divisors(widths)
            example = max(d for d in divisors if d < groups)
            raise ValueError(
                f"model.groups={groups} does not divide the channel widths {not_divisible} of "
                f"model.width_multiplier={width_multiplier} (widths {widths}): choose groups among the "
                f"common divisors of the widths ({', '.join(map(str, divisors))}; e.g. "
                f"model.groups={example})"
            )
        self.in_features = in_features
        self.widths = widths
        self.out_features = widths[5]

        self.head = nn.Sequential(
            nn.Conv2d(1, widths[0], 5, stride=(2, 1), padding=2, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        )
        blocks = []
        for stage, depth in enumerate(STAGE_DEPTHS):
            for index in range(depth):
                blocks.append(
                    BCResBlock(
                        widths[stage] if index == 0 else widths[stage + 1],
                        widths[stage + 1],
                        stage=stage,
                        freq_stride=2 if stage in STRIDED_STAGES and index == 0 else 1,
                        groups=groups,
                        sub_bands=sub_bands,
                        dropout=dropout,
                    )
                )
        self.blocks = nn.Sequential(*blocks)
        self.classifier_conv = nn.Sequential(
            nn.Conv2d(
                widths[4],
                widths[4],
                CLASSIFIER_KERNEL,
                padding=(0, CLASSIFIER_KERNEL // 2),
                groups=widths[4],
                bias=False,
            ),
            nn.Conv2d(widths[4], widths[5], 1, groups=groups, bias=False),
            nn.BatchNorm2d(widths[5]),
            nn.ReLU(),
        )

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, in_features, frames), (batch,) -> (batch, frames, c[5]), (batch,)``.

        The padded frames (after ``lengths``; ``None``: every frame is real) are set to zero before every
        layer that mixes frames (the head, each block's temporal branch, the classifier's depthwise
        convolution), so a real frame next to the padding sees the zeros that convolution padding gives an
        unpadded example: the real frames' outputs do not depend on the padding (in eval mode; in training
        mode the batch statistics of the normalisations include the padded frames). Every frame is kept
        (``lengths' = lengths``).
        """
        batch, _, frames = features.shape
        if lengths is None:
            lengths = full_lengths(batch, frames, features.device)
        check_lengths(lengths, batch, frames)
        mask = frame_mask(lengths.to(features.device), frames).view(batch, 1, 1, frames).to(features.dtype)
        hidden = self.head(features.unsqueeze(1) * mask)
        for block in self.blocks:
            hidden = block(hidden, mask)
        hidden = hidden * mask
        missing_rows = CLASSIFIER_KERNEL - hidden.shape[2]
        if missing_rows > 0:
            hidden = F.pad(hidden, (0, 0, missing_rows // 2, missing_rows - missing_rows // 2))
        # (batch, c[5], rows, frames) -> (batch, frames, c[5])
        return self.classifier_conv(hidden).mean(dim=2).transpose(1, 2), lengths
