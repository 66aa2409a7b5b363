"""Phone recognition (``task=ctc``): a frontend, an encoder that keeps time and a per-frame head trained
with CTC, scored by phone error rate."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import torch
from lightning.pytorch.loggers import Logger
from torch import nn

from src.reporting.test_analysis import write_test_decodings
from src.tasks.base import FrontendEncoderTask
from src.tasks.ctc_decoding import ctc_greedy_decode
from src.tasks.ctc_feasibility import (
    EncoderOutputLength,
    SplitFeasibility,
    largest_fitting_hop,
    required_frames,
    split_feasibility,
)
from src.tasks.phone_error_rate import PhoneErrorRate, scoring_transcript

log = logging.getLogger(__name__)

BLANK = 0
"""Output index of the CTC blank; phone ``i`` of ``phones`` is output ``i + 1``."""

PhoneBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""``(waveforms (batch, time) float, wave_lengths (batch,) int64, targets (batch, max_target_len) int64,
target_lengths (batch,) int64)``: zero-padded waveforms and zero-padded phone indices into ``phones``."""


class DecodedUtterance(NamedTuple):
    """One test utterance, both sides folded to the 39 scoring phones and joined by single spaces."""

    hypothesis: str
    reference: str


class PhoneRecognitionTask(FrontendEncoderTask):
    """Waveform -> frontend -> encoder -> per-frame head -> phone posteriors (+ blank), optimised with CTC.

    The head (``task.head``, by default :class:`src.tasks.heads.FrameClassifierHead`) is built with
    ``num_outputs=len(phones) + 1``; output :data:`BLANK` (0) is the CTC blank and output ``i + 1`` is
    ``phones[i]``. The encoder's output lengths are each utterance's frame count, so the CTC loss and the
    decoding read only real frames. An encoder that collapses time (``keeps_time`` false, e.g.
    ``model=linear``) is refused.

    The loss is ``torch.nn.CTCLoss`` (per-utterance loss divided by its target length, averaged over the
    batch) with ``zero_infinity=True``: an utterance with fewer encoder frames than its labels need (its
    phones plus one blank between each pair of equal adjacent phones) has no CTC alignment and an infinite
    loss, whose gradient would turn every parameter to NaN; it is counted as zero instead (it cannot
    happen at TIMIT's phone rate with a 10 ms hop, but can with coarse frames). Such utterances teach
    nothing, so they are counted (:mod:`src.tasks.ctc_feasibility`) when fitting starts, for the training
    and validation splits, and when testing starts, for the test split, of a data module that lists its
    utterances' targets (``TaskDataModule.utterance_targets``): each split logs
    ``<split>/ctc_infeasible_fraction`` (0 when all fit); if some do not fit, a warning counts them and
    names a ``frontend.hop_length`` at which all would; if no training utterance fits, fitting fails with
    that message. Every training epoch logs ``train/ctc_zeroed_batches``, the batches holding an
    utterance whose loss was zeroed, and warns when there were any.

    Evaluation decodes greedily (:func:`src.tasks.ctc_decoding.ctc_greedy_decode`) and scores the phone
    error rate on the 39-phone set over the whole split (:class:`src.tasks.phone_error_rate.PhoneErrorRate`).
    During ``test`` every utterance's decoding is appended to :attr:`test_decodings`, in dataloader order.

    Args:
        frontend, encoder, optimizer, scheduler, monitor, mode, standardize_features, spec_augment,
            example_samples, compile, compression: as :class:`~src.tasks.base.FrontendEncoderTask`.
        head: partial config of the per-frame head.
        label_names: the training phone set in index order (TIMIT's 61, 48 or 39 phones; the data
            module's ``label_names``).

    Raises:
        ValueError: for an empty phone set, or an encoder that does not keep time (naming ``model=``).

    Consumes batches :data:`PhoneBatch`. Logged: ``train/loss`` (step and epoch), ``val/loss``,
    ``val/per``, ``test/loss``, ``test/per``, ``train/ctc_zeroed_batches`` (epoch) and
    ``{train,val,test}/ctc_infeasible_fraction`` (once per fit or test). Epoch values are reduced over
    every process of a distributed run.
    """

    METRIC_MODES: ClassVar[dict[str, str]] = {"per": "min", "loss": "min"}
    TEST_METRIC: ClassVar[str] = "per"
    TARGETS: ClassVar[str] = "sequence"

    def __init__(
        self,
        frontend: Mapping[str, Any],
        encoder: Mapping[str, Any],
        head: Mapping[str, Any],
        label_names: Sequence[str],
        example_samples: int,
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None = None,
        monitor: str = "val/per",
        mode: str = "min",
        standardize_features: bool = False,
        spec_augment: Mapping[str, Any] | None = None,
        compile: bool = False,
        compression: Mapping[str, Any] | None = None,
    ) -> None:
        if not label_names:
            raise ValueError("label_names must list the training phone set (the data module's), got none")
        super().__init__(
            frontend,
            encoder,
            optimizer,
            scheduler,
            monitor,
            mode,
            standardize_features,
            spec_augment,
            example_samples,
            compile,
            compression,
        )
        if not self.encoder.keeps_time:
            raise ValueError(
                f"{encoder['_target_']} collapses the frames into one vector, but CTC needs one output per "
                "frame: choose model=lstm, bilstm, gru, crnn, bcresnet or bcresnet_bilstm"
            )
        self.save_hyperparameters(logger=False)
        self.phones = list(label_names)
        self.head = self.build_head(head, num_outputs=len(self.phones) + 1)
        self.compress_backbone()
        self.criterion = nn.CTCLoss(blank=BLANK, zero_infinity=True)
        self.val_per = PhoneErrorRate()
        self.test_per = PhoneErrorRate()
        self.test_decodings: list[DecodedUtterance] = []
        self.infeasible_fractions: dict[str, float] = {}
        self._zeroed = torch.zeros(2, dtype=torch.int64)  # this epoch's (batches, utterances) zeroed

    def forward(
        self, waveforms: torch.Tensor, wave_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-frame logits of a batch of zero-padded waveforms.

        Args:
            waveforms: ``(batch, time)``, zero-padded after each waveform's ``wave_lengths`` samples.
            wave_lengths: ``(batch,)`` real samples per waveform.

        Returns:
            Logits ``(batch, frames, len(phones) + 1)`` (output 0 the blank) and ``(batch,)`` real frames.
        """
        sequence, lengths = self.encode(waveforms, wave_lengths)
        return self.head(sequence), lengths

    def ctc_loss(
        self,
        logits: torch.Tensor,
        frame_lengths: torch.Tensor,
        targets: torch.Tensor,
        target_lengths: torch.Tensor,
    ) -> torch.Tensor:
        """CTC loss of ``(batch, frames, classes)`` logits against zero-padded phone indices ``targets``."""
        log_probs = logits.float().log_softmax(dim=-1).transpose(0, 1)  # (frames, batch, classes)
        return self.criterion(log_probs, targets + 1, frame_lengths, target_lengths)

    def decode(self, logits: torch.Tensor, frame_lengths: torch.Tensor) -> list[list[str]]:
        """Greedy CTC decoding of ``(batch, frames, classes)`` logits into phones of ``phones``."""
        return [
            [self.phones[index - 1] for index in indices]
            for indices in ctc_greedy_decode(logits, frame_lengths, blank=BLANK)
        ]

    def reference_phones(self, targets: torch.Tensor, target_lengths: torch.Tensor) -> list[list[str]]:
        """Zero-padded ``(batch, max_target_len)`` phone indices -> each utterance's phones."""
        return [
            [self.phones[index] for index in row[: int(length)].tolist()]
            for row, length in zip(targets.cpu(), target_lengths.cpu(), strict=True)
        ]

    def on_fit_start(self) -> None:
        """Count the training and validation utterances CTC cannot align (failing when no training
        utterance fits) before the base class measures the standardisation statistics."""
        self._check_feasibility(("train", "val"))
        super().on_fit_start()

    def on_train_start(self) -> None:
        for split in ("train", "val"):
            if split in self.infeasible_fractions:
                self.log(f"{split}/ctc_infeasible_fraction", self.infeasible_fractions[split], sync_dist=True)

    def on_test_start(self) -> None:
        self._check_feasibility(("test",))
        if "test" in self.infeasible_fractions:
            self.log("test/ctc_infeasible_fraction", self.infeasible_fractions["test"], sync_dist=True)

    def on_train_epoch_start(self) -> None:
        self._zeroed = torch.zeros(2, dtype=torch.int64, device=self.device)

    def training_step(self, batch: PhoneBatch, batch_idx: int) -> torch.Tensor:
        waveforms, wave_lengths, targets, target_lengths = batch
        logits, frame_lengths = self(waveforms, wave_lengths)
        loss = self.ctc_loss(logits, frame_lengths, targets, target_lengths)
        zeroed = frame_lengths.to(targets.device) < required_frames(targets, target_lengths)
        self._zeroed += torch.stack([zeroed.any(), zeroed.sum()]).to(self._zeroed)
        self.log_loss("train", loss, len(waveforms))
        self.log(
            "train/ctc_zeroed_batches",
            zeroed.any().float(),
            on_step=False,
            on_epoch=True,
            reduce_fx="sum",
            sync_dist=True,
            batch_size=len(waveforms),
        )
        return loss

    def on_train_epoch_end(self) -> None:
        """Warn about this process's batches of the epoch whose loss ``zero_infinity`` zeroed (the logged
        ``train/ctc_zeroed_batches`` counts those of every process; no collective is made here, as the
        processes may not all reach this hook at the same point of their reductions)."""
        batches, utterances = self._zeroed.tolist()
        if batches:
            where = f" on process {self.global_rank}" if self.trainer.world_size > 1 else ""
            log.warning(
                "Epoch %d%s: %d training batches held %d utterances with fewer encoder frames than their "
                "phones need; CTC counted their loss as zero (zero_infinity), so they taught nothing",
                self.current_epoch,
                where,
                batches,
                utterances,
            )

    def validation_step(self, batch: PhoneBatch, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_per)

    def on_test_epoch_start(self) -> None:
        self.test_decodings = []

    def test_step(self, batch: PhoneBatch, batch_idx: int) -> None:
        hypotheses, references = self._evaluate(batch, "test", self.test_per)
        self.test_decodings.extend(
            DecodedUtterance(scoring_transcript(hypothesis), scoring_transcript(reference))
            for hypothesis, reference in zip(hypotheses, references, strict=True)
        )

    def _evaluate(
        self, batch: PhoneBatch, stage: str, per: PhoneErrorRate
    ) -> tuple[list[list[str]], list[list[str]]]:
        waveforms, wave_lengths, targets, target_lengths = batch
        logits, frame_lengths = self(waveforms, wave_lengths)
        loss = self.ctc_loss(logits, frame_lengths, targets, target_lengths)
        hypotheses = self.decode(logits, frame_lengths)
        references = self.reference_phones(targets, target_lengths)
        per.update(hypotheses, references)
        batch_size = len(waveforms)
        self.log_loss(stage, loss, batch_size)
        # a torchmetrics object: it reduces its own states over the processes
        self.log(f"{stage}/per", per, on_epoch=True, prog_bar=stage == "val", batch_size=batch_size)
        return hypotheses, references

    def _check_feasibility(self, splits: Sequence[str]) -> None:
        """Count each split's utterances CTC cannot align (see the class docstring); nothing to count
        when the data module cannot list its utterances' targets.

        Raises:
            ValueError: no training utterance fits, naming ``frontend.hop_length`` and a hop that works.
        """
        datamodule = self.trainer.datamodule
        output_length = EncoderOutputLength(self.encoder, self.frontend.out_features, self.device)
        for split in splits:
            try:
                samples, targets = datamodule.utterance_targets(split)
            except NotImplementedError:
                log.debug("The data module does not list its targets: CTC feasibility is not checked upfront")
                return
            checked = split_feasibility(split, self.frontend, output_length, samples, targets)
            self.infeasible_fractions[split] = checked.fraction
            if not checked.infeasible:
                continue
            hop = largest_fitting_hop(self.hparams.frontend, output_length, samples, targets)
            message = _infeasible_message(
                checked, datamodule.files(split), output_length, self.hparams.frontend, hop
            )
            if split == "train" and checked.infeasible == len(checked.fits):
                raise ValueError(message)
            if self.trainer.is_global_zero:
                log.warning(message)

    def write_test_outputs(self, datamodule: Any, output_dir: Path, loggers: list[Logger]) -> dict[str, Any]:
        """``<output_dir>/test_decodings.csv``: every tested utterance's file, reference and greedy
        hypothesis, both folded to the 39 phones they are scored on (with ``fast_dev_run`` only the first
        batch)."""
        decodings = self.test_decodings
        return write_test_decodings(
            datamodule.files("test")[: len(decodings)],
            [decoded.reference for decoded in decodings],
            [decoded.hypothesis for decoded in decodings],
            output_dir,
        )


def _infeasible_message(
    checked: SplitFeasibility,
    files: Sequence[str],
    output_length: Callable[[int], int],
    frontend: Mapping[str, Any],
    hop: int | None,
) -> str:
    """What to tell the user about the utterances of ``checked`` that CTC cannot align."""
    example = int((~checked.fits).nonzero()[0])
    frames = int(checked.frames[example])
    setting = f"frontend.hop_length={frontend['hop_length']}" if "hop_length" in frontend else "this frontend"
    what = (
        f"CTC cannot align {checked.infeasible} of the {len(checked.fits)} {checked.split} utterances "
        f"({100 * checked.fraction:.1f}%): with {setting} and this model the encoder emits fewer frames "
        f"than their phones need (e.g. {files[example]}: {frames} frontend frames, "
        f"{output_length(frames)} encoder frames, {int(checked.required[example])} needed: one per phone "
        "and a blank between equal neighbours), "
        "so CTC counts their loss as zero (zero_infinity) and they teach nothing"
    )
    if hop is not None:
        return f"{what}. Set frontend.hop_length={hop} or lower: then all of them fit."
    if isinstance(frontend.get("hop_length"), int):
        return (
            f"{what}. Even frontend.hop_length=1 leaves some too short: choose a model that keeps every "
            "frame (e.g. model=bilstm), or check the transcriptions of these utterances."
        )
    return f"{what}. Give the frontend more frames per second, or choose a model that keeps every frame."
