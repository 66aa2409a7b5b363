"""The compression contract (``compression=`` config group): what a task applies to its backbone once it is
built, and what it reports.

A task builds its frontend, encoder and heads from their configs, then hands the backbone (encoder and
heads; never the frontend) to its :class:`Compression`, which changes the layers in place. Since the task
does this in its constructor from its saved hyperparameters, a compressed checkpoint rebuilds the
compressed structure by itself (``test.py``, ``load_from_checkpoint``, resuming). A compression with a
``from_ckpt`` also says how the weights of a trained source checkpoint of the same configuration become
the starting weights of the compressed one (:meth:`Compression.initial_state`); the task applies it when
training starts, never when a checkpoint is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn


@dataclass(frozen=True)
class LayerChange:
    """One candidate layer of the backbone: replaced (``params_after`` set) or left alone (``reason``).

    Attributes:
        name: the layer's name in the task (``encoder.layers.0``, ``head.classifier``).
        kind: its class name (``Linear``, ``Conv2d``).
        in_features, out_features, groups: its sizes (``groups`` 1 for a linear layer).
        params: its parameters as built (weights and bias).
        params_after: its parameters once replaced; ``None`` when left alone.
        reason: why it was left alone (empty when replaced).
    """

    name: str
    kind: str
    in_features: int
    out_features: int
    groups: int
    params: int
    params_after: int | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "layer": self.name,
            "kind": self.kind,
            "in_features": self.in_features,
            "out_features": self.out_features,
            "groups": self.groups,
            "params": self.params,
        }
        if self.params_after is not None:
            entry["params_after"] = self.params_after
        else:
            entry["reason"] = self.reason
        return entry


@dataclass(frozen=True)
class CompressionReport:
    """What a compression did to a backbone: its settings, the layers it replaced and those it left alone
    (with why). :meth:`as_dict` is the ``compression`` entry of a run's ``metrics.json``."""

    method: str
    settings: dict[str, Any] = field(default_factory=dict)
    replaced: Sequence[LayerChange] = ()
    left_alone: Sequence[LayerChange] = ()

    @property
    def params_saved(self) -> int:
        """Parameters the replacements removed."""
        return sum(change.params - (change.params_after or 0) for change in self.replaced)

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            **self.settings,
            "replaced": [change.as_dict() for change in self.replaced],
            "left_alone": [change.as_dict() for change in self.left_alone],
            "params_saved": self.params_saved,
        }


class Compression:
    """No compression (``compression=none``): the backbone stays as the model builds it.

    Subclasses override :meth:`compress` and, if they start from a trained checkpoint, set
    :attr:`from_ckpt` and override :meth:`initial_state`.

    Attributes:
        from_ckpt: a ``train.py`` checkpoint of the same frontend, model and data whose weights, transformed
            by :meth:`initial_state`, start training (``None``: the task's own initial weights).
        initialisation: what :meth:`initial_state` measured (e.g. each layer's SVD error), for
            ``metrics.json``; empty until it ran.
    """

    method = "none"
    from_ckpt: str | None = None

    def __init__(self) -> None:
        self.initialisation: dict[str, Any] = {}

    def compress(self, root: nn.Module, parts: Sequence[str]) -> CompressionReport:
        """Change the submodules ``parts`` of ``root`` (e.g. ``("encoder", "head")`` of a task) in place;
        return what was done. Here: nothing."""
        return CompressionReport(self.method)

    def initial_state(self, target: nn.Module, source: nn.Module) -> dict[str, Tensor]:
        """The ``state_dict`` that starts training ``target`` (compressed by :meth:`compress`) from
        ``source``, a model of the same configuration built from :attr:`from_ckpt` (its own compression,
        if any, rebuilt from its hyperparameters).

        Raises:
            NotImplementedError: here, since no compression has no source checkpoint.
        """
        raise NotImplementedError(f"compression={self.method} does not start from a checkpoint")
