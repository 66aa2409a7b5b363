"""Encoders (``model=``): ``(features (batch, feature, frames), lengths) -> (sequence (batch, frames',
dim), lengths')``; the contract is :class:`src.encoders.base.Encoder`."""
