"""Does denoising help recognition? Keyword accuracy of one classifier checkpoint on noisy test clips, as
they are and with a denoiser (or a classical baseline) in front.

``python -m src.denoising.keyword_accuracy kws_ckpt=<kws run>/checkpoints/last.ckpt
denoiser_ckpt=<denoising run>/checkpoints/last.ckpt`` (``conf/keyword_accuracy.yaml``) writes
``keyword_accuracy.json`` and ``keyword_accuracy.md`` in its own run folder and prints the table.

- Clips: the test split of the keyword checkpoint's own data config (keys under ``data`` merged on as in
  ``test.py``, e.g. ``+data.root=`` for a moved corpus), each with its true length. ``_silence_`` clips are
  left out of every row, the clean one included: they are background noise already, so an SNR of speech
  to added noise means nothing for them; the output says how many were left out.
- Noise: the kinds ``data=denoising`` mixes, from the test region only: synthesised white, pink and brown
  noise (``noise_dir=null``) or the last 10 % of each recording of ``noise_dir`` (the test region of
  :data:`src.data.speech_commands.splits.NOISE_REGIONS`), plus babble of ``babble_talkers`` other test
  speakers. Each clip gets one noise, drawn by ``seed``, mixed at every SNR of ``snr_db`` over the clip's
  true length (:func:`src.data.denoising.noise.mix_at_snr`), so the SNRs compare the same noise.
- Front ends: none (``noisy``), the denoiser (``denoised``) and the classical baselines of
  :data:`src.denoising.classical.BASELINES` with the denoiser's STFT; the same classifier reads all.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from src.data.base import TaskDataModule
from src.data.denoising.noise import NoiseBank, NoiseChoice, mix_at_snr, noise_recordings, split_noise
from src.data.speech_commands.splits import NOISE_REGIONS, SILENCE_LABEL
from src.denoising.classical import BASELINES
from src.denoising.enhancement import load_denoiser
from src.deployment.classifier import LoadedClassifier, WaveformClassifier, load_classifier
from src.evaluation import changed_keys, checked_data_config
from src.resolvers import register_resolvers
from src.tasks.denoising import DenoisingTask
from src.training import command_line_overrides, corpus_note
from src.utils.config_values import positive_int, positive_number, real_number
from src.utils.run_files import atomic_write, write_json_atomic

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOISY, DENOISED, CLEAN = "noisy", "denoised", "clean"
CONDITIONS = (NOISY, DENOISED, *BASELINES)
"""The table's columns: the front end in front of the classifier (none, the denoiser, each baseline)."""

FrontEnd = Callable[[Tensor, Tensor], Tensor]
"""``(waveforms (batch, time), lengths (batch,)) -> (batch, time)`` enhanced waveforms."""


@dataclass(frozen=True)
class KeywordClips:
    """The speech clips of a test split: ``waveforms (n, clip_samples)`` zero after ``lengths (n,)``
    samples, class indices ``labels (n,)``, each clip's ``speakers``, and how many ``_silence_`` clips of
    the split were left out."""

    waveforms: Tensor
    lengths: Tensor
    labels: Tensor
    speakers: list[str]
    silence_left_out: int


@dataclass(frozen=True)
class Settings:
    """The measurement's settings of ``conf/keyword_accuracy.yaml``, checked."""

    snr_db: list[float]
    batch_size: int
    babble_talkers: int
    synthetic_noise_seconds: float
    seed: int


def load_pair(kws_ckpt: str | Path, denoiser_ckpt: str | Path) -> tuple[LoadedClassifier, DenoisingTask]:
    """The keyword classifier of ``kws_ckpt`` and the denoiser of ``denoiser_ckpt``, checked to fit.

    Raises:
        ValueError: for a ``kws_ckpt`` that is no clip classifier, a ``denoiser_ckpt`` that is no denoiser
            (:func:`src.denoising.enhancement.load_denoiser`), or the two at different sample rates
            (:func:`check_sample_rates`), each naming the key.
    """
    loaded = load_classifier(kws_ckpt, key="kws_ckpt")
    denoiser = load_denoiser(denoiser_ckpt, key="denoiser_ckpt").task
    check_sample_rates(loaded.model, denoiser)
    return loaded, denoiser


