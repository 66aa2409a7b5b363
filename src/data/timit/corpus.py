"""An offline, synthetic corpus in TIMIT's format, spoken by espeak-ng, so phone recognition runs without
the licensed TIMIT.

The layout is the real one, read by the same code (:mod:`src.data.timit.reader`)::

    root/TIMIT/
        TRAIN/DR<n>/<SPEAKER>/<UTTERANCE>.{WAV,PHN,WRD,TXT}  made-up speaker ids: sex, 3 letters, digit
        TEST/DR<n>/<SPEAKER>/...                             the real development and core test speaker ids
        README.md generator.json                             a note that it is synthetic; how it was made

Each speaker reads TIMIT's two dialect sentences (SA1, SA2), three sentences of its own (SI) and five
compact sentences (SX) that about seven speakers of its set share; TRAIN and TEST share no SI/SX sentence.
``.WAV`` is NIST SPHERE, 16 kHz mono int16. ``.PHN`` holds espeak-ng's phonemes mapped onto the 61 TIMIT
phones with their sample boundaries (:mod:`src.data.timit.espeak_alignment`), with stop closures, ``pau``
for pauses
and ``h#`` for the silence (100-300 ms, with a faint noise floor) before and after the speech; ``.WRD``
the word boundaries, ``.TXT`` ``0 <samples> <text>``. A speaker is an espeak-ng English voice with a male
or female variant (matching its id), pitch, pitch range and rate. Every random choice comes from a
generator seeded by ``(seed, ...)``, so the files are byte-identical for a seed whatever ``num_workers``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import math
import multiprocessing
import string
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio

from src.data.speech_commands.corpus import VOICES
from src.data.synthesis import espeak
from src.data.synthesis.generated_corpus import MANIFEST, check_manifest, generate_once
from src.data.timit.espeak_alignment import SILENCE, align
from src.data.timit.reader import (
    CORE_TEST_SPEAKERS,
    DEV_SPEAKERS,
    SAMPLE_RATE,
    TEST_SPEAKER_REGIONS,
    Segment,
)
from src.data.timit.sentences import DIALECT_SENTENCES, random_sentence

log = logging.getLogger(__name__)

CORPUS_FOLDER = "TIMIT"
# What a folder without a manifest may be, and what to do then.
REAL_CORPUS_HINT = "the real TIMIT, which needs no generating: use data.corpus=timit"
FORMAT_VERSION = 1
DEFAULT_TRAIN_SPEAKERS = 150
# The espeak-ng variants (espeak-ng-data/voices/!v) of src.data.speech_commands.corpus.VARIANTS, by sex.
MALE_VARIANTS = (
    *("m1", "m2", "m3", "m4", "m5", "m6", "m7", "Mike", "robert", "quincy", "grandpa", "max", "rob"),
    *("michel", "Alex"),
)
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5", "aunty", "belinda", "linda", "shelby", "grandma", "Annie")
PITCH, PITCH_RANGE, RATE = (30, 70), (20, 80), (140, 200)  # espeak units: 0-100, 0-100, words/min
MALE_FRACTION = 0.7  # TIMIT: 438 of its 630 speakers
# Speakers per dialect region in TIMIT's TRAIN, the weights of the regions of the training speakers.
TRAIN_REGION_SPEAKERS = (38, 76, 76, 68, 70, 35, 77, 22)
SI_PER_SPEAKER, SX_PER_SPEAKER, SX_READERS = 3, 5, 7
FIRST_SX, FIRST_SI = 3, 453  # TIMIT numbers its SX sentences from 3 and its SI sentences after them
EDGE_SILENCE_SECONDS = (0.1, 0.3)
SNR_DB, PEAK_DBFS = (30.0, 45.0), (-12.0, -1.0)


@dataclass(frozen=True)
class Speaker:
    """A synthetic speaker: TIMIT-style id, set (``"train"``/``"test"``), dialect region and voice."""

    speaker_id: str
    corpus_set: str
    region: int
    voice: str
    pitch: int
    pitch_range: int
    rate: int


@dataclass(frozen=True)
class UtterancePlan:
    """One utterance to synthesise: its name (``"sa1"``, ``"si460"``, ``"sx17"``) and text."""

    name: str
    text: str


def _region_order(speakers: tuple[str, ...]) -> list[str]:
    """``speakers`` reordered to take one per dialect region in turn, so a prefix covers many regions."""
    by_region: dict[int, list[str]] = {}
    for speaker in speakers:
        by_region.setdefault(TEST_SPEAKER_REGIONS[speaker], []).append(speaker)
    rounds = max(len(group) for group in by_region.values())
    return [group[i] for i in range(rounds) for _, group in sorted(by_region.items()) if i < len(group)]


def plan_speakers(num_train: int, num_dev: int, num_core: int, seed: int) -> list[Speaker]:
    """The TEST speakers (the first ``num_dev`` development and ``num_core`` core test speakers, taking the
    dialect regions in turn) and ``num_train`` TRAIN speakers with new ids, all with distinct voices."""
    rng = np.random.default_rng([seed, 0])
    test_ids = _region_order(CORE_TEST_SPEAKERS)[:num_core] + _region_order(DEV_SPEAKERS)[:num_dev]
    taken = set(DEV_SPEAKERS) | set(CORE_TEST_SPEAKERS)
    identities = [("test", TEST_SPEAKER_REGIONS[s], s) for s in test_ids]
    weights = np.array(TRAIN_REGION_SPEAKERS) / sum(TRAIN_REGION_SPEAKERS)
    while len(identities) < len(test_ids) + num_train:
        sex = "m" if rng.random() < MALE_FRACTION else "f"
        initials = "".join(string.ascii_lowercase[i] for i in rng.integers(26, size=3))
        region = int(rng.choice(8, p=weights)) + 1
        speaker_id = f"{sex}{initials}0"
        if speaker_id not in taken:
            taken.add(speaker_id)
            identities.append(("train", region, speaker_id))
    speakers, settings = [], set()
    for corpus_set, region, speaker_id in identities:
        variants = MALE_VARIANTS if speaker_id[0] == "m" else FEMALE_VARIANTS
        while True:
            setting = (
                f"{VOICES[rng.integers(len(VOICES))]}+{variants[rng.integers(len(variants))]}",
                int(rng.integers(PITCH[0], PITCH[1] + 1)),
                int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
                int(rng.integers(RATE[0], RATE[1] + 1)),
            )
            if setting not in settings:
                settings.add(setting)
                speakers.append(Speaker(speaker_id, corpus_set, region, *setting))
                break
    return speakers


def plan_utterances(speakers: list[Speaker], seed: int) -> list[list[UtterancePlan]]:
    """For each speaker: SA1, SA2, its SI sentences and its SX sentences (shared by about
    ``SX_READERS`` speakers of its set). No SI/SX text is read in both TRAIN and TEST."""
    rng = np.random.default_rng([seed, 1])
    sets = {
        corpus_set: [s for s in speakers if s.corpus_set == corpus_set] for corpus_set in ("train", "test")
    }
    pool_sizes = {
        corpus_set: max(SX_PER_SPEAKER, math.ceil(len(members) * SX_PER_SPEAKER / SX_READERS))
        for corpus_set, members in sets.items()
    }
    needed = sum(pool_sizes.values()) + SI_PER_SPEAKER * len(speakers)
    texts: list[str] = []
    seen = set(DIALECT_SENTENCES)
    while len(texts) < needed:
        text = random_sentence(rng)
        if text not in seen:
            seen.add(text)
            texts.append(text)
    sx_first = {"train": 0, "test": pool_sizes["train"]}
    si_next = sum(pool_sizes.values())
    position = {s.speaker_id: i for members in sets.values() for i, s in enumerate(members)}
    plans = []
    for speaker in speakers:
        plan = [UtterancePlan(f"sa{i + 1}", text) for i, text in enumerate(DIALECT_SENTENCES)]
        for _ in range(SI_PER_SPEAKER):
            plan.append(UtterancePlan(f"si{FIRST_SI + si_next}", texts[si_next]))
            si_next += 1
        pool_size, first = pool_sizes[speaker.corpus_set], sx_first[speaker.corpus_set]
        for j in range(SX_PER_SPEAKER):
            k = first + (SX_PER_SPEAKER * position[speaker.speaker_id] + j) % pool_size
            plan.append(UtterancePlan(f"sx{FIRST_SX + k}", texts[k]))
        plans.append(plan)
    return plans


def _to_rate(segments: list[Segment], ratio: float, num_samples: int, offset: int) -> list[Segment]:
    """Segments rescaled by ``ratio``, shifted by ``offset`` and clipped to ``num_samples``; segments that
    become empty are dropped."""
    scaled = [
        Segment(
            min(round(s.start * ratio), num_samples) + offset,
            min(round(s.end * ratio), num_samples) + offset,
            s.label,
        )
        for s in segments
    ]
    return [s for s in scaled if s.end > s.start]


def render_utterance(
    speaker: Speaker,
    utterance: UtterancePlan,
    rng: np.random.Generator,
    resample: torchaudio.transforms.Resample,
    reset_state: bool,
) -> tuple[np.ndarray, list[Segment], list[Segment]]:
    """Synthesise one utterance: ``(samples, phones, words)``, the samples int16 ``(time,)`` at 16 kHz and
    the phone segments contiguous from 0 to ``time``, starting and ending with ``h#``."""
    synthesis = espeak.synthesize(
        utterance.text,
        speaker.voice,
        rate=speaker.rate + int(rng.integers(-10, 11)),
        pitch=int(np.clip(speaker.pitch + rng.integers(-4, 5), 0, 100)),
        pitch_range=speaker.pitch_range,
        reset_state=reset_state,
    )
    native_phones, native_words = align(synthesis, utterance.text)
    speech = resample(torch.from_numpy(synthesis.samples)).numpy().astype(np.float64)
    shortest, longest = (round(seconds * SAMPLE_RATE) for seconds in EDGE_SILENCE_SECONDS)
    lead, tail = (int(n) for n in rng.integers(shortest, longest + 1, size=2))
    ratio = SAMPLE_RATE / synthesis.sample_rate
    phones = _to_rate(native_phones, ratio, len(speech), lead)
    total = lead + len(speech) + tail
    # The added silences join the h# at either end (espeak may start or end on a phone, leaving none).
    if phones[0].label == SILENCE:
        phones[0] = Segment(0, phones[0].end, SILENCE)
    else:
        phones.insert(0, Segment(0, lead, SILENCE))
    if phones[-1].label == SILENCE:
        phones[-1] = Segment(phones[-1].start, total, SILENCE)
    else:
        phones.append(Segment(lead + len(speech), total, SILENCE))
    words = _to_rate(native_words, ratio, len(speech), lead)

    audio = np.concatenate([np.zeros(lead), speech, np.zeros(tail)])
    speech_rms = np.sqrt(np.mean(speech**2))
    audio += rng.standard_normal(len(audio)) * speech_rms / 10 ** (rng.uniform(*SNR_DB) / 20)
    audio *= 10 ** (rng.uniform(*PEAK_DBFS) / 20) / np.abs(audio).max()
    return np.round(audio * 32767).astype(np.int16), phones, words


