"""Low-rank factorisation of the backbone (``compression=lowrank compression.rank=D``).

Every ``nn.Linear`` and every pointwise (kernel 1) ``nn.Conv1d``/``nn.Conv2d`` of the backbone (encoder and
heads) whose rank-``D`` factors hold fewer weights, ``D * (in_g + out_g) < in_g * out_g`` per group, becomes
a :class:`src.compression.factors.LowRankLayer` (``W ≈ U Vᵀ``, two layers); every other such layer is left
alone and listed with the reason. Layers inside an :class:`src.utils.complexity.ExactMacs` module (whose
MACs are counted analytically from its own structure) are left alone too. Convolutions with larger kernels,
recurrent cells and normalisations are not candidates. The frontend is never touched.

Trained from scratch at rank ``D`` (PyTorch's default initialisation of both factors), or, with
``compression.from_ckpt``, started from a trained checkpoint of the same configuration: each factorised
layer gets the truncated SVD of the source's weights (``U = U_D sqrt(S_D)``, ``V = V_D sqrt(S_D)``, the
bias kept), every other weight is copied.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from src.compression.base import Compression, CompressionReport, LayerChange
from src.compression.factors import LowRankLayer, dense_matrices, dense_state
from src.utils.complexity import ExactMacs

log = logging.getLogger(__name__)

FULL_RANK = "full"
"""``compression.rank=full`` (or ``null``): no factorisation."""


def parse_rank(rank: object) -> int | None:
    """``compression.rank`` as an int ``>= 1``, or ``None`` for ``full``/``null`` (no factorisation).

    Raises:
        ValueError: for anything else, naming ``compression.rank`` and values that work.
    """
    if rank is None or rank == FULL_RANK:
        return None
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(
            f"compression.rank must be an integer >= 1, or full (null) for no factorisation, got {rank!r}: "
            "e.g. compression.rank=20"
        )
    return rank


def is_candidate(module: nn.Module) -> bool:
    """Whether ``module`` is an ``nn.Linear`` or a pointwise (kernel 1) ``nn.Conv1d``/``nn.Conv2d`` (exact
    types: subclasses, such as the output projection that ``nn.MultiheadAttention`` reads directly, are
    not)."""
    if type(module) is nn.Linear:
        return True
    return type(module) in (nn.Conv1d, nn.Conv2d) and all(size == 1 for size in module.kernel_size)


def describe(name: str, layer: nn.Linear | nn.Conv1d | nn.Conv2d) -> LayerChange:
    """A candidate layer as built (nothing decided yet)."""
    matrices, bias = dense_matrices(layer)
    groups, out_g, in_g = matrices.shape
    return LayerChange(
        name=name,
        kind=type(layer).__name__,
        in_features=groups * in_g,
        out_features=groups * out_g,
        groups=groups,
        params=matrices.numel() + (0 if bias is None else bias.numel()),
    )


def factorised_params(change: LayerChange, rank: int) -> int:
    """Parameters of ``change``'s layer at rank ``rank``: ``rank * (in_features + out_features)`` weights
    (``rank * (in_g + out_g)`` per group) plus the bias."""
    bias = change.params - change.in_features * change.out_features // change.groups
    return rank * (change.in_features + change.out_features) + bias


class LowRankCompression(Compression):
    """Rank-``rank`` factors for every linear and pointwise convolution layer of the backbone where they
    save parameters (see the module docstring).

    Args:
        rank: ``D``, the rank of every factorised layer; ``None`` or ``"full"``: no factorisation (every
            candidate left alone; with ``from_ckpt`` the source is fine-tuned as it is).
        from_ckpt: a ``train.py`` checkpoint of the same frontend, model, head and data; when training
            starts (not when a checkpoint of this run is loaded) its weights are loaded, the factorised
            layers from their truncated SVD.

    Raises:
        ValueError: for a ``rank`` that is not an integer >= 1, ``full`` or null, or a ``from_ckpt`` that
            is not a path (naming ``compression.rank`` / ``compression.from_ckpt``).
    """

    method = "lowrank"

    def __init__(self, rank: int | str | None = 20, from_ckpt: str | None = None) -> None:
        super().__init__()
        self.rank = parse_rank(rank)
        if from_ckpt is not None and not isinstance(from_ckpt, str):
            raise ValueError(
                f"compression.from_ckpt must be the path of a train.py checkpoint or null, got {from_ckpt!r}"
            )
        self.from_ckpt = from_ckpt or None
        self.report = CompressionReport(self.method, self.settings())

    def settings(self) -> dict[str, Any]:
        """``rank`` (``"full"`` for none) and ``from_ckpt``, as ``metrics.json`` lists them."""
        return {"rank": FULL_RANK if self.rank is None else self.rank, "from_ckpt": self.from_ckpt}

    def leave_alone_because(self, change: LayerChange, inside_exact: str | None) -> str:
        """Why the layer of ``change`` stays dense (empty: it is factorised)."""
        if self.rank is None:
            return "compression.rank=full: no factorisation"
        if inside_exact is not None:
            return f"inside {inside_exact} (ExactMacs), whose MAC count is analytic"
        in_g, out_g = change.in_features // change.groups, change.out_features // change.groups
        factored, dense = self.rank * (in_g + out_g), in_g * out_g
        if factored >= dense:
            per_group = " per group" if change.groups > 1 else ""
            return (
                f"rank {self.rank} saves nothing: {self.rank} x ({in_g} + {out_g}) = {factored} >= "
                f"{in_g} x {out_g} = {dense} weights{per_group}"
            )
        return ""

    def compress(self, root: nn.Module, parts: Sequence[str]) -> CompressionReport:
        """Replace the factorisable layers of the submodules ``parts`` of ``root`` in place (see the class
        docstring); the report lists every candidate, replaced or left alone, by its name in ``root``."""
        replaced: list[LayerChange] = []
        left_alone: list[LayerChange] = []
        for part in parts:
            modules = list(root.get_submodule(part).named_modules(prefix=part))
            exact = [name for name, module in modules if isinstance(module, ExactMacs)]
            for name, module in modules:
                if not is_candidate(module):
                    continue
                change = describe(name, module)
                inside_exact = next((e for e in exact if name.startswith(f"{e}.")), None)
                reason = self.leave_alone_because(change, inside_exact)
                if reason:
                    left_alone.append(replace(change, reason=reason))
                    continue
                root.set_submodule(name, LowRankLayer.replacing(module, self.rank))
                after = factorised_params(change, self.rank)
                replaced.append(replace(change, params_after=after))
        self.report = CompressionReport(self.method, self.settings(), replaced, left_alone)
        for change in left_alone:
            log.info("compression=lowrank left %s (%s) alone: %s", change.name, change.kind, change.reason)
        log.info(
            "compression=lowrank rank %s: %d layers factorised, %d left alone, %d parameters saved",
            self.settings()["rank"],
            len(replaced),
            len(left_alone),
            self.report.params_saved,
        )
        return self.report

    @torch.no_grad()
    def initial_state(self, target: nn.Module, source: nn.Module) -> dict[str, Tensor]:
        """``target``'s ``state_dict`` started from ``source``: every layer :meth:`compress` considered
        gets the source layer's dense weights (a low-rank source layer's product ``U Vᵀ``), by truncated
        SVD where ``target`` factorised it; everything else is the source's entry of the same name. The
        relative Frobenius error of each SVD is kept in :attr:`svd_relative_errors`.

        Raises:
            KeyError, AttributeError, ValueError: when ``source`` lacks an entry or layer of ``target``,
                or a layer's weights do not fit (the task names ``compression.from_ckpt``).
        """
        state: dict[str, Tensor] = {}
        errors: dict[str, float] = {}
        for change in [*self.report.replaced, *self.report.left_alone]:
            layer = target.get_submodule(change.name)
            source_layer = source.get_submodule(change.name)
            if not (is_candidate(source_layer) or isinstance(source_layer, LowRankLayer)):
                raise ValueError(f"{change.name} of the source is a {type(source_layer).__name__}")
            matrices, bias = dense_matrices(source_layer)
            if isinstance(layer, LowRankLayer):
                entries = layer.state_from_dense(matrices, bias)
                u, v = entries["u.weight"], entries["v.weight"]
                product = u.reshape(layer.groups, -1, layer.rank) @ v.reshape(layer.groups, layer.rank, -1)
                error = torch.linalg.norm(matrices - product) / torch.linalg.norm(matrices).clamp_min(1e-30)
                errors[change.name] = float(error)
            else:
                entries = dense_state(layer, matrices, bias)
            state.update({f"{change.name}.{key}": value for key, value in entries.items()})
        layers = tuple(f"{change.name}." for change in [*self.report.replaced, *self.report.left_alone])
        source_state = source.state_dict()
        for key in target.state_dict():
            if key not in state and not key.startswith(layers):
                state[key] = source_state[key]
        self.initialisation = {"svd_relative_error": errors}
        return state