def check_sample_rates(classifier: WaveformClassifier, denoiser: DenoisingTask) -> None:
    """Refuse a denoiser built for another sample rate than the classifier's.

    Raises:
        ValueError: naming both rates, ``denoiser_ckpt`` and the setting to train a fitting denoiser with.
    """
    if int(denoiser.sample_rate) != classifier.sample_rate:
        raise ValueError(
            f"denoiser_ckpt: the denoiser works on {denoiser.sample_rate} Hz audio (its task.sample_rate) "
            f"but the kws_ckpt classifier on {classifier.sample_rate} Hz (its data.sample_rate): give a "
            f"denoiser trained at that rate, e.g. python train.py data=denoising "
            f"data.speech.sample_rate={classifier.sample_rate}"
        )


def speech_test_clips(datamodule: TaskDataModule, class_names: list[str]) -> KeywordClips:
    """Every test clip of the set-up ``datamodule`` (a Speech Commands module) except ``_silence_``, in
    :meth:`files` order."""
    batches = list(datamodule.test_dataloader())
    waveforms = torch.cat([batch[0] for batch in batches])
    lengths = torch.cat([batch[1] for batch in batches])
    labels = torch.cat([batch[2] for batch in batches])
    keep = torch.ones_like(labels, dtype=torch.bool)
    if SILENCE_LABEL in class_names:
        keep = labels != class_names.index(SILENCE_LABEL)
    speakers = [speaker for speaker, kept in zip(datamodule.speakers("test"), keep, strict=True) if kept]
    return KeywordClips(waveforms[keep], lengths[keep], labels[keep], speakers, int((~keep).sum()))


def evaluation_noise(
    noise_dir: str | Path | None, sample_rate: int, synthetic_noise_seconds: float, generator: torch.Generator
) -> dict[str, list[Tensor]]:
    """The test region of each ``.wav`` recording of ``noise_dir`` read at ``sample_rate`` (kind
    ``recorded``), or for ``noise_dir=None`` one synthesised noise of each colour of
    ``synthetic_noise_seconds``, as ``data=denoising`` builds its test noise.

    Raises:
        FileNotFoundError: for a ``noise_dir`` that holds no ``.wav`` file, naming the key.
    """
    paths = [] if noise_dir is None else noise_recordings(noise_dir, "noise_dir")
    return split_noise("test", sample_rate, paths, synthetic_noise_seconds, generator)


def draw_noise(clips: KeywordClips, bank: NoiseBank, generator: torch.Generator) -> list[NoiseChoice]:
    """One noise of ``bank`` for each clip of ``clips`` (as long as its true length), drawn in clip
    order from ``generator``."""
    return [bank.draw(index, length, generator) for index, length in enumerate(clips.lengths.tolist())]


def evaluation_noise_bank(
    clips: KeywordClips, noise_dir: str | Path | None, sample_rate: int, settings: Settings
) -> tuple[NoiseBank, list[NoiseChoice]]:
    """The test noise (:func:`evaluation_noise`) with babble of ``settings.babble_talkers`` other speakers of
    ``clips``, and one noise of it for each clip (:func:`draw_noise`), all from one generator seeded by
    ``settings.seed``.

    Raises:
        ValueError: when ``clips`` have too few other speakers for the babble, naming ``babble_talkers``.
        FileNotFoundError: from :func:`evaluation_noise`.
    """
    generator = torch.Generator().manual_seed(settings.seed)
    recordings = evaluation_noise(noise_dir, sample_rate, settings.synthetic_noise_seconds, generator)
    try:
        bank = NoiseBank(recordings, settings.babble_talkers, clips.speakers, lambda i: clips.waveforms[i])
    except ValueError as error:  # its message names data=denoising's key; this command's is babble_talkers
        raise ValueError(f"babble_talkers={settings.babble_talkers}: {error}") from error
    return bank, draw_noise(clips, bank, generator)


def noise_source(noise_dir: str | Path | None) -> str:
    """Where :func:`evaluation_noise` takes the noise from, in words."""
    if noise_dir is None:
        return "white, pink and brown noise synthesised for the test"
    low, high = NOISE_REGIONS["test"]
    return f"the test region ({low:.0%}-{high:.0%}) of the recordings of {noise_dir}"


