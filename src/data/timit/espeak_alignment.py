"""Phone and word alignments in TIMIT's terms from the phoneme and word events of an espeak-ng synthesis.

espeak-ng reports when each of its phonemes starts (``EVENT_PHONEME``, a mnemonic such as ``'aI`` or
``dZ``) and when each word starts (``EVENT_WORD``); a phoneme lasts until the next one starts. Each
mnemonic maps onto one or more of the 61 TIMIT phones (:data:`ESPEAK_TO_TIMIT`), the time of a phoneme
shared equally among its phones. As in TIMIT's transcriptions, a stop or affricate is split into its
closure and its release (``d`` -> ``dcl d``, ``tS`` -> ``tcl ch``), pauses inside the utterance become
``pau`` and the silence before the first and after the last phone is ``h#``.
"""

from __future__ import annotations

import bisect
import re

import numpy as np

from src.data.synthesis import espeak
from src.data.timit.phones import TIMIT_61
from src.data.timit.reader import Segment

# Stress and syllable marks that espeak writes in front of a mnemonic; they do not change the phone.
_STRESS_MARKS = "',"
# espeak pause phonemes: "_:" is a clause pause (comma, full stop), "_" a short one, "_!" a glottal pause.
_PUNCTUATION = '.,?!;:"()'
_PAUSES = frozenset({"_", "_:", "_!"})
PAUSE = "pau"
SILENCE = "h#"

# espeak-ng English mnemonic (stress marks removed) -> TIMIT phones. Covers what the English voices used
# by the generated corpus (American, British, Scottish, Welsh, Caribbean, New York) say for its words.
# () is a zero-length marker (";" links words): its time goes to the phone before it.
ESPEAK_TO_TIMIT: dict[str, tuple[str, ...]] = {
    # vowels
    "a": ("ae",), "aa": ("ae",), "a#": ("ax",), "A:": ("aa",), "A@": ("aa", "r"), "A": ("aa",),
    "0": ("aa",), "O:": ("ao",), "O": ("ao",), "O2": ("ao",), "O@": ("ao", "r"), "o@": ("ao", "r"),
    "OI": ("oy",), "oU": ("ow",), "o:": ("ow",), "o": ("ow",), "V": ("ah",), "VR": ("er",),
    "3:": ("er",), "IR": ("er",), "3": ("axr",), "@": ("ax",), "@2": ("ax",), "@5": ("ax",),
    "@-": ("ax",), "@L": ("el",), "E": ("eh",), "E2": ("eh",), "e": ("eh",), "e@": ("eh", "r"),
    "eI": ("ey",), "I": ("ih",), "I2": ("ix",), "I#": ("ix",), "i": ("iy",), "i:": ("iy",),
    "i@": ("ih", "ax"), "i@3": ("ih", "r"), "U": ("uh",), "U@": ("uh", "r"), "u:": ("uw",),
    "u": ("uw",), "aI": ("ay",), "aI2": ("ay",), "aI@": ("ay", "ax"), "aI3": ("ay", "axr"),
    "aU": ("aw",), "aU@": ("aw", "ax"),
    # stops and affricates: closure + release
    "p": ("pcl", "p"), "b": ("bcl", "b"), "t": ("tcl", "t"), "t2": ("tcl", "t"), "t[": ("tcl", "t"),
    "d": ("dcl", "d"), "d[": ("dcl", "d"), "k": ("kcl", "k"), "g": ("gcl", "g"),
    "tS": ("tcl", "ch"), "dZ": ("dcl", "jh"), "t#": ("dx",), "d#": ("dx",), "?": ("q",),
    # fricatives
    "f": ("f",), "v": ("v",), "T": ("th",), "D": ("dh",), "s": ("s",), "z": ("z",), "S": ("sh",),
    "Z": ("zh",), "h": ("hh",), "x": ("hh",),
    # nasals, liquids, glides
    "m": ("m",), "n": ("n",), "N": ("ng",), "n-": ("en",), "m-": ("em",), "l": ("l",), "r": ("r",),
    "r-": ("r",), "w": ("w",), "w#": ("w",), "W": ("w",), "j": ("y",),
    # zero-length markers
    ";": (),
}  # fmt: skip
# Share of a stop's (or affricate's) time that is its closure.
CLOSURE_SHARE = 0.6
_CLOSURES = frozenset({"pcl", "bcl", "tcl", "dcl", "kcl", "gcl"})


class UnknownEspeakPhoneme(ValueError):
    """An espeak mnemonic that :data:`ESPEAK_TO_TIMIT` does not map; the message names it and the text."""


def timit_phones_of(mnemonic: str) -> tuple[str, ...]:
    """The TIMIT phones of an espeak mnemonic (stress marks ignored); pauses give ``("pau",)``."""
    base = mnemonic.lstrip(_STRESS_MARKS)
    if base in _PAUSES:
        return (PAUSE,)
    if base not in ESPEAK_TO_TIMIT:
        raise UnknownEspeakPhoneme(
            f"espeak-ng phoneme {mnemonic!r} has no TIMIT mapping; add it to ESPEAK_TO_TIMIT in "
            f"{__name__} (or leave out the word that uses it)"
        )
    return ESPEAK_TO_TIMIT[base]


