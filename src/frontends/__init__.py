"""Waveform-to-features modules: ``(batch, time) -> (batch, features, frames)``."""

from src.frontends.log_mel import LogMelFilterBanks
from src.frontends.mfcc import MFCC
from src.frontends.trainable import TrainableLogMel

__all__ = ["MFCC", "LogMelFilterBanks", "TrainableLogMel"]
