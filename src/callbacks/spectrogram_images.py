"""TensorBoard images of the frontend's features for a few validation clips, one readable figure each."""

from __future__ import annotations

from typing import Any

import lightning as L
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.figure import Figure

from src.frontends.base import Frontend

# 600 x 360 pixels with 10-11 pt text: legible when TensorBoard's image card scales it to its width.
FIGURE_SIZE_INCHES = (6.0, 3.6)
FIGURE_DPI = 100
IMAGE_TAG = "features/validation/example_{index}"


def frames_per_second(frontend: Frontend, sample_rate: int) -> int:
    """The frame rate of ``frontend`` (its ``num_frames``) for audio at ``sample_rate`` Hz: the frames
    one more second of audio adds."""
    return int(frontend.num_frames(2 * sample_rate)) - int(frontend.num_frames(sample_rate))


def feature_figure(features: torch.Tensor, frame_rate: float, title: str) -> Figure:
    """One example's features ``(feature, frames)`` (its real frames only) as an image: time in seconds
    along the bottom axis and frames along the top one (``frame_rate`` frames per second, frame ``i``
    centred at ``i / frame_rate`` s), feature bins upwards, a colour bar of the frontend's output values,
    and ``title``. The caller logs and closes the figure."""
    num_features, num_frames = features.shape
    figure, axes = plt.subplots(figsize=FIGURE_SIZE_INCHES, dpi=FIGURE_DPI, constrained_layout=True)
    half_frame = 0.5 / frame_rate
    image = axes.imshow(
        features.numpy(),
        origin="lower",
        aspect="auto",
        interpolation="nearest",
        cmap="magma",
        extent=(-half_frame, num_frames / frame_rate - half_frame, -0.5, num_features - 0.5),
    )
    axes.set_title(title, fontsize=11)
    axes.set_xlabel("time (s)", fontsize=10)
    axes.set_ylabel(f"feature bin (of {num_features})", fontsize=10)
    frames_axis = axes.secondary_xaxis(
        "top", functions=(lambda seconds: seconds * frame_rate, lambda frames: frames / frame_rate)
    )
    frames_axis.set_xlabel("frame", fontsize=10)
    colour_bar = figure.colorbar(image, ax=axes)
    colour_bar.set_label("frontend output", fontsize=10)
    return figure


class SpectrogramLogger(L.Callback):
    """Once per run, on the first validation batch after sanity checking, logs the features the
    task's ``frontend`` computes for the first ``num_examples`` examples, one :func:`feature_figure` each
    (tags ``features/validation/example_<i>``), titled by the task's ``example_title`` with the clip's
    length.

    Skipped when no TensorBoard logger is attached.
    """

    def __init__(self, num_examples: int = 4) -> None:
        self.num_examples = num_examples
        self._logged = False

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._logged or trainer.sanity_checking or batch_idx != 0:
            return
        experiments = [lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not experiments:
            return
        waveforms, lengths = batch[0][: self.num_examples], batch[1][: self.num_examples]
        with torch.no_grad():
            features, frames = pl_module.frontend(waveforms, lengths)
        features = features.float().cpu()
        sample_rate = trainer.datamodule.sample_rate
        frame_rate = frames_per_second(pl_module.frontend, sample_rate)
        for index, feature in enumerate(features):
            seconds = int(lengths[index]) / sample_rate
            title = f"{pl_module.example_title(batch, index)}: validation clip {index} ({seconds:.2f} s)"
            figure = feature_figure(feature[:, : int(frames[index])], frame_rate, title)
            for experiment in experiments:
                tag = IMAGE_TAG.format(index=index)
                experiment.add_figure(tag, figure, global_step=trainer.global_step, close=False)
            plt.close(figure)
        self._logged = True
