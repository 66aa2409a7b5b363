"""Phone recognition (``task=ctc``): a frontend, an encoder that keeps time and a per-frame head trained
with CTC, scored by phone error rate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import torch
from lightning.pytorch.loggers import Logger
from torch import nn

from src.reporting.test_analysis import write_test_decodings
from src.tasks.base import FrontendEncoderTask
from src.tasks.ctc_decoding import ctc_greedy_decode
from src.tasks.phone_error_rate import PhoneErrorRate, scoring_transcript

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
    batch) with ``zero_infinity=True``: an utterance with fewer frames than its labels need has no CTC
    alignment and an infinite loss, whose gradient would turn every parameter to NaN; it is counted as zero
    instead (it cannot happen at TIMIT's phone rate with a 10 ms hop, but can with coarse frames).

    Evaluation decodes greedily (:func:`src.tasks.ctc_decoding.ctc_greedy_decode`) and scores the phone
    error rate on the 39-phone set over the whole split (:class:`src.tasks.phone_error_rate.PhoneErrorRate`).
    During ``test`` every utterance's decoding is appended to :attr:`test_decodings`, in dataloader order.

    Args:
        frontend, encoder, optimizer, scheduler, monitor, mode, standardize_features, spec_augment,
            example_samples: as :class:`~src.tasks.base.FrontendEncoderTask`.
        head: partial config of the per-frame head.
        label_names: the training phone set in index order (TIMIT's 61, 48 or 39 phones; the data
            module's ``label_names``).

    Raises:
        ValueError: for an empty phone set, or an encoder that does not keep time (naming ``model=``).

    Consumes batches :data:`PhoneBatch`. Logged: ``train/loss`` (step and epoch), ``val/loss``,
    ``val/per``, ``test/loss``, ``test/per`` (epoch).
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
        )
        if not self.encoder.keeps_time:
            raise ValueError(
                f"{encoder['_target_']} collapses the frames into one vector, but CTC needs one output per "
                "frame: choose model=lstm, bilstm, gru, crnn, bcresnet or bcresnet_bilstm"
            )
        self.save_hyperparameters(logger=False)
        self.phones = list(label_names)
        self.head = self.build_head(head, num_outputs=len(self.phones) + 1)
        self.criterion = nn.CTCLoss(blank=BLANK, zero_infinity=True)
        self.val_per = PhoneErrorRate()
        self.test_per = PhoneErrorRate()
        self.test_decodings: list[DecodedUtterance] = []

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

    def training_step(self, batch: PhoneBatch, batch_idx: int) -> torch.Tensor:
        waveforms, wave_lengths, targets, target_lengths = batch
        logits, frame_lengths = self(waveforms, wave_lengths)
        loss = self.ctc_loss(logits, frame_lengths, targets, target_lengths)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(waveforms))
        return loss

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
        self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=stage == "val", batch_size=batch_size)
        self.log(f"{stage}/per", per, on_epoch=True, prog_bar=stage == "val", batch_size=batch_size)
        return hypotheses, references

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
