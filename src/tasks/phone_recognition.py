"""Phone recognition: a frontend and a per-frame backbone trained with CTC, scored by phone error rate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
from hydra.utils import instantiate
from torch import nn

from src.tasks.ctc_decoding import ctc_greedy_decode
from src.tasks.frontend_task import FrontendBackboneTask
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


class PhoneRecognitionTask(FrontendBackboneTask):
    """Waveform -> frontend -> per-frame backbone -> phone posteriors (+ blank), optimised with CTC.

    Both parts are built here from their configs, so a checkpoint rebuilds itself from its saved
    hyperparameters alone: the backbone is created with ``in_features=frontend.out_features`` and
    ``num_outputs=len(phones) + 1``; output :data:`BLANK` (0) is the CTC blank and output ``i + 1`` is
    ``phones[i]``. Each utterance's frame count is ``frontend.num_frames(wave_length)``, so the backbone
    skips its padded frames and the CTC loss and the decoding read only real frames.

    The loss is ``torch.nn.CTCLoss`` (per-utterance loss divided by its target length, averaged over the
    batch) with ``zero_infinity=True``: an utterance with fewer frames than its labels need has no CTC
    alignment and an infinite loss, whose gradient would turn every parameter to NaN; it is counted as zero
    instead (it cannot happen at TIMIT's phone rate with a 10 ms hop, but can with coarse frames).

    Evaluation decodes greedily (:func:`src.tasks.ctc_decoding.ctc_greedy_decode`) and scores the phone
    error rate on the 39-phone set over the whole split (:class:`src.tasks.phone_error_rate.PhoneErrorRate`).
    During ``test`` every utterance's decoding is appended to :attr:`test_decodings`, in dataloader order.
    A frontend with a ``constrain_()`` method has it called after every optimiser step.

    Args:
        frontend: config (with ``_target_``) of a module ``(batch, time) -> (batch, features, frames)``
            with an ``out_features`` attribute and a ``num_frames(num_samples)`` method that also accepts
            an integer tensor of sample counts.
        backbone: config of a module ``(features (batch, features, frames), lengths (batch,)) ->
            (batch, frames, num_outputs)`` logits (see :mod:`src.backbones.sequence`).
        phones: the training phone set in index order (TIMIT's 61, 48 or 39 phones).
        optimizer: partial config of a ``torch.optim`` optimizer (``_partial_: true``).
        scheduler: optional partial config of a ``torch.optim.lr_scheduler`` stepped every epoch.

    Consumes batches :data:`PhoneBatch`. Logged: ``train/loss`` (step and epoch), ``val/loss``,
    ``val/per``, ``test/loss``, ``test/per`` (epoch).
    """

    monitor = "val/per"
    test_metric = "test/per"

    def __init__(
        self,
        frontend: Mapping[str, Any],
        backbone: Mapping[str, Any],
        phones: Sequence[str],
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not phones:
            raise ValueError("phones must list the training phone set (e.g. datamodule.phones), got none")
        self.save_hyperparameters(logger=False)
        self.phones = list(phones)
        self.frontend = instantiate(frontend)
        self.backbone = instantiate(
            backbone, in_features=self.frontend.out_features, num_outputs=len(self.phones) + 1
        )
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
        features = self.frontend(waveforms)
        lengths = self.frame_lengths(wave_lengths, features.shape[-1])
        return self.backbone(features, lengths), lengths

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
