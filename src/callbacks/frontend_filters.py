"""TensorBoard views of a trainable frontend: its filters at the start and end of training, and how
far they moved from their initialisation."""

from __future__ import annotations

import lightning as L
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.figure import Figure


def mel_filters_figure(filters: torch.Tensor) -> Figure:
    """Every mel filter as a curve over the frequency bins: ``filters`` is ``(n_freqs, n_mels)``."""
    figure, axes = plt.subplots(figsize=(7, 3))
    axes.plot(filters.numpy(), linewidth=0.8)
    axes.set_xlabel("STFT frequency bin")
    axes.set_ylabel("weight")
    axes.set_title(f"{filters.shape[1]} mel filters")
    figure.tight_layout()
    return figure


def stft_kernels_figure(kernels: torch.Tensor, bins: list[int]) -> Figure:
    """The real-part STFT kernels of the given frequency ``bins``: ``kernels`` is ``(n_freqs, n_fft)``."""
    figure, axes = plt.subplots(len(bins), 1, figsize=(7, 1.2 * len(bins)), sharex=True, squeeze=False)
    for axis, index in zip(axes[:, 0], bins, strict=True):
        axis.plot(kernels[index].numpy(), linewidth=0.8)
        axis.set_ylabel(f"bin {index}", fontsize=7)
    axes[-1, 0].set_xlabel("sample")
    figure.tight_layout()
    return figure


class FrontendFilterLogger(L.Callback):
    """For a frontend with trainable filters (:meth:`src.frontends.base.Frontend.trainable_filters`),
    logs the figures ``frontend/mel_filters`` and ``frontend/stft_kernels`` when fit starts and ends, and
    after every training epoch the scalars ``frontend/<part>_distance`` of
    :meth:`~src.frontends.base.Frontend.filter_distance`: the relative distance of each trainable part
    from its initial value. Other frontends give neither; figures need a TensorBoard logger, the scalars go
    to every logger.

    Args:
        num_kernels: how many STFT kernels to draw, spread evenly over the frequency bins.
    """

    def __init__(self, num_kernels: int = 4) -> None:
        self.num_kernels = num_kernels

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log_figures(trainer, pl_module)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log_figures(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for part, distance in pl_module.frontend.filter_distance().items():
            # Equal on every process of a distributed run (the weights are); synced to say so.
            pl_module.log(f"frontend/{part}_distance", distance, on_step=False, on_epoch=True, sync_dist=True)

    def _log_figures(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        experiments = [lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        with torch.no_grad():
            trainable = pl_module.frontend.trainable_filters()
        if not experiments or trainable is None:
            return
        filters, kernels = (tensor.detach().float().cpu() for tensor in trainable)
        bins = torch.linspace(0, kernels.shape[0] - 1, self.num_kernels).round().long().tolist()
        for tag, figure in (
            ("frontend/mel_filters", mel_filters_figure(filters)),
            ("frontend/stft_kernels", stft_kernels_figure(kernels, bins)),
        ):
            for experiment in experiments:
                experiment.add_figure(tag, figure, global_step=trainer.global_step, close=False)
            plt.close(figure)