def _split(start: int, end: int, phones: tuple[str, ...]) -> list[Segment]:
    """Share ``[start, end)`` among ``phones``: a closure takes ``CLOSURE_SHARE``, others equal parts."""
    if len(phones) == 2 and phones[0] in _CLOSURES:
        cut = start + round((end - start) * CLOSURE_SHARE)
        return [Segment(start, cut, phones[0]), Segment(cut, end, phones[1])]
    cuts = [start + round((end - start) * i / len(phones)) for i in range(len(phones) + 1)]
    return [Segment(cuts[i], cuts[i + 1], phone) for i, phone in enumerate(phones)]


def words_of(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, word)`` of each word of ``text``: character offsets, the word as TIMIT's ``.WRD``
    files write it (lower case, without the punctuation around it)."""
    return [(m.start(), m.end(), m[0].strip(_PUNCTUATION).lower()) for m in re.finditer(r"\S+", text)]


def _word_at(words: list[tuple[int, int, str]], position: int) -> int:
    """Index of the word of ``words`` that holds character ``position`` (or the last one before it)."""
    return max(0, bisect.bisect_right([start for start, _, _ in words], position) - 1)


def _share_among_words(phones: list[Segment], words: list[str]) -> list[Segment]:
    """Word segments for ``words`` that espeak-ng spoke as one (e.g. "at a"): consecutive runs of
    ``phones`` in proportion to the words' lengths in letters. A word left without a phone is left out."""
    letters = np.cumsum([0] + [len(word) for word in words])
    cuts = [round(len(phones) * n / letters[-1]) for n in letters]
    return [
        Segment(phones[cuts[i]].start, phones[cuts[i + 1] - 1].end, word)
        for i, word in enumerate(words)
        if cuts[i + 1] > cuts[i]
    ]


def align(synthesis: espeak.Synthesis, text: str) -> tuple[list[Segment], list[Segment]]:
    """TIMIT phone segments and word segments of ``synthesis`` of ``text``, in samples at its native rate.

    The phone segments are contiguous and cover ``[0, len(synthesis.samples))``, start and end with
    ``h#`` and have no zero-length segments. A word spans its phones (not the pauses); espeak-ng reports
    the start of each word it speaks, but speaks some pairs as one word ("at a"): their phones are shared
    among them by :func:`_share_among_words`.

    Raises:
        UnknownEspeakPhoneme: a phoneme event has no mapping.
    """
    total = len(synthesis.samples)
    words = words_of(text)
    phonemes: list[tuple[int, str, int]] = []  # (start sample, mnemonic, word index), in spoken order
    word = 0
    for event in synthesis.events:
        if event.type == espeak.EVENT_WORD:
            word = _word_at(words, event.text_position - 1)  # text_position counts from 1
        elif event.type == espeak.EVENT_PHONEME:
            phonemes.append((min(event.sample, total), event.phoneme, word))
    segments = [Segment(0, 0, SILENCE)]
    word_of_segment = [-1]
    for index, (sample, mnemonic, word) in enumerate(phonemes):
        start = max(sample, segments[-1].end)
        end = max(phonemes[index + 1][0] if index + 1 < len(phonemes) else total, start)
        phones = timit_phones_of(mnemonic)
        if not phones or (phones == (PAUSE,) and segments[-1].label in (PAUSE, SILENCE)):
            segments[-1] = Segment(segments[-1].start, end, segments[-1].label)  # no new phone
            continue
        if len(segments) == 1:
            segments[0] = Segment(0, start, SILENCE)  # the silence before the first phone
        for segment in _split(start, end, phones):
            segments.append(segment)
            word_of_segment.append(-1 if phones == (PAUSE,) else word)
    while segments[-1].label == PAUSE:  # a pause at the end is part of the closing silence
        segments.pop()
        word_of_segment.pop()
    segments.append(Segment(segments[-1].end, total, SILENCE))
    word_of_segment.append(-1)
    kept = [(s, w) for s, w in zip(segments, word_of_segment, strict=True) if s.end > s.start]
    phone_segments = [s for s, _ in kept]
    spoken = sorted({w for _, w in kept if w >= 0})
    word_segments = []
    for first, after in zip(spoken, [*spoken[1:], len(words)], strict=True):
        group = [s for s, w in kept if w == first]
        word_segments += _share_among_words(group, [label for _, _, label in words[first:after]])
    unknown = {s.label for s in phone_segments} - set(TIMIT_61)
    if unknown:
        raise ValueError(f"ESPEAK_TO_TIMIT maps onto phones outside TIMIT's 61: {sorted(unknown)}")
    return phone_segments, word_segments
