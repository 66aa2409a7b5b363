"""Encoders run one after another, e.g. BC-ResNet followed by a BiLSTM (``model=bcresnet_bilstm``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import Tensor, nn

from src.encoders.base import Encoder


class EncoderStack(Encoder):
    """``(batch, in_features, frames) -> (batch, frames', out_features)`` through several encoders in turn.

    Each encoder's output sequence ``(batch, frames, dim)`` becomes the next one's features ``(batch, dim,
    frames)`` with its lengths, and the next one is built with ``in_features=dim``, so the stack keeps the
    encoder contract. It keeps time when every part does and is bidirectional when its last part is.

    Args:
        in_features: features per frame delivered by the frontend (set by the task).
        encoders: name -> an encoder class or partial config (``_partial_: true``) that takes
            ``in_features``, in the order they run (the names become submodule names).

    Raises:
        ValueError: when ``encoders`` is empty, or a part refuses its settings (its message then names
            ``model.encoders.<name>.<key>``).
    """

    def __init__(self, in_features: int, encoders: Mapping[str, Callable[..., Encoder]]) -> None:
        super().__init__()
        if not encoders:
            raise ValueError("model.encoders must name at least one encoder")
        self.encoders = nn.ModuleDict()
        for name, build in encoders.items():
            try:
                encoder = build(in_features=in_features)
            except ValueError as error:  # the part's own message names model.<key>: say which part
                raise ValueError(str(error).replace("model.", f"model.encoders.{name}.")) from error
            self.encoders[name] = encoder
            in_features = encoder.out_features
        parts = list(self.encoders.values())
        self.out_features = parts[-1].out_features
        self.bidirectional = parts[-1].bidirectional
        self.keeps_time = all(part.keeps_time for part in parts)

    def forward(self, features: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(batch, in_features, frames), (batch,) -> (batch, frames', out_features), (batch,)``."""
        for encoder in self.encoders.values():
            sequence, lengths = encoder(features, lengths)
            features = sequence.transpose(1, 2)
        return sequence, lengths
