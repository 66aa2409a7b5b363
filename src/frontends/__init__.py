"""Frontends (``frontend=``): ``(waveform (batch, time), lengths) -> (features (batch, features, frames),
lengths)``; the contract is :class:`src.frontends.base.Frontend`."""

from src.frontends.log_mel import LogMelFilterBanks
from src.frontends.mfcc import MFCC
from src.frontends.trainable import TrainableLogMel

__all__ = ["MFCC", "LogMelFilterBanks", "TrainableLogMel"]