def _write_segments(path: Path, segments: list[Segment]) -> None:
    path.write_text("".join(f"{s.start} {s.end} {s.label}\n" for s in segments))


def _render_speaker(task: tuple[Path, int, int, Speaker, list[UtterancePlan]]) -> int:
    """Write all utterances of one speaker under ``corpus_dir``; returns how many.

    espeak-ng is reset before the speaker's first utterance only: a speaker's utterances are always spoken
    in the same order, so the output does not depend on the worker.
    """
    corpus_dir, seed, speaker_index, speaker, plan = task
    torch.set_num_threads(1)
    resample = torchaudio.transforms.Resample(espeak.sample_rate(), SAMPLE_RATE)
    folder = corpus_dir / speaker.corpus_set.upper() / f"DR{speaker.region}" / speaker.speaker_id.upper()
    folder.mkdir(parents=True)
    for index, utterance in enumerate(plan):
        rng = np.random.default_rng([seed, 2, speaker_index, index])
        samples, phones, words = render_utterance(speaker, utterance, rng, resample, reset_state=index == 0)
        stem = folder / utterance.name.upper()
        soundfile.write(f"{stem}.WAV", samples, SAMPLE_RATE, format="NIST", subtype="PCM_16")
        _write_segments(Path(f"{stem}.PHN"), phones)
        _write_segments(Path(f"{stem}.WRD"), words)
        Path(f"{stem}.TXT").write_text(f"0 {len(samples)} {utterance.text}\n")
    return len(plan)


