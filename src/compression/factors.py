"""Rank-``D`` factors of a linear map: the layer that replaces a dense one, and the truncated SVD that
initialises it from the dense weights.

A dense layer of ``groups`` groups (1 for ``nn.Linear``; a pointwise convolution's ``groups``) is, per group
``j``, a matrix ``W_j`` of shape ``(out_g, in_g)`` = ``(out_features / groups, in_features / groups)``. Its
rank-``D`` replacement :class:`LowRankLayer` computes ``U_j (V_jᵀ x)`` with ``V_jᵀ`` of shape ``(D,
in_g)`` and ``U_j`` of shape ``(out_g, D)``: two layers of the dense layer's kind, ``v`` (no bias) then
``u`` (the dense layer's bias), with ``D * (in_g + out_g)`` weights per group instead of ``in_g * out_g``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

DenseLayer = nn.Linear | nn.Conv1d | nn.Conv2d
"""The layers :class:`LowRankLayer` replaces (convolutions with a kernel of 1 only)."""


def layer_groups(layer: nn.Module) -> int:
    """``groups`` of a convolution, 1 for a linear layer."""
    return int(getattr(layer, "groups", 1))


def dense_matrices(layer: DenseLayer | LowRankLayer) -> tuple[Tensor, Tensor | None]:
    """The per-group matrices ``(groups, out_g, in_g)`` and the ``(out_features,)`` bias (``None`` when the
    layer has none) of a dense layer (``nn.Linear``, or a convolution with a kernel of 1) or of a
    :class:`LowRankLayer` (``U_j V_jᵀ``)."""
    if isinstance(layer, LowRankLayer):
        u, v = layer.factor_matrices()
        return u @ v, layer.u.bias
    groups = layer_groups(layer)
    return layer.weight.reshape(groups, layer.weight.shape[0] // groups, -1), layer.bias


def truncated_svd(matrices: Tensor, rank: int) -> tuple[Tensor, Tensor]:
    """The best rank-``rank`` factors of ``(groups, out_g, in_g)`` matrices (Eckart-Young): ``U_D
    sqrt(S_D)`` of shape ``(groups, out_g, rank)`` and ``sqrt(S_D) V_Dᵀ`` of shape ``(groups, rank,
    in_g)``, from the ``rank`` largest singular values ``S_D`` and their singular vectors; their product's
    Frobenius error is the square root of the sum of the dropped squared singular values. Computed in
    float64 and returned in the input's dtype.

    Raises:
        ValueError: when ``rank`` exceeds ``min(out_g, in_g)``.
    """
    if rank > min(matrices.shape[-2:]):
        raise ValueError(f"rank {rank} exceeds the matrices' smaller side {min(matrices.shape[-2:])}")
    left, singular, right = torch.linalg.svd(matrices.detach().double(), full_matrices=False)
    root = singular[..., :rank].sqrt()
    u = left[..., :, :rank] * root.unsqueeze(-2)
    v = root.unsqueeze(-1) * right[..., :rank, :]
    return u.to(matrices.dtype), v.to(matrices.dtype)


class LowRankLayer(nn.Module):
    """A rank-``rank`` replacement of a dense layer: ``x -> u(v(x))``, ``W_j ≈ U_j V_jᵀ`` per group.

    For ``nn.Linear(in, out)``: ``v = Linear(in, rank, bias=False)``, ``u = Linear(rank, out)``. For a
    convolution with a kernel of 1 and ``groups`` groups: ``v = Conv(in, groups * rank, 1, groups=groups,
    bias=False)`` with the dense layer's stride, padding, dilation and padding mode (so it reads the input
    exactly as the dense layer did), ``u = Conv(groups * rank, out, 1, groups=groups)``; group ``j`` of
    ``v`` feeds group ``j`` of ``u`` only. ``u`` carries the dense layer's bias (if it had one).

    Built by :meth:`replacing` with PyTorch's default initialisation of both layers (training from
    scratch at rank ``rank``); :meth:`state_from_dense` gives the factors of given dense weights.

    Attributes:
        rank: ``D``, the rank of each group's map.
        groups: groups of the dense layer (1 for a linear one).
        in_features, out_features: the dense layer's.
        v, u: the two layers (``v`` first).
    """

    def __init__(self, v: DenseLayer, u: DenseLayer, rank: int, groups: int) -> None:
        super().__init__()
        self.rank = rank
        self.groups = groups
        self.v = v
        self.u = u
        self.in_features = _in_features(v)
        self.out_features = _out_features(u)

    @classmethod
    def replacing(cls, layer: DenseLayer, rank: int) -> LowRankLayer:
        """A randomly initialised rank-``rank`` layer of ``layer``'s kind, sizes, bias, device and dtype.

        Raises:
            ValueError: for a convolution whose kernel is not 1, or a layer of another kind.
        """
        factory = {"device": layer.weight.device, "dtype": layer.weight.dtype}
        bias = layer.bias is not None
        if type(layer) is nn.Linear:
            v = nn.Linear(layer.in_features, rank, bias=False, **factory)
            u = nn.Linear(rank, layer.out_features, bias=bias, **factory)
            return cls(v, u, rank, groups=1)
        if type(layer) in (nn.Conv1d, nn.Conv2d) and all(size == 1 for size in layer.kernel_size):
            kind, groups = type(layer), layer.groups
            v = kind(
                layer.in_channels,
                groups * rank,
                1,
                stride=layer.stride,
                padding=layer.padding,
                dilation=layer.dilation,
                groups=groups,
                bias=False,
                padding_mode=layer.padding_mode,
                **factory,
            )
            u = kind(groups * rank, layer.out_channels, 1, groups=groups, bias=bias, **factory)
            return cls(v, u, rank, groups)
        raise ValueError(f"{type(layer).__name__} is not a linear layer or a convolution with a kernel of 1")

    def forward(self, x: Tensor) -> Tensor:
        """Same shapes as the dense layer: ``(..., in_features) -> (..., out_features)`` for a linear
        layer, ``(batch, in_channels, *size) -> (batch, out_channels, *size')`` for a convolution."""
        return self.u(self.v(x))

    def factor_matrices(self) -> tuple[Tensor, Tensor]:
        """``U`` of shape ``(groups, out_g, rank)`` and ``Vᵀ`` of shape ``(groups, rank, in_g)``."""
        return (
            self.u.weight.reshape(self.groups, -1, self.rank),
            self.v.weight.reshape(self.groups, self.rank, -1),
        )

    def state_from_dense(self, matrices: Tensor, bias: Tensor | None) -> dict[str, Tensor]:
        """This layer's ``state_dict`` entries (``v.weight``, ``u.weight``, ``u.bias``) for the truncated
        SVD of the dense ``(groups, out_g, in_g)`` ``matrices`` (:func:`truncated_svd`) and ``bias``.

        Raises:
            ValueError: when the matrices or the bias do not fit this layer.
        """
        expected = (self.groups, self.out_features // self.groups, self.in_features // self.groups)
        if tuple(matrices.shape) != expected:
            raise ValueError(f"dense matrices of shape {tuple(matrices.shape)} do not fit {expected}")
        if (bias is None) != (self.u.bias is None):
            raise ValueError("the dense layer's bias does not fit this layer's (one has none)")
        u, v = truncated_svd(matrices, self.rank)
        state = {"v.weight": v.reshape(self.v.weight.shape), "u.weight": u.reshape(self.u.weight.shape)}
        if bias is not None:
            state["u.bias"] = bias.detach().clone()
        return state


def _in_features(layer: DenseLayer) -> int:
    return layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels


def _out_features(layer: DenseLayer) -> int:
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


def dense_state(layer: DenseLayer, matrices: Tensor, bias: Tensor | None) -> dict[str, Tensor]:
    """``layer``'s ``state_dict`` entries (``weight``, ``bias``) holding the ``(groups, out_g, in_g)``
    ``matrices`` and ``bias`` (e.g. a :class:`LowRankLayer`'s product, for a layer left dense).

    Raises:
        ValueError: when they do not fit ``layer``.
    """
    if matrices.numel() != layer.weight.numel() or (bias is None) != (layer.bias is None):
        raise ValueError(
            f"weights of shape {tuple(matrices.shape)} (bias: {bias is not None}) do not fit "
            f"{type(layer).__name__} of weight {tuple(layer.weight.shape)} (bias: {layer.bias is not None})"
        )
    state = {"weight": matrices.detach().reshape(layer.weight.shape).clone()}
    if bias is not None:
        state["bias"] = bias.detach().clone()
    return state
