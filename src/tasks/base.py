"""What every task of a frontend, an encoder and a head shares.

A task (``task=`` config group) is a LightningModule that owns its head(s), loss, metrics, the validation
metric and direction that pick checkpoints, and what its test writes; the entry points build it from the
config and never ask what type it is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from torch import nn
from torchmetrics import MeanMetric

from src.compression.base import Compression, CompressionReport
from src.compression.source import load_source
from src.frontends.base import Frontend
from src.frontends.spec_augment import SpecAugment
from src.frontends.standardization import FeatureStandardizer
from src.utils.complexity import count_macs, count_parameters
from src.utils.config_values import flag

log = logging.getLogger(__name__)

MODES = ("max", "min")
"""Directions of a metric: higher is better, or lower is better."""
COMPRESSION_START_KEY = "compression_start"
"""Checkpoint entry: the source checkpoint a compressed run started from and what was measured then."""


class FrontendEncoderTask(L.LightningModule):
    """Base of the tasks: waveform -> frontend -> (standardisation) -> (SpecAugment, training only) ->
    encoder -> the subclass's head(s).

    Every part is built here from its config, so a checkpoint rebuilds itself from its saved
    hyperparameters alone: the frontend from ``frontend``; the encoder with
    ``in_features=frontend.out_features`` (and, for an encoder config with ``num_frames: null``,
    ``num_frames=frontend.num_frames(example_samples)``); subclasses build their heads with
    :meth:`build_head`. Parts are created in that order (frontend, encoder, head), which fixes the seeded
    initial weights. Subclasses then call :meth:`compress_backbone`, which hands the encoder and heads
    (never the frontend) to the run's compression (``compression=``, e.g. low-rank factors): as it runs in
    the constructor, a compressed checkpoint rebuilds its compressed layers from its hyperparameters
    alone. A compression with a source checkpoint (``compression.from_ckpt``) loads its weights, transformed
    (e.g. by truncated SVD), when fitting starts (:meth:`on_fit_start`), unless the weights came from a
    checkpoint of this run (resuming): never when a checkpoint is loaded.

    Batches are ``(waveforms (batch, time), lengths (batch,), *targets)``: every data module's batches
    start with the zero-padded waveforms and their true lengths.

    Subclasses log their losses with :meth:`log_loss`, whose epoch values cover every process of a
    distributed run (``trainer=ddp``); their metrics are torchmetrics ``Metric`` objects, which reduce
    their states over the processes themselves.

    Subclasses set :attr:`METRIC_MODES` (the ``val/``/``test/`` metrics they log, by name, with their
    direction), :attr:`TEST_METRIC` (the one a run reports) and :attr:`TARGETS` (the batch targets they
    train on, matched against the data module's ``TARGETS``), and implement the steps and
    :meth:`write_test_outputs`.

    Args:
        frontend: config (``_target_``) of a :class:`src.frontends.base.Frontend`.
        encoder: config of a :class:`src.encoders.base.Encoder` (the ``model`` group).
        optimizer: partial config of a ``torch.optim`` optimizer (``_partial_: true``); an extra key
            ``frontend_lr`` (``None``: the optimizer's ``lr``) sets the learning rate of the frontend's
            parameters, which then form a parameter group of their own.
        scheduler: optional partial config of a ``torch.optim.lr_scheduler`` stepped every epoch.
        monitor: the validation metric that picks checkpoints, ``val/<name>`` of :attr:`METRIC_MODES`.
        mode: its direction, ``"max"`` or ``"min"``; must be the metric's own.
        standardize_features: standardise each feature with the mean and std of the training split's
            features, measured once when fitting starts (with the frontend as initialised) and stored in
            the checkpoint.
        spec_augment: config (``_target_``) of a :class:`src.frontends.spec_augment.SpecAugment` applied to
            training features; ``None``: none.
        example_samples: samples of one example for sizing (the data's clip length, or one second of an
            utterance corpus).
        compile: compile the encoder with ``torch.compile`` when fitting or testing starts
            (:meth:`configure_model`); off by default (``docs/training.md``, "Compiled training steps").
        compression: config (``_target_``) of a :class:`src.compression.base.Compression` applied to the
            backbone by :meth:`compress_backbone`; ``None``: none.

    Raises:
        ValueError: for a ``monitor`` the task does not log or a ``mode`` against its direction, or a
            ``compile`` that is not a bool (naming ``task.compile``).
    """

    METRIC_MODES: ClassVar[dict[str, str]] = {}
    TEST_METRIC: ClassVar[str] = ""
    TARGETS: ClassVar[str] = ""

    frontend: Frontend

    def __init__(
        self,
        frontend: Mapping[str, Any],
        encoder: Mapping[str, Any],
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None,
        monitor: str,
        mode: str,
        standardize_features: bool,
        spec_augment: Mapping[str, Any] | None,
        example_samples: int,
        compile: bool = False,
        compression: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.monitor, self.mode = check_monitor(type(self), monitor, mode)
        self.compiles_encoder = flag("task.compile", compile)
        self._encoder_compiled = False
        self.frontend = instantiate(frontend)
        self.frontend.check_input_samples(example_samples)
        sizes: dict[str, Any] = {"in_features": self.frontend.out_features}
        if "num_frames" in encoder and encoder["num_frames"] is None:
            sizes["num_frames"] = self.frontend.num_frames(example_samples)
        self.encoder = instantiate(encoder, **sizes, _convert_="all")
        features = self.frontend.out_features
        self.standardizer = FeatureStandardizer(features) if standardize_features else None
        self.spec_augment = instantiate(spec_augment) if spec_augment else SpecAugment()
        # Not in checkpoints (torchmetrics states are not persistent).
        self.evaluation_losses = nn.ModuleDict({stage: MeanMetric() for stage in ("val", "test")})
        self.compression: Compression = instantiate(compression) if compression else Compression()
        self.compression_report = CompressionReport(self.compression.method)
        self._weights_restored = False  # by a checkpoint (resuming, load_from_checkpoint, test)
        self._started_from: str | None = None

    @property
    def test_metric(self) -> str:
        """The test metric a run reports, e.g. ``test/acc``."""
        return f"test/{self.TEST_METRIC}"

    @property
    def test_mode(self) -> str:
        """The direction of :attr:`test_metric`."""
        return self.METRIC_MODES[self.TEST_METRIC]

    def build_head(self, head: Mapping[str, Any], **sizes: Any) -> nn.Module:
        """The head of config ``head`` (``_partial_`` or not), completed with the encoder's
        ``out_features`` as ``in_features``, its ``bidirectional`` and ``sizes`` (e.g. ``num_classes``)."""
        build = instantiate(head, _partial_=True)
        return build(in_features=self.encoder.out_features, bidirectional=self.encoder.bidirectional, **sizes)

    def compress_backbone(self) -> None:
        """Apply the run's compression to the encoder and the heads (:meth:`heads`), in place; subclasses
        call it once, when their heads are built. Its report is :attr:`compression_report`."""
        heads = list(self.heads().values())
        parts = [
            name
            for name, child in self.named_children()
            if child is self.encoder or any(child is head for head in heads)
        ]
        self.compression_report = self.compression.compress(self, parts)

    def compression_summary(self) -> dict[str, Any]:
        """The ``compression`` entry of ``metrics.json``: the method, its settings, the layers replaced
        and those left alone (with why), the parameters saved, and for a run with ``compression.from_ckpt``
        ``started_from``: the source checkpoint whose weights started the run (also after resuming it;
        ``None`` if they never did), with what the compression measured when it loaded them (e.g. each
        layer's SVD error)."""
        summary = self.compression_report.as_dict()
        if self.compression.from_ckpt:
            summary["started_from"] = self._started_from
            summary.update(self.compression.initialisation)
        return summary

    def encode(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, time)`` waveforms and their ``(batch,)`` true lengths -> the encoder's ``(batch,
        frames', out_features)`` sequence and ``(batch,)`` lengths (features standardised, and masked by
        SpecAugment in training)."""
        features, frame_lengths = self.frontend(waveforms, lengths)
        if self.standardizer is not None:
            features = self.standardizer(features)
        return self.encoder(self.spec_augment(features), frame_lengths)

    def log_loss(self, stage: str, loss: torch.Tensor, batch_size: int) -> None:
        """Log ``<stage>/loss``, the batch's mean ``loss`` over its ``batch_size`` examples; ``stage`` is
        ``train`` (per step and per epoch, on the progress bar), ``val`` (per epoch, on the progress bar)
        or ``test`` (per epoch).

        Epoch values are means over all examples of the epoch, weighted by batch size, on every process
        of a distributed run together. Validation and test shares differ in size by up to one example
        (:class:`src.distributed.ExactEvaluationDDPStrategy`), so their means are ``MeanMetric`` states
        summed over the processes: Lightning's ``sync_dist`` mean would divide the integer example count
        by the number of processes and round it down. Training shares are equal in size (Lightning pads
        them), where ``sync_dist`` is exact.
        """
        if stage == "train":
            self.log(
                "train/loss",
                loss,
                on_step=True,
                on_epoch=True,
                prog_bar=True,
                sync_dist=True,
                batch_size=batch_size,
            )
            return
        mean = self.evaluation_losses[stage]
        mean.update(loss.detach(), batch_size)
        self.log(f"{stage}/loss", mean, on_epoch=True, prog_bar=stage == "val")

    def configure_model(self) -> None:
        """Lightning calls this when fitting, validation or testing starts: with ``task.compile=true`` the
        encoder is compiled in place, once (``nn.Module.compile``, TorchInductor), so its parameters,
        ``state_dict`` keys and checkpoints stay those of the eager encoder (``test.py`` and resuming
        read them as usual). Compiling happens on the first batch of each new kind (training, another
        batch size, evaluation). Not earlier, so :meth:`complexity` runs the eager encoder."""
        if self.compiles_encoder and not self._encoder_compiled:
            self.encoder.compile()
            self._encoder_compiled = True

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep where the run's weights started (``compression.from_ckpt``) and what the compression
        measured then, so a resumed run still reports them."""
        if self._started_from is not None:
            checkpoint[COMPRESSION_START_KEY] = {
                "started_from": self._started_from,
                "initialisation": self.compression.initialisation,
            }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Lightning calls this before loading a checkpoint's weights (resuming, testing a checkpoint,
        ``load_from_checkpoint``): they replace any start from ``compression.from_ckpt``; the start the
        checkpoint's run made is kept for :meth:`compression_summary`."""
        self._weights_restored = True
        start = checkpoint.get(COMPRESSION_START_KEY)
        if start is not None:
            self._started_from = start["started_from"]
            self.compression.initialisation = dict(start["initialisation"])

    def start_from_source(self) -> None:
        """Load the weights of ``compression.from_ckpt`` as the compression transforms them
        (:meth:`src.compression.base.Compression.initial_state`).

        Raises:
            FileNotFoundError, IsADirectoryError, ValueError: naming ``compression.from_ckpt``, for a file
                that is no checkpoint of this project or one of another task, frontend, model, head or data
                (:func:`src.compression.source.load_source`), or weights that do not fit.
        """
        path = self.compression.from_ckpt
        source = load_source(self, path)
        try:
            state = self.compression.initial_state(self, source)
            self.load_state_dict(state, strict=True)
        except (KeyError, AttributeError, ValueError, RuntimeError) as error:
            raise ValueError(
                f"compression.from_ckpt={path}: its weights do not fit this run's model ({error}); pass a "
                "checkpoint of a train.py run with the same frontend, model, task.head and data"
            ) from error
        self._started_from = str(path)
        log.info("Started from compression.from_ckpt=%s (%s)", path, self.compression.method)

    def on_fit_start(self) -> None:
        """Start from ``compression.from_ckpt`` when the run has one and no checkpoint of this run brought
        the weights (:meth:`start_from_source`); then measure the standardisation statistics on the
        training split (not augmented), unless a checkpoint already brought them."""
        if self.compression.from_ckpt and not self._weights_restored:
            self.start_from_source()
        if self.standardizer is None or self.standardizer.fitted:
            return
        loader = self.trainer.datamodule.train_dataloader()
        was_training = self.frontend.training
        self.frontend.eval()
        with torch.no_grad():
            self.standardizer.fit(
                self.frontend(batch[0].to(self.device), batch[1].to(self.device)) for batch in loader
            )
        self.frontend.train(was_training)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.frontend.constrain_()

    def configure_optimizers(self) -> Any:
        settings = dict(self.hparams.optimizer)
        frontend_lr = settings.pop("frontend_lr", None)
        params: Any = self.parameters()
        if frontend_lr is not None:
            frontend = list(self.frontend.parameters())
            in_frontend = {id(p) for p in frontend}
            params = [{"params": [p for p in self.parameters() if id(p) not in in_frontend]}]
            if frontend:
                params.append({"params": frontend, "lr": frontend_lr})
        optimizer = instantiate(settings)(params=params)
        if self.hparams.scheduler is None:
            return optimizer
        scheduler = instantiate(self.hparams.scheduler)(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    def heads(self) -> dict[str, nn.Module]:
        """The task's heads by name, for parameter and MAC counts (default: ``{"head": self.head}``)."""
        return {"head": self.head}

    def complexity(self, num_samples: int) -> dict[str, int]:
        """Parameters and MACs of frontend, encoder and heads for an input of ``num_samples`` samples (MACs
        of sequence models grow linearly with it).

        Keys: ``complexity/{frontend,encoder,head,backbone,total}_{params,macs}``, where ``backbone`` is
        everything after the frontend (encoder and heads) and ``head`` all heads together.
        """
        with torch.no_grad():
            features, _ = self.frontend(torch.zeros(1, num_samples, device=self.device))
            sequence, _ = self.encoder(features)
        heads = list(self.heads().values())
        counts = {
            "frontend_params": count_parameters(self.frontend),
            "frontend_macs": count_macs(self.frontend, (num_samples,))
            + self.frontend.analytic_macs(num_samples),
            "encoder_params": count_parameters(self.encoder),
            "encoder_macs": count_macs(self.encoder, tuple(features.shape[1:])),
            "head_params": sum(count_parameters(head) for head in heads),
            "head_macs": sum(count_macs(head, tuple(sequence.shape[1:])) for head in heads),
        }
        for kind in ("params", "macs"):
            counts[f"backbone_{kind}"] = counts[f"encoder_{kind}"] + counts[f"head_{kind}"]
            counts[f"total_{kind}"] = counts[f"frontend_{kind}"] + counts[f"backbone_{kind}"]
        return {f"complexity/{name}": value for name, value in counts.items()}

    def example_title(self, batch: Any, index: int) -> str:
        """A short title for example ``index`` of ``batch`` in figures (default: ``example <index>``)."""
        return f"example {index}"

    def write_test_outputs(self, datamodule: Any, output_dir: Path, loggers: list[Logger]) -> dict[str, Any]:
        """After ``trainer.test``: write what this task's test leaves beside ``metrics.json`` (error
        analysis, decodings) into ``output_dir``; return its summary for ``metrics.json``."""
        raise NotImplementedError


def check_monitor(task: type[FrontendEncoderTask], monitor: str, mode: str) -> tuple[str, str]:
    """``(monitor, mode)`` when ``task`` logs ``monitor`` with direction ``mode``; else ``ValueError``
    naming ``task.monitor`` / ``task.mode`` and values that work."""
    name = monitor.removeprefix("val/")
    if not monitor.startswith("val/") or name not in task.METRIC_MODES:
        choices = ", ".join(f"val/{metric}" for metric in task.METRIC_MODES)
        raise ValueError(
            f"task.monitor={monitor} is not a validation metric of {task.__name__}: use {choices}"
        )
    if mode not in MODES or mode != task.METRIC_MODES[name]:
        raise ValueError(
            f"task.mode={mode} does not fit task.monitor={monitor}: use task.mode={task.METRIC_MODES[name]}"
        )
    return monitor, mode