def mix_clips(clips: KeywordClips, bank: NoiseBank, choices: list[NoiseChoice], snr_db: float) -> Tensor:
    """``(n, clip_samples)``: each clip of ``clips`` with its noise ``choices[i]`` of ``bank`` mixed in at
    ``snr_db`` over its true length (:func:`src.data.denoising.noise.mix_at_snr`); zero after it."""
    noisy = torch.zeros_like(clips.waveforms)
    for index, (length, choice) in enumerate(zip(clips.lengths.tolist(), choices, strict=True)):
        noise = bank.noise(choice, length)
        noisy[index, :length] = mix_at_snr(clips.waveforms[index, :length], noise, snr_db)
    return noisy


@torch.inference_mode()
def accuracy(
    classifier: WaveformClassifier,
    waveforms: Tensor,
    clips: KeywordClips,
    batch_size: int,
    front_end: FrontEnd | None = None,
) -> float:
    """Share of ``waveforms`` ``(n, clip_samples)`` (``clips``' lengths and labels) that ``classifier``
    labels right, after ``front_end`` (``None``: as they are), ``batch_size`` clips at a time."""
    correct = 0
    for start in range(0, len(waveforms), batch_size):
        batch, lengths = waveforms[start : start + batch_size], clips.lengths[start : start + batch_size]
        if front_end is not None:
            batch = front_end(batch, lengths)
        predicted = classifier(batch, lengths).argmax(-1)
        correct += int((predicted == clips.labels[start : start + batch_size]).sum())
    return correct / len(waveforms)


