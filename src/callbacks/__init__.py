"""Lightning callbacks: epoch timing, spectrogram and filter images, the run config and the random generators'
states stored in checkpoints."""

from src.callbacks.epoch_timer import EpochTrainingTimer
from src.callbacks.frontend_filters import FrontendFilterLogger
from src.callbacks.rng_state import RngStateInCheckpoint
from src.callbacks.run_config import RunConfigInCheckpoint
from src.callbacks.spectrogram_images import SpectrogramLogger

__all__ = [
    "EpochTrainingTimer",
    "FrontendFilterLogger",
    "RngStateInCheckpoint",
    "RunConfigInCheckpoint",
    "SpectrogramLogger",
]
