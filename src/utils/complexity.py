"""Parameter and multiply-accumulate (MAC) counts of frontends, encoders and heads.

MACs come from ptflops' ``aten`` backend, which counts matrix products and convolutions
(``aten.mm/matmul/addmm/bmm/convolution``; a bias add counts one MAC per output element) and nothing else:
no normalisation, activation or pooling. Two kinds of operation it does not see fully are handled here:

- operations it cannot see at all, such as ``torch.stft``: a frontend counts them itself
  (:meth:`src.frontends.base.Frontend.analytic_macs`) and the task adds them;
- recurrent layers, which it sees only partly, depending on the CPU kernel (the oneDNN LSTM kernel is
  invisible, GRU and RNN decompose into ``addmm``/``mm`` calls whose bias is seen or not depending on the
  input's layout): a submodule that subclasses :class:`ExactMacs` declares its exact count, and
  :func:`count_macs` replaces what the ``aten`` backend saw of it by that count.
"""

from __future__ import annotations

import copy
import io
from typing import Any

import torch
from ptflops import get_model_complexity_info
from torch import nn


class ExactMacs(nn.Module):
    """A module whose MACs :func:`count_macs` takes from :meth:`exact_macs` instead of ptflops.

    Subclasses implement :meth:`exact_macs`; ``count_macs`` records the input shape each such submodule
    receives during its one probe pass, subtracts what the ``aten`` backend saw of the submodule on that
    input and adds the exact count.
    """

    def exact_macs(self, input_shape: tuple[int, ...]) -> int:
        """Exact MACs of one forward pass on one example of ``input_shape`` (no batch dimension)."""
        raise NotImplementedError


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in module.parameters())


def _aten_macs(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    log = io.StringIO()
    macs, _ = get_model_complexity_info(
        module,
        input_shape,
        input_constructor=lambda shape: torch.zeros(1, *shape),
        as_strings=False,
        print_per_layer_stat=False,
        backend="aten",
        ost=log,
    )
    if macs is None:
        raise RuntimeError(f"ptflops could not count {type(module).__name__}: {log.getvalue()}")
    return int(macs)


def count_macs(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """MACs of one forward pass on a single example (``module(torch.zeros(1, *input_shape))``).

    Args:
        module: the module to measure; it is not modified (a CPU copy in eval mode is measured).
        input_shape: shape of one example without the batch dimension, e.g. ``(num_samples,)`` for a
            frontend or ``(features, frames)`` for an encoder.

    Returns:
        ptflops' ``aten`` count, with the part it saw of every :class:`ExactMacs` submodule replaced by
        that submodule's :meth:`ExactMacs.exact_macs`.

    Raises:
        RuntimeError: when ptflops cannot run the module (its log is in the message).
    """
    probe = copy.deepcopy(module).cpu().eval()
    shapes: list[tuple[ExactMacs, tuple[int, ...]]] = []

    def record(submodule: nn.Module, args: tuple[Any, ...]) -> None:
        shapes.append((submodule, tuple(args[0].shape[1:])))

    hooks = [m.register_forward_pre_hook(record) for m in probe.modules() if isinstance(m, ExactMacs)]
    try:
        macs = _aten_macs(probe, input_shape)
    finally:
        for hook in hooks:
            hook.remove()
    # ptflops may run the module more than once; each submodule is counted for its first input.
    counted: dict[int, tuple[ExactMacs, tuple[int, ...]]] = {}
    for submodule, shape in shapes:
        counted.setdefault(id(submodule), (submodule, shape))
    for submodule, shape in counted.values():
        macs += submodule.exact_macs(shape) - _aten_macs(submodule, shape)
    return macs


def serialized_bytes(module: nn.Module) -> int:
    """Bytes of ``module``'s ``state_dict`` saved with ``torch.save``: its size on disk (parameters and
    buffers at their stored dtypes, packed int8 weights of a quantised module included)."""
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.getbuffer().nbytes
