"""Post-training dynamic int8 quantisation of a clip classifier's backbone (PyTorch's own API).

Dynamic quantisation stores the weights of ``nn.Linear``, ``nn.LSTM`` and ``nn.GRU`` layers as int8 and
quantises their inputs on the fly at each call; activations stay float32 between layers, so no
calibration data is needed. It covers no convolutions (``nn.Conv1d``/``nn.Conv2d`` stay float32): a
backbone made mostly of convolutions (``model=conv1d``, ``model=bcresnet``) shrinks little, while linear
and recurrent backbones (``model=linear``, ``model=gru``, ``model=lstm``) shrink by close to 4x. Plain
``nn.RNN`` layers (``model=rnn``) have no dynamic int8 version in PyTorch and stay float32 too. The
frontend (STFT, mel filterbank, log) is never quantised: its numerics set the features every layer
after it sees.
"""

from __future__ import annotations

import copy
import logging
import warnings

import torch
from torch import nn

from src.deployment.classifier import WaveformClassifier

log = logging.getLogger(__name__)

QUANTIZED_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.LSTM, nn.GRU)
"""Layer types :func:`quantize_backbone` makes int8: those PyTorch's dynamic quantisation supports that this
project's backbones use."""

BACKBONE_PARTS = ("standardizer", "encoder", "head")
"""Attributes of :class:`WaveformClassifier` that make up the backbone (everything after the frontend)."""

# torch 2.11 deprecates torch.ao.quantization in favour of the separate torchao package; the issue asks for
# PyTorch's own API, so this one warning (and only it) is silenced around the call.
_DEPRECATION_MESSAGE = "torch.ao.quantization is deprecated"


def quantizable_layers(model: WaveformClassifier) -> list[str]:
    """Names (``encoder.layers.0.0``, ``head.linear``, ...) of the backbone layers that
    :func:`quantize_backbone` makes int8, in module order; empty when the backbone has none."""
    return [
        f"{part}.{name}" if name else part
        for part in BACKBONE_PARTS
        if getattr(model, part) is not None
        for name, module in getattr(model, part).named_modules()
        if type(module) in QUANTIZED_TYPES
    ]


def quantize_backbone(model: WaveformClassifier) -> WaveformClassifier:
    """A copy of ``model`` whose backbone's linear and recurrent layers are dynamically quantised to int8.

    Uses ``torch.ao.quantization.quantize_dynamic`` with ``dtype=torch.qint8`` on the standardiser, encoder
    and head of a deep copy; the frontend and ``model`` itself are untouched. The layers quantised are those
    :func:`quantizable_layers` names (``nn.Linear``, ``nn.LSTM``, ``nn.GRU``); they are logged at INFO.
    Convolutions are not covered by dynamic quantisation and stay float32, so a conv-only backbone shrinks
    little (a warning says so when no layer was quantised). torch 2.11 emits a ``DeprecationWarning``
    pointing to ``torchao`` for this API; that one warning is silenced here, the API kept on purpose.

    The result maps ``(batch, clip_samples)`` float32 waveforms to ``(batch, num_classes)`` float32 logits
    like ``model``; int8 kernels run on the CPU only.
    """
    quantized = copy.deepcopy(model).cpu().eval()
    layers = quantizable_layers(quantized)
    if not layers:
        log.warning(
            "quantize=int8: the backbone has no nn.Linear/nn.LSTM/nn.GRU layer, so nothing was quantised "
            "(dynamic quantisation does not cover convolutions)"
        )
        return quantized
    # One container, so that a part that is itself an nn.Linear is swapped too (quantize_dynamic swaps
    # the children of the module it is given, never that module).
    parts = nn.ModuleDict(
        {part: getattr(quantized, part) for part in BACKBONE_PARTS if getattr(quantized, part) is not None}
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_DEPRECATION_MESSAGE, category=DeprecationWarning)
        torch.ao.quantization.quantize_dynamic(parts, set(QUANTIZED_TYPES), dtype=torch.qint8, inplace=True)
    for part, module in parts.items():
        setattr(quantized, part, module)
    log.info("quantize=int8: dynamic int8 weights in %d layers: %s", len(layers), ", ".join(layers))
    return quantized