def _split_sizes(speakers: list[Speaker], plans: list[list[UtterancePlan]]) -> dict[str, int]:
    """Utterances per standard split (SA left out): TRAIN, development and core test speakers."""
    sizes = {"train": 0, "val": 0, "test": 0}
    for speaker, plan in zip(speakers, plans, strict=True):
        split = "train" if speaker.corpus_set == "train" else "val"
        if speaker.speaker_id in CORE_TEST_SPEAKERS:
            split = "test"
        sizes[split] += sum(not u.name.startswith("sa") for u in plan)
    return sizes


def _generate(corpus_dir: Path, parameters: dict, num_workers: int) -> None:
    """Write the whole corpus into the empty folder ``corpus_dir``, the manifest last."""
    seed = parameters["seed"]
    speakers = plan_speakers(
        parameters["num_train_speakers"],
        parameters["num_dev_speakers"],
        parameters["num_core_speakers"],
        seed,
    )
    plans = plan_utterances(speakers, seed)
    total = sum(len(plan) for plan in plans)
    log.info(
        "Generating %d utterances of %d speakers with %d workers in %s",
        total,
        len(speakers),
        num_workers,
        corpus_dir,
    )
    tasks = [(corpus_dir, seed, i, speaker, plans[i]) for i, speaker in enumerate(speakers)]
    context = multiprocessing.get_context("spawn")  # safe in a parent that holds threads or CUDA
    with context.Pool(num_workers) as pool:
        for done, _ in enumerate(pool.imap_unordered(_render_speaker, tasks), start=1):
            if done % max(1, len(speakers) // 10) == 0 or done == len(speakers):
                log.info("Generated the utterances of %d/%d speakers", done, len(speakers))
    (corpus_dir / "README.md").write_text(
        "# Synthetic TIMIT-format corpus\n\n"
        "This is NOT the TIMIT Acoustic-Phonetic Continuous Speech Corpus (LDC93S1). Every utterance was "
        "generated by this project (src/data/timit/corpus.py) with the espeak-ng speech synthesiser, and its "
        ".PHN/.WRD boundaries come from espeak-ng's phoneme and word events mapped onto TIMIT's 61 phones. "
        "It is laid out like TIMIT so that the same reader handles both: TRAIN speakers have made-up ids, "
        "TEST holds the ids of the standard development and core test speakers so that the standard split "
        "rule selects them. The dialect sentences SA1/SA2 are TIMIT's; the other sentences are random. "
        "generator.json records how it was made.\n\nLicence: espeak-ng and its voice data are GPL-3.0.\n"
    )
    manifest = {
        "generator": __name__,
        "format_version": FORMAT_VERSION,
        "parameters": parameters,
        "espeakng_loader_version": importlib.metadata.version("espeakng-loader"),
        "settings": {
            "voices": VOICES,
            "male_variants": MALE_VARIANTS,
            "female_variants": FEMALE_VARIANTS,
            "pitch": PITCH,
            "pitch_range": PITCH_RANGE,
            "rate": RATE,
            "snr_db": SNR_DB,
            "peak_dbfs": PEAK_DBFS,
            "edge_silence_seconds": EDGE_SILENCE_SECONDS,
        },
        "split_sizes": _split_sizes(speakers, plans),
        "utterances": total,
        "speakers": [asdict(speaker) for speaker in speakers],
    }
    (corpus_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def read_manifest(corpus_dir: str | Path) -> dict:
    """The ``generator.json`` of a generated corpus (``FileNotFoundError`` if there is none)."""
    return json.loads((Path(corpus_dir) / MANIFEST).read_text())


def ensure_generated_corpus(
    root: str | Path,
    *,
    num_train_speakers: int = DEFAULT_TRAIN_SPEAKERS,
    num_dev_speakers: int = len(DEV_SPEAKERS),
    num_core_speakers: int = len(CORE_TEST_SPEAKERS),
    seed: int = 0,
    num_workers: int = 2,
) -> Path:
    """Generate the corpus under ``root`` on first use and reuse it after; returns ``root/TIMIT``.

    ``num_dev_speakers`` (at most 50) and ``num_core_speakers`` (at most 24) take the first speakers of the
    standard lists, one dialect region after another. Safe to call from parallel processes: one generates
    (under a file lock, into a temporary sibling folder renamed into place when complete) while the others
    wait, then all reuse it. Raises ``RuntimeError`` if the folder holds a corpus generated with other
    parameters, or not generated here. Workers are started with "spawn", which imports the caller's main
    module again: it must do its work under ``if __name__ == "__main__":``.
    """
    if not (
        num_train_speakers >= 1
        and 1 <= num_dev_speakers <= len(DEV_SPEAKERS)
        and 1 <= num_core_speakers <= len(CORE_TEST_SPEAKERS)
        and seed >= 0
        and num_workers >= 1
    ):
        raise ValueError(
            "need num_train_speakers >= 1, 1 <= num_dev_speakers <= 50, 1 <= num_core_speakers <= 24, "
            f"seed >= 0 and num_workers >= 1; got {num_train_speakers}, {num_dev_speakers}, "
            f"{num_core_speakers}, {seed}, {num_workers}"
        )
    parameters = {
        "num_train_speakers": num_train_speakers,
        "num_dev_speakers": num_dev_speakers,
        "num_core_speakers": num_core_speakers,
        "seed": seed,
    }
    corpus_dir = Path(root) / CORPUS_FOLDER
    generate_once(
        corpus_dir,
        lambda folder: check_manifest(folder, parameters, FORMAT_VERSION, REAL_CORPUS_HINT),
        lambda folder: _generate(folder, parameters, num_workers),
    )
    log.info("Synthetic TIMIT-format corpus ready at %s", corpus_dir)
    return corpus_dir


def main() -> None:
    """Command line: generate (or reuse) a corpus and print its size per standard split."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="the corpus goes in ROOT/TIMIT")
    parser.add_argument("--train-speakers", type=int, default=DEFAULT_TRAIN_SPEAKERS)
    parser.add_argument("--dev-speakers", type=int, default=len(DEV_SPEAKERS))
    parser.add_argument("--core-speakers", type=int, default=len(CORE_TEST_SPEAKERS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    corpus_dir = ensure_generated_corpus(
        args.root,
        num_train_speakers=args.train_speakers,
        num_dev_speakers=args.dev_speakers,
        num_core_speakers=args.core_speakers,
        seed=args.seed,
        num_workers=args.workers,
    )
    manifest = read_manifest(corpus_dir)
    sizes = ", ".join(f"{split} {count}" for split, count in manifest["split_sizes"].items())
    print(
        f"corpus: {corpus_dir}\nutterances per split (SA left out): {sizes}; {manifest['utterances']} in all"
    )


if __name__ == "__main__":
    main()