def checked_settings(cfg: DictConfig) -> Settings:
    """The :class:`Settings` of ``cfg``.

    Raises:
        ValueError: for a value that cannot work, naming its key and one that does.
    """
    snrs = cfg.snr_db
    if not OmegaConf.is_list(snrs) or not snrs:
        raise ValueError(f"snr_db must list input SNRs in dB, got {snrs!r}: e.g. snr_db=[0,5,10]")
    for key in ("babble_talkers", "seed"):
        value = cfg[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{key} must be an integer >= 0, got {value!r}: e.g. {key}=3")
    return Settings(
        snr_db=[float(real_number("snr_db", snr, 5)) for snr in snrs],
        batch_size=positive_int("batch_size", cfg.batch_size, 64),
        babble_talkers=cfg.babble_talkers,
        synthetic_noise_seconds=float(
            positive_number("synthetic_noise_seconds", cfg.synthetic_noise_seconds, 30)
        ),
        seed=cfg.seed,
    )


def keyword_accuracy(cfg: DictConfig) -> dict[str, Any]:
    """Measure the accuracy of ``cfg.kws_ckpt`` on its clean and noisy test clips with each front end;
    write ``keyword_accuracy.json`` and ``keyword_accuracy.md`` in ``cfg.paths.output_dir`` and return the
    content of the JSON file.

    Raises:
        ValueError: for settings :func:`checked_settings` refuses, checkpoints :func:`load_pair` refuses,
            data keys :func:`src.evaluation.checked_data_config` refuses, data serving other labels or clip
            lengths than the classifier's, a split without speech, or too few speakers for the babble.
        FileNotFoundError: for a ``noise_dir`` without recordings.
    """
    settings = checked_settings(cfg)
    loaded, denoiser = load_pair(cfg.kws_ckpt, cfg.denoiser_ckpt)
    classifier, run_config = loaded.model, loaded.run_config
    data_config = checked_data_config(run_config.data, cfg.data, run_config.frontend)
    L.seed_everything(run_config.seed, workers=True)
    datamodule = instantiate(data_config, _convert_="all")
    if (
        list(datamodule.label_names) != classifier.class_names
        or datamodule.example_samples != classifier.clip_samples
    ):
        raise ValueError(
            f"The data serves labels {list(datamodule.label_names)} in clips of {datamodule.example_samples} "
            f"samples, the kws_ckpt classifier reads {classifier.class_names} in {classifier.clip_samples}: "
            "leave data.words, data.*_percentage and data.clip_seconds out"
        )
    datamodule.prepare_data()
    datamodule.setup("test")
    clips = speech_test_clips(datamodule, classifier.class_names)
    if not len(clips.labels):
        raise ValueError("The test split holds no speech clips (only _silence_): nothing to measure")
    bank, choices = evaluation_noise_bank(clips, cfg.noise_dir, classifier.sample_rate, settings)
    front_ends: dict[str, FrontEnd | None] = {NOISY: None, DENOISED: denoiser}
    front_ends.update({name: functools.partial(denoiser.baseline, name) for name in BASELINES})
    rows = []
    for snr in [None, *settings.snr_db]:
        waveforms = clips.waveforms if snr is None else mix_clips(clips, bank, choices, snr)
        scores = {
            name: accuracy(classifier, waveforms, clips, settings.batch_size, end)
            for name, end in front_ends.items()
        }
        rows.append({"input": CLEAN if snr is None else f"{snr:g} dB", "snr_db": snr, "accuracy": scores})
    summary = {
        "kws_checkpoint": str(cfg.kws_ckpt),
        "denoiser_checkpoint": str(cfg.denoiser_ckpt),
        "denoiser": {
            "encoder": denoiser.hparams.encoder["_target_"],
            "loss": denoiser.loss_name,
            "n_fft": denoiser.frontend.n_fft,
            "hop_length": denoiser.frontend.hop_length,
        },
        "corpus": data_config.get("corpus"),
        "corpus_note": corpus_note(data_config.get("corpus")),
        "data_root": data_config.get("root"),
        "data_changes": changed_keys(run_config.data, data_config),
        "overrides": command_line_overrides(),
        "sample_rate": classifier.sample_rate,
        "class_names": classifier.class_names,
        "test_clips": len(clips.labels),
        "silence_clips_left_out": clips.silence_left_out,
        "noise": {
            "kinds": bank.kinds,
            "source": noise_source(cfg.noise_dir),
            "babble_talkers": settings.babble_talkers,
            "seed": settings.seed,
        },
        "conditions": list(CONDITIONS),
        "rows": rows,
    }
    output_dir = Path(cfg.paths.output_dir)
    write_json_atomic(output_dir / "keyword_accuracy.json", summary)
    with atomic_write(output_dir / "keyword_accuracy.md") as stream:
        stream.write(format_table(summary) + "\n")
    return summary


def format_table(summary: dict[str, Any]) -> str:
    """The accuracies as a markdown table (rows: clean and each input SNR; columns: the front ends) under
    the corpus note, with the clip counts and the noise below."""
    lines = [
        f"Keyword accuracy with and without a denoiser in front ({summary['corpus_note']}):",
        "",
        f"| input SNR | {' | '.join(summary['conditions'])} |",
        f"|---|{'---|' * len(summary['conditions'])}",
    ]
    for row in summary["rows"]:
        cells = " | ".join(f"{row['accuracy'][name]:.4f}" for name in summary["conditions"])
        lines.append(f"| {row['input']} | {cells} |")
    noise, stft = summary["noise"], summary["denoiser"]
    lines += [
        "",
        f"Keyword accuracy of one classifier ({summary['kws_checkpoint']}) on {summary['test_clips']} test "
        f"clips ({summary['silence_clips_left_out']} _silence_ clips left out: they are noise already), "
        f"as they are ({NOISY}; clean in the clean row) and after each front end ({DENOISED}: "
        f"{summary['denoiser_checkpoint']}; the baselines use its STFT, n_fft {stft['n_fft']}, hop "
        f"{stft['hop_length']}). Noise: {', '.join(noise['kinds'])} ({noise['source']}; babble: "
        f"{noise['babble_talkers']} other test speakers), one per clip at every SNR, seed {noise['seed']}. "
        f"{summary['corpus_note']}.",
    ]
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path="../../conf", config_name="keyword_accuracy")
def main(cfg: DictConfig) -> None:
    """Measure the keyword accuracy with and without the denoiser and print the table."""
    print(format_table(keyword_accuracy(cfg)))


if __name__ == "__main__":
    # conf/paths/default.yaml places data/ and logs/ under PROJECT_ROOT: this repository by default.
    os.environ.setdefault("PROJECT_ROOT", str(PROJECT_ROOT))
    register_resolvers()
    main()
