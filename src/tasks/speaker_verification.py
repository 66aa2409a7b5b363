"""Speaker verification (``task=speaker_verification``): waveform -> frontend -> encoder -> embedding head
(pooling over real frames, projection, L2 normalisation); two utterances are compared by the cosine
similarity of their embeddings, and a trial is accepted when it reaches a threshold.

Every validation and test scores the split's trials (:mod:`src.data.verification.trials`) by EER and minDCF,
overall and per condition (text-dependent, text-independent); the validation EER picks the checkpoint,
and the threshold at the validation EER is kept in the checkpoint for ``verify.py``'s decisions.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import torch
import torch.distributed as dist
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from torch import Tensor

from src.data.verification.trials import CONDITIONS, Trials
from src.tasks.base import FrontendEncoderTask
from src.utils.config_values import choice
from src.utils.lengths import full_lengths
from src.verification.det_plot import det_figure
from src.verification.losses import AdditiveMarginSoftmax, contrastive_loss
from src.verification.metrics import (
    check_costs,
    detection_errors,
    detection_summary,
    equal_error_rate,
    error_rates_at,
)

log = logging.getLogger(__name__)

Batch = tuple[Tensor, Tensor, Tensor, Tensor]
"""``(waveforms (batch, time), lengths (batch,), speakers (batch,), items (batch,))``."""
OBJECTIVES = ("am_softmax", "contrastive")


class SpeakerVerificationTask(FrontendEncoderTask):
    """Speaker embeddings trained by a Siamese pair loss or a speaker classification, scored on trials.

    Objectives (``task.objective``):

    - ``"am_softmax"`` (default): additive-margin softmax over the training speakers
      (:class:`src.verification.losses.AdditiveMarginSoftmax`; its weights are used only in training).
    - ``"contrastive"``: the Siamese pair loss of the "Deep Learning Systems" assignment on every pair of
      the batch (:func:`src.verification.losses.contrastive_loss`); batches hold groups of
      ``data.utterances_per_speaker`` utterances per speaker, so they have target pairs.

    Args:
        frontend, encoder, optimizer, scheduler, monitor, mode, standardize_features, spec_augment,
            example_samples, compile, compression: as :class:`~src.tasks.base.FrontendEncoderTask`.
        head: partial config of the embedding head (:class:`src.tasks.heads.EmbeddingHead`).
        label_names: the training speakers (the data's ``label_names``).
        objective: ``"am_softmax"`` or ``"contrastive"``.
        margin, scale: the additive margin and logit scale of ``"am_softmax"``.
        contrastive_margin: non-target pairs of ``"contrastive"`` cost nothing below this cosine.
        p_target, c_miss, c_fa: the target prior and costs of minDCF.
        projector_speakers: test speakers whose embeddings go to TensorBoard's projector (0: none).

    Logged: ``train/loss``; ``{val,test}/eer`` and ``min_dcf`` over all trials and per condition
    (``eer_text_dependent``, ``min_dcf_text_independent``, ...), the monitor being ``val/eer``; at test
    also the miss and false-alarm rates at the validation EER threshold (``test/miss_at_val_threshold``,
    ``test/false_alarm_at_val_threshold``). TensorBoard: target and non-target score histograms and the
    DET curve of each validation and of the test, and the projector of the test embeddings.

    Raises:
        ValueError: for data without training speakers, or an ``objective``, margin, scale or cost that
            cannot work, naming the key.
    """

    METRIC_MODES: ClassVar[dict[str, str]] = {
        "eer": "min",
        "min_dcf": "min",
        **{f"{metric}_{condition}": "min" for condition in CONDITIONS for metric in ("eer", "min_dcf")},
    }
    TEST_METRIC: ClassVar[str] = "eer"
    TARGETS: ClassVar[str] = "speaker"

    def __init__(
        self,
        frontend: Mapping[str, Any],
        encoder: Mapping[str, Any],
        head: Mapping[str, Any],
        label_names: Sequence[str],
        example_samples: int,
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None = None,
        monitor: str = "val/eer",
        mode: str = "min",
        standardize_features: bool = False,
        spec_augment: Mapping[str, Any] | None = None,
        compile: bool = False,
        compression: Mapping[str, Any] | None = None,
        objective: str = "am_softmax",
        margin: float = 0.1,
        scale: float = 15.0,
        contrastive_margin: float = 0.3,
        p_target: float = 0.01,
        c_miss: float = 1.0,
        c_fa: float = 1.0,
        projector_speakers: int = 10,
    ) -> None:
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
        if len(label_names) < 2:
            raise ValueError(
                f"task=speaker_verification needs training speakers (the data's label_names), got "
                f"{list(label_names)}: use data=speaker_verification"
            )
        self.save_hyperparameters(logger=False)
        self.objective = str(choice("task.objective", objective, OBJECTIVES))
        if not -1 <= contrastive_margin < 1:
            raise ValueError(
                f"task.contrastive_margin must be in [-1, 1), got {contrastive_margin}: e.g. 0.3"
            )
        check_costs(p_target, c_miss, c_fa)
        self.costs = {"p_target": p_target, "c_miss": c_miss, "c_fa": c_fa}
        if projector_speakers < 0:
            raise ValueError(f"task.projector_speakers must be >= 0 (0: none), got {projector_speakers}")
        self.projector_speakers = projector_speakers
        self.head = self.build_head(head)
        self.compress_backbone()
        self.speaker_classifier = (
            AdditiveMarginSoftmax(self.head.embedding_dim, len(label_names), margin, scale)
            if self.objective == "am_softmax"
            else None
        )
        # The cosine threshold at the EER of the validation that picked the checkpoint (verify.py).
        self.register_buffer("eer_threshold", torch.tensor(float("nan")))
        self._embedded: dict[str, list[tuple[Tensor, Tensor]]] = {"val": [], "test": []}
        self.test_trial_scores: Tensor | None = None
        self.test_trials: Trials | None = None

    def forward(self, waveforms: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(batch, time)`` waveforms and their ``(batch,)`` lengths in samples (``None``: all of ``time``)
        -> ``(batch, embedding_dim)`` unit-norm speaker embeddings."""
        if lengths is None:
            lengths = full_lengths(waveforms.shape[0], waveforms.shape[-1], waveforms.device)
        return self.head(*self.encode(waveforms, lengths))

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        waveforms, lengths, speakers, _ = batch
        embeddings = self(waveforms, lengths)
        if self.speaker_classifier is not None:
            loss = self.speaker_classifier(embeddings, speakers)
        else:
            loss = contrastive_loss(embeddings, speakers, self.hparams.contrastive_margin)
        self.log_loss("train", loss, len(lengths))
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._embed("val", batch)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._embed("test", batch)

    def _embed(self, stage: str, batch: Batch) -> None:
        waveforms, lengths, _, items = batch
        self._embedded[stage].append((items.cpu(), self(waveforms, lengths).float().cpu()))

    def on_validation_epoch_start(self) -> None:
        self._embedded["val"] = []

    def on_test_epoch_start(self) -> None:
        self._embedded["test"] = []

    def on_validation_epoch_end(self) -> None:
        """Score the validation trials, log their metrics and, after sanity checking, keep the EER
        threshold and log the score histograms and DET curve."""
        scores, trials = self._trial_scores("val")
        values, threshold = self._metrics(scores, trials)
        for name, value in values.items():
            self.log(f"val/{name}", value, prog_bar=name == "eer")
        if not self.trainer.sanity_checking and trials is not None:
            self.eer_threshold.fill_(threshold)
            self._log_scores("validation", scores, trials)

    def on_test_epoch_end(self) -> None:
        """Score the test trials and log their metrics, the rates at the validation threshold, the score
        histograms, the DET curve and the projector of a few test speakers."""
        scores, trials = self._trial_scores("test")
        values, _ = self._metrics(scores, trials)
        if trials is not None and not torch.isnan(self.eer_threshold):
            miss, false_alarm = error_rates_at(scores, trials.target, float(self.eer_threshold))
            values.update(miss_at_val_threshold=miss, false_alarm_at_val_threshold=false_alarm)
        for name, value in values.items():
            self.log(f"test/{name}", value)
        self.test_trial_scores, self.test_trials = scores, trials
        if trials is not None:
            self._log_scores("test", scores, trials)
            self._log_projector()

    def _gathered(self, stage: str) -> tuple[Tensor, Tensor]:
        """``(items (n,), embeddings (n, dim))`` embedded in ``stage`` on every process."""
        parts = self._embedded[stage]
        if dist.is_available() and dist.is_initialized() and self.trainer.world_size > 1:
            everyone: list[Any] = [None] * self.trainer.world_size
            dist.all_gather_object(everyone, parts)
            parts = [part for process in everyone for part in process]
        if not parts:
            return torch.zeros(0, dtype=torch.int64), torch.zeros(0, self.head.embedding_dim)
        return torch.cat([items for items, _ in parts]), torch.cat([embedding for _, embedding in parts])

    def _trial_scores(self, stage: str) -> tuple[Tensor, Trials | None]:
        """The cosine score of each trial of ``stage`` whose two utterances were embedded (a partial
        epoch, such as a sanity check, embeds only some), and those trials; ``None`` when they lack
        targets or non-targets."""
        items, embeddings = self._gathered(stage)
        trials = self.trainer.datamodule.trials(stage)
        table = torch.full((len(self.trainer.datamodule.files(stage)), embeddings.shape[-1]), float("nan"))
        table[items] = embeddings
        scores = (table[trials.enroll] * table[trials.test]).sum(dim=-1)
        kept = ~torch.isnan(scores)
        if bool(kept.all()):
            return scores, trials
        trials = Trials(trials.enroll[kept], trials.test[kept], trials.target[kept], trials.same_text[kept])
        if int(trials.target.sum()) in (0, len(trials)):
            return scores[kept], None
        return scores[kept], trials

    def _metrics(self, scores: Tensor, trials: Trials | None) -> tuple[dict[str, float], float]:
        """EER and minDCF overall and per condition (NaN without trials), and the EER threshold."""
        names = ["eer", "min_dcf", *(f"{m}_{c}" for c in CONDITIONS for m in ("eer", "min_dcf"))]
        if trials is None:
            return dict.fromkeys(names, float("nan")), float("nan")
        overall = detection_summary(scores, trials.target, self.costs)
        values = {"eer": overall["eer"], "min_dcf": overall["min_dcf"]}
        for condition in CONDITIONS:
            mask = trials.condition(condition)
            summary = detection_summary(scores[mask], trials.target[mask], self.costs)
            for metric in ("eer", "min_dcf"):
                values[f"{metric}_{condition}"] = summary[metric] if summary else float("nan")
        threshold = overall["eer_threshold"]
        return values, threshold

    def _experiments(self) -> list[Any]:
        return [lg.experiment for lg in self.trainer.loggers if isinstance(lg, TensorBoardLogger)]

    def _log_scores(self, stage: str, scores: Tensor, trials: Trials) -> None:
        """Histograms of target and non-target scores and the DET curve (all trials and per condition)."""
        experiments = self._experiments()
        if not experiments:
            return
        figure = det_figure(self._curves(scores, trials), f"DET, {stage} trials")
        for experiment in experiments:
            for kind, mask in (("target", trials.target), ("non_target", ~trials.target)):
                experiment.add_histogram(
                    f"verification/{stage}/{kind}_scores", scores[mask], self.global_step
                )
            experiment.add_figure(f"verification/{stage}/det", figure, self.global_step, close=False)
        plt.close(figure)

    @staticmethod
    def _curves(scores: Tensor, trials: Trials) -> dict[str, Any]:
        curves = {"all trials": detection_errors(scores, trials.target)}
        for condition in CONDITIONS:
            mask = trials.condition(condition)
            if 0 < int(trials.target[mask].sum()) < int(mask.sum()):
                curves[condition.replace("_", "-")] = detection_errors(scores[mask], trials.target[mask])
        return curves

    def _log_projector(self) -> None:
        """The test embeddings of the first :attr:`projector_speakers` test speakers (sorted ids), with
        their speaker ids as metadata, in TensorBoard's projector."""
        experiments = self._experiments()
        if not experiments or not self.projector_speakers:
            return
        items, embeddings = self._gathered("test")
        speakers = self.trainer.datamodule.speakers("test")
        chosen = set(sorted({speakers[int(i)] for i in items})[: self.projector_speakers])
        keep = [row for row, item in enumerate(items.tolist()) if speakers[item] in chosen]
        metadata = [speakers[int(items[row])] for row in keep]
        for experiment in experiments:
            experiment.add_embedding(
                embeddings[keep],
                metadata=metadata,
                tag="verification/test_speakers",
                global_step=self.global_step,
            )

    def write_test_outputs(self, datamodule: Any, output_dir: Path, loggers: list[Logger]) -> dict[str, Any]:
        """``<output_dir>/verification/``: ``trial_scores.csv`` (``label enroll test condition score`` for
        every test trial) and ``det_curve.png``; returns the trial counts, the thresholds and the trials
        file, for ``metrics.json``."""
        folder = output_dir / "verification"
        folder.mkdir(parents=True, exist_ok=True)
        scores, trials = self.test_trial_scores, self.test_trials
        summary: dict[str, Any] = {
            "objective": self.objective,
            "val_eer_threshold": float(self.eer_threshold),
            "trials_file": str(datamodule.trials_path("test")),
            **self.costs,
        }
        if scores is None or trials is None:
            return {**summary, "trials": 0}
        files = datamodule.files("test")
        with (folder / "trial_scores.csv").open("w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["label", "enroll", "test", "condition", "score"])
            for enroll, test, target, same_text, score in zip(
                trials.enroll, trials.test, trials.target, trials.same_text, scores, strict=True
            ):
                condition = CONDITIONS[0] if same_text else CONDITIONS[1]
                writer.writerow(
                    [int(target), files[int(enroll)], files[int(test)], condition, f"{float(score):.6f}"]
                )
        figure = det_figure(self._curves(scores, trials), "DET, test trials")
        figure.savefig(folder / "det_curve.png")
        plt.close(figure)
        counts = {c: int(trials.condition(c).sum()) for c in CONDITIONS}
        return {
            **summary,
            "trials": len(trials),
            "target_trials": int(trials.target.sum()),
            "trials_per_condition": counts,
            "test_eer_threshold": equal_error_rate(scores, trials.target)[1],
        }
