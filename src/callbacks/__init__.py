"""Lightning callbacks: epoch timing, spectrogram images, the run config stored in checkpoints."""

from src.callbacks.epoch_timer import EpochTrainingTimer
from src.callbacks.run_config import RunConfigInCheckpoint
from src.callbacks.spectrogram_images import SpectrogramLogger

__all__ = ["EpochTrainingTimer", "RunConfigInCheckpoint", "SpectrogramLogger"]
