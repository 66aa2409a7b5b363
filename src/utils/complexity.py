"""Parameter and multiply-accumulate (MAC) counts of frontends and backbones.

MACs come from ptflops' ``aten`` backend, which counts matrix products and convolutions
(``aten.mm/matmul/addmm/bmm/convolution``; a bias add counts one MAC per output element) and
nothing else: no normalisation, activation or pooling. Operations it cannot see, such as
``torch.stft``, are counted analytically by the module itself: a module that defines
``analytic_macs(*input_shape) -> int`` has that number added.
"""

from __future__ import annotations

import copy
import io

import torch
from ptflops import get_model_complexity_info
from torch import nn


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in module.parameters())


def count_macs(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """MACs of one forward pass on a single example.

    Args:
        module: the module to measure; it is not modified (a CPU copy is measured).
        input_shape: shape of one example without the batch dimension, e.g. ``(num_samples,)``
            for a frontend or ``(features, frames)`` for a backbone.

    Returns:
        ptflops' ``aten`` count plus ``module.analytic_macs(*input_shape)`` where defined.
    """
    probe = copy.deepcopy(module).cpu().eval()
    log = io.StringIO()
    macs, _ = get_model_complexity_info(
        probe,
        input_shape,
        input_constructor=lambda shape: torch.zeros(1, *shape),
        as_strings=False,
        print_per_layer_stat=False,
        backend="aten",
        ost=log,
    )
    if macs is None:
        raise RuntimeError(f"ptflops could not count {type(module).__name__}: {log.getvalue()}")
    analytic = getattr(probe, "analytic_macs", None)
    return int(macs) + (int(analytic(*input_shape)) if analytic is not None else 0)
