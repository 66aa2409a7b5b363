"""An offline, synthetic Google Speech Commands v0.02 corpus spoken by espeak-ng.

The corpus has the exact on-disk format of the real one, so ``torchaudio.datasets.SPEECHCOMMANDS(root)``
reads either::

    root/SpeechCommands/speech_commands_v0.02/
        <word>/<speaker>_nohash_<n>.wav     16 kHz mono int16, at most 1 s (about 10% shorter)
        validation_list.txt testing_list.txt   assigned by the dataset's own hash rule (:func:`which_set`)
        _background_noise_/*.wav            >= 60 s each: copies of ``noise_dir`` or white/pink/brown noise
        README.md generator.json            a note that it is synthetic; parameters of the generation

Each speaker is a distinct espeak-ng voice (English accent + voice variant) with its own pitch, pitch
range and rate. Core words are said by about 90% of speakers 1-3 times, auxiliary words by about 40%
once or twice; every word is said at least once. Each clip has a random gain, position in the window
and background noise at 5-30 dB SNR. Every random choice comes from a generator seeded by
``(seed, speaker, word, n)``, so the files are byte-identical for a seed whatever ``num_workers`` is.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import logging
import multiprocessing
import os
import re
import shutil
import wave
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio
from torchaudio.datasets.speechcommands import EXCEPT_FOLDER as NOISE_FOLDER
from torchaudio.datasets.speechcommands import FOLDER_IN_ARCHIVE

from src.data.synthesis import espeak
from src.data.synthesis.generated_corpus import MANIFEST, check_manifest, generate_once

log = logging.getLogger(__name__)

CORE_WORDS = (
    *("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"),
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
)
AUXILIARY_WORDS = (
    *("backward", "bed", "bird", "cat", "dog", "follow", "forward", "happy", "house", "learn"),
    *("marvin", "sheila", "tree", "visual", "wow"),
)
WORDS = tuple(sorted(CORE_WORDS + AUXILIARY_WORDS))
SAMPLE_RATE = 16000
CLIP_SAMPLES = SAMPLE_RATE
CORPUS_NAME = "speech_commands_v0.02"
FORMAT_VERSION = 1
DEFAULT_NUM_SPEAKERS = 600
VALIDATION_PERCENTAGE = 10
TESTING_PERCENTAGE = 10
MAX_NUM_WAVS_PER_CLASS = 2**27 - 1

# English voices shipped in espeak-ng-data/lang/gmw, and the variants in espeak-ng-data/voices/!v that
# sound human and clear: left out are the klatt-based ones, those that clip (Gene, paul, iven, travis, ed)
# and the muffled ones (m8, steph: their "tone" setting cuts everything above 600 Hz).
VOICES = (
    *("en-us", "en", "en-gb-scotland", "en-gb-x-rp"),
    *("en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc"),
)
VARIANTS = (
    *("m1", "m2", "m3", "m4", "m5", "m6", "m7", "Mike", "robert", "quincy", "grandpa", "max", "rob"),
    *("michel", "Alex", "f1", "f2", "f3", "f4", "f5", "aunty", "belinda", "linda", "shelby", "grandma"),
    "Annie",
)
PITCH, PITCH_RANGE, RATE = (20, 80), (20, 80), (130, 210)  # espeak units: 0-100, 0-100, words/min
CORE_SPEAKER_FRACTION, AUXILIARY_SPEAKER_FRACTION = 0.9, 0.4
CORE_REPEATS, AUXILIARY_REPEATS = (1, 3), (1, 2)
SHORT_CLIP_FRACTION, SHORT_CLIP_SAMPLES = 0.1, (8000, 16000)
SNR_DB, PEAK_DBFS = (5.0, 30.0), (-24.0, -1.0)
SYNTHETIC_NOISE_SECONDS = 60


@dataclass(frozen=True)
class Speaker:
    """A synthetic speaker: an 8-hex-digit id and the espeak-ng settings that make up its voice."""

    speaker_id: str
    voice: str
    pitch: int
    pitch_range: int
    rate: int


def which_set(filename: str, validation_percentage: float, testing_percentage: float) -> str:
    """The partition ('training', 'validation' or 'testing') of a clip, as in the dataset's README.

    Only the part of the file name before ``_nohash_`` is hashed, so all clips of a speaker share a set.
    """
    hash_name = re.sub(r"_nohash_.*$", "", os.path.basename(filename))
    hash_name_hashed = hashlib.sha1(hash_name.encode()).hexdigest()
    percentage_hash = (int(hash_name_hashed, 16) % (MAX_NUM_WAVS_PER_CLASS + 1)) * (
        100.0 / MAX_NUM_WAVS_PER_CLASS
    )
    if percentage_hash < validation_percentage:
        return "validation"
    if percentage_hash < testing_percentage + validation_percentage:
        return "testing"
    return "training"


def plan_speakers(num_speakers: int, seed: int) -> list[Speaker]:
    """Draw ``num_speakers`` speakers with unique ids and unique voice settings."""
    rng = np.random.default_rng([seed, 0])
    speakers: list[Speaker] = []
    ids: set[str] = set()
    settings: set[tuple[str, int, int, int]] = set()
    while len(speakers) < num_speakers:
        speaker_id = f"{int(rng.integers(2**32)):08x}"
        voice = f"{VOICES[rng.integers(len(VOICES))]}+{VARIANTS[rng.integers(len(VARIANTS))]}"
        setting = (
            voice,
            int(rng.integers(PITCH[0], PITCH[1] + 1)),
            int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
            int(rng.integers(RATE[0], RATE[1] + 1)),
        )
        if speaker_id not in ids and setting not in settings:
            ids.add(speaker_id)
            settings.add(setting)
            speakers.append(Speaker(speaker_id, *setting))
    return speakers


def plan_utterances(num_speakers: int, seed: int) -> list[list[tuple[str, int]]]:
    """For each speaker, the ``(word, n)`` clips it says; every word is said by at least one speaker."""
    plan: list[list[tuple[str, int]]] = []
    for speaker_index in range(num_speakers):
        rng = np.random.default_rng([seed, 1, speaker_index])
        clips = []
        for word in WORDS:
            core = word in CORE_WORDS
            low, high = CORE_REPEATS if core else AUXILIARY_REPEATS
            if rng.random() < (CORE_SPEAKER_FRACTION if core else AUXILIARY_SPEAKER_FRACTION):
                clips += [(word, n) for n in range(int(rng.integers(low, high + 1)))]
        plan.append(clips)
    said = {word for clips in plan for word, _ in clips}
    for word_index, word in enumerate(WORDS):
        if word not in said:
            plan[word_index % num_speakers].append((word, 0))
    return plan


def _synthesize_noise(kind: str, rng: np.random.Generator) -> np.ndarray:
    """``SYNTHETIC_NOISE_SECONDS`` of white, pink (1/f power) or brown (1/f^2 power) noise, peak 0.5."""
    num_samples = SYNTHETIC_NOISE_SECONDS * SAMPLE_RATE
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    frequencies = np.fft.rfftfreq(num_samples, 1 / SAMPLE_RATE)
    exponent = {"white": 0.0, "pink": 0.5, "brown": 1.0}[kind]
    spectrum *= np.maximum(frequencies, 10.0) ** -exponent
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, num_samples)
    return 0.5 * noise / np.abs(noise).max()


def _write_noise(noise_folder: Path, noise_dir: Path | None, seed: int) -> None:
    """Copy the wavs (and README) of ``noise_dir``, or write synthetic white, pink and brown noise."""
    noise_folder.mkdir()
    if noise_dir is None:
        for index, kind in enumerate(("white", "pink", "brown")):
            noise = _synthesize_noise(kind, np.random.default_rng([seed, 3, index]))
            _write_wav(noise_folder / f"{kind}_noise.wav", np.round(noise * 32767).astype(np.int16))
        (noise_folder / "README.md").write_text(
            "Synthetic white, pink and brown noise, 60 s each, generated by this project's "
            "src/data/speech_commands/corpus.py in place of the recorded background noise.\n"
        )
        return
    wavs = sorted(noise_dir.glob("*.wav"))
    if not wavs:
        raise ValueError(f"noise_dir {noise_dir} holds no .wav files")
    for wav in wavs:
        info = soundfile.info(wav)
        if info.samplerate != SAMPLE_RATE or info.channels != 1 or info.frames < CLIP_SAMPLES:
            raise ValueError(f"noise file {wav} must be 16 kHz mono and at least 1 s long, got {info}")
        shutil.copyfile(wav, noise_folder / wav.name)
    if (noise_dir / "README.md").is_file():
        shutil.copyfile(noise_dir / "README.md", noise_folder / "README.md")


def _write_wav(path: Path, samples: np.ndarray) -> None:
    """Write 16 kHz mono PCM_16 with the standard 44-byte header (``soundfile`` fsyncs every file: slow)."""
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(SAMPLE_RATE)
        file.writeframes(samples.astype("<i2").tobytes())


_worker_noises: list[np.ndarray] = []


def _init_worker(noise_paths: list[Path]) -> None:
    """Load the background noise once per worker process and keep torch on one thread."""
    torch.set_num_threads(1)
    _worker_noises[:] = [soundfile.read(path, dtype="float32")[0] for path in noise_paths]


def _render_clip(
    speaker: Speaker,
    word: str,
    rng: np.random.Generator,
    resample: torchaudio.transforms.Resample,
    reset_state: bool,
) -> np.ndarray:
    """One clip of ``speaker`` saying ``word``: int16 samples at 16 kHz, shape ``(time,)``, time <= 16000.

    ``reset_state`` starts espeak-ng from a freshly loaded library (see :mod:`src.data.synthesis.espeak`).
    """
    synthesis = espeak.synthesize(
        word,
        speaker.voice,
        rate=speaker.rate + int(rng.integers(-10, 11)),
        pitch=int(np.clip(speaker.pitch + rng.integers(-4, 5), 0, 100)),
        pitch_range=speaker.pitch_range,
        reset_state=reset_state,
    )
    speech = resample(torch.from_numpy(synthesis.samples)).numpy()
    loud = np.flatnonzero(np.abs(speech) > 0.01 * np.abs(speech).max())
    speech = speech[loud[0] : loud[-1] + 1][:CLIP_SAMPLES]
    length = CLIP_SAMPLES
    if rng.random() < SHORT_CLIP_FRACTION:
        length = max(int(rng.integers(*SHORT_CLIP_SAMPLES)), len(speech))
    offset = int(rng.integers(length - len(speech) + 1))
    clip = np.zeros(length)
    clip[offset : offset + len(speech)] = speech

    noise = _worker_noises[rng.integers(len(_worker_noises))]
    start = int(rng.integers(len(noise) - length + 1))
    segment = noise[start : start + length].astype(np.float64)
    noise_rms = np.sqrt(np.mean(segment**2))
    if noise_rms > 1e-6:
        speech_rms = np.sqrt(np.mean(speech.astype(np.float64) ** 2))
        clip += segment * speech_rms / (noise_rms * 10 ** (rng.uniform(*SNR_DB) / 20))
    clip *= 10 ** (rng.uniform(*PEAK_DBFS) / 20) / np.abs(clip).max()
    return np.round(clip * 32767).astype(np.int16)


def _render_speaker(task: tuple[Path, int, int, Speaker, list[tuple[str, int]]]) -> list[str]:
    """Write all clips of one speaker under ``corpus_dir``; returns their paths relative to it.

    espeak-ng is reset before the speaker's first clip only (resetting costs about 2 ms a clip): the clips
    of a speaker are always spoken in the same order, so the output does not depend on the worker.
    """
    corpus_dir, seed, speaker_index, speaker, clips = task
    resample = torchaudio.transforms.Resample(espeak.sample_rate(), SAMPLE_RATE)
    written = []
    for index, (word, n) in enumerate(clips):
        rng = np.random.default_rng([seed, 2, speaker_index, WORDS.index(word), n])
        relative = f"{word}/{speaker.speaker_id}_nohash_{n}.wav"
        _write_wav(corpus_dir / relative, _render_clip(speaker, word, rng, resample, reset_state=index == 0))
        written.append(relative)
    return written


def _generate(corpus_dir: Path, parameters: dict, noise_dir: Path | None, num_workers: int) -> None:
    """Write the whole corpus into the empty folder ``corpus_dir``, the manifest last."""
    num_speakers, seed = parameters["num_speakers"], parameters["seed"]
    speakers = plan_speakers(num_speakers, seed)
    plan = plan_utterances(num_speakers, seed)
    total = sum(len(clips) for clips in plan)
    log.info(
        "Generating %d clips of %d speakers with %d workers in %s",
        total,
        num_speakers,
        num_workers,
        corpus_dir,
    )
    _write_noise(corpus_dir / NOISE_FOLDER, noise_dir, seed)
    for word in WORDS:
        (corpus_dir / word).mkdir()
    tasks = [(corpus_dir, seed, index, speakers[index], plan[index]) for index in range(num_speakers)]
    noise_paths = sorted((corpus_dir / NOISE_FOLDER).glob("*.wav"))
    splits: dict[str, list[str]] = {"training": [], "validation": [], "testing": []}
    context = multiprocessing.get_context("spawn")  # safe in a parent that holds threads or CUDA
    with context.Pool(num_workers, initializer=_init_worker, initargs=(noise_paths,)) as pool:
        for done, written in enumerate(pool.imap_unordered(_render_speaker, tasks), start=1):
            for relative in written:
                splits[which_set(relative, VALIDATION_PERCENTAGE, TESTING_PERCENTAGE)].append(relative)
            if done % max(1, num_speakers // 10) == 0 or done == num_speakers:
                log.info("Generated the clips of %d/%d speakers", done, num_speakers)
    for split in ("validation", "testing"):
        (corpus_dir / f"{split}_list.txt").write_text("".join(f"{p}\n" for p in sorted(splits[split])))
    (corpus_dir / "README.md").write_text(
        "# Synthetic Speech Commands v0.02\n\n"
        "This is NOT Google's Speech Commands data set. Every clip was generated by this project "
        "(src/data/speech_commands/corpus.py) with the espeak-ng speech synthesiser and mixed with the "
        "background noise in _background_noise_ (synthetic, or copied from the noise_dir in generator.json). "
        "It is laid out exactly like speech_commands_v0.02 so that the same loaders read it; speaker ids "
        "are random and the splits follow the data set's hashing rule. generator.json records how it was "
        "made.\n\nLicences: espeak-ng and its voice data are GPL-3.0; copied background noise keeps the "
        "licence of its source (CC BY 4.0 for the Speech Commands recordings).\n"
    )
    manifest = {
        "generator": "src.data.speech_commands.corpus",
        "format_version": FORMAT_VERSION,
        "parameters": parameters,
        "espeakng_loader_version": importlib.metadata.version("espeakng-loader"),
        "settings": {
            "voices": VOICES,
            "variants": VARIANTS,
            "pitch": PITCH,
            "pitch_range": PITCH_RANGE,
            "rate": RATE,
            "snr_db": SNR_DB,
            "peak_dbfs": PEAK_DBFS,
            "short_clip_fraction": SHORT_CLIP_FRACTION,
        },
        "clips": {split: len(paths) for split, paths in splits.items()},
        "speakers": [asdict(speaker) for speaker in speakers],
    }
    (corpus_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def ensure_generated_corpus(
    root: str | Path,
    *,
    num_speakers: int = DEFAULT_NUM_SPEAKERS,
    seed: int = 0,
    noise_dir: str | Path | None = None,
    num_workers: int = 2,
) -> Path:
    """Generate the corpus under root on first use and reuse it after.

    Returns ``root/SpeechCommands/speech_commands_v0.02``, the folder torchaudio's ``SPEECHCOMMANDS(root)``
    reads. Safe to call from parallel processes: one generates (under a file lock, into a temporary sibling
    folder renamed into place when complete) while the others wait, then all reuse it. Raises
    ``RuntimeError`` if the folder holds a corpus generated with other parameters, or not generated here.
    ``num_workers`` processes are started with "spawn", which imports the caller's main module again: it
    must do its work under ``if __name__ == "__main__":``.
    """
    if num_speakers < 1 or seed < 0 or num_workers < 1:
        raise ValueError(
            f"need num_speakers >= 1, seed >= 0, num_workers >= 1; got {num_speakers}, {seed}, {num_workers}"
        )
    noise = None if noise_dir is None else Path(noise_dir).resolve()
    if noise is not None and not noise.is_dir():
        raise FileNotFoundError(f"noise_dir {noise} is not a folder")
    parameters = {
        "num_speakers": num_speakers,
        "seed": seed,
        "noise_dir": None if noise is None else str(noise),
    }
    corpus_dir = Path(root) / FOLDER_IN_ARCHIVE / CORPUS_NAME
    generate_once(
        corpus_dir,
        lambda folder: check_manifest(
            folder,
            parameters,
            FORMAT_VERSION,
            "the real Speech Commands, which needs no generating: use data.corpus=speechcommands",
        ),
        lambda folder: _generate(folder, parameters, noise, num_workers),
    )
    log.info("Synthetic Speech Commands corpus ready at %s", corpus_dir)
    return corpus_dir


def count_clips(corpus_dir: str | Path, words: tuple[str, ...] = WORDS) -> dict[str, int]:
    """Number of clips of ``words`` per split, read from the list files as the dataset loaders do."""
    corpus_dir = Path(corpus_dir)
    listed = {
        split: [line for line in (corpus_dir / f"{split}_list.txt").read_text().splitlines() if line]
        for split in ("validation", "testing")
    }
    total = sum(len(list((corpus_dir / word).glob("*.wav"))) for word in words)
    counts = {split: sum(p.split("/")[0] in words for p in paths) for split, paths in listed.items()}
    return {"training": total - counts["validation"] - counts["testing"], **counts}


def main() -> None:
    """Command line: generate (or reuse) a corpus and print the number of clips per split."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", required=True, help="the corpus goes in ROOT/SpeechCommands/speech_commands_v0.02"
    )
    parser.add_argument("--num-speakers", type=int, default=DEFAULT_NUM_SPEAKERS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise-dir", help="a folder of 16 kHz background noise wavs (default: synthetic)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    corpus_dir = ensure_generated_corpus(
        args.root,
        num_speakers=args.num_speakers,
        seed=args.seed,
        noise_dir=args.noise_dir,
        num_workers=args.workers,
    )
    print(f"corpus: {corpus_dir}")
    for name, words in (("all words", WORDS), ("yes/no", ("yes", "no"))):
        counts = count_clips(corpus_dir, words)
        print(
            f"{name}: "
            + ", ".join(f"{split} {count}" for split, count in counts.items())
            + f", total {sum(counts.values())}"
        )


if __name__ == "__main__":
    main()
