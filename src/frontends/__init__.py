"""Waveform-to-features modules: ``(batch, time) -> (batch, features, frames)``."""

from src.frontends.log_mel import LogMelFilterBanks

__all__ = ["LogMelFilterBanks"]
