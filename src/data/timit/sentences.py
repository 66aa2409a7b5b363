"""Sentences for the synthetic TIMIT corpus: TIMIT's two dialect sentences and random sentences built
from a small word list chosen to cover the phones of American English (flaps in *water*, syllabic *n* in
*button*, syllabic *l* in *table*, *zh* in *measure*, the diphthongs of *boy*, *house*, *fire*, ...)."""

from __future__ import annotations

import re

import numpy as np

# TIMIT's dialect sentences, read by every speaker (SA1, SA2).
DIALECT_SENTENCES = (
    "She had your dark suit in greasy wash water all year.",
    "Don't ask me to carry an oily rag like that.",
)
NAMES = (
    *("Alice", "George", "Judy", "Thomas", "Martha", "Joseph", "Ruth", "Charles", "Sharon", "Victor"),
    *("Ellen", "Roy", "Nancy", "Hugo", "Gloria", "Ben"),
)
ADJECTIVES = (
    *("young", "old", "quiet", "bright", "heavy", "little", "yellow", "cheap", "usual", "smooth"),
    *("thick", "brave", "frozen", "gentle", "shiny", "muddy", "ancient", "pleasant", "purple", "rough"),
    *("huge", "tiny", "warm", "wooden", "strange", "clever", "lazy", "noisy", "golden", "thirsty"),
    *("careful", "royal", "shallow", "dusty", "sharp", "bitter", "fresh", "narrow", "pale", "giant"),
)
NOUNS = (
    *("water", "garden", "button", "table", "bottle", "kitchen", "window", "measure", "vision", "treasure"),
    *("village", "mountain", "river", "engine", "jacket", "pencil", "orange", "cattle", "chicken", "sugar"),
    *("bridge", "judge", "church", "thunder", "feather", "father", "mother", "leather", "cookie", "puppy"),
    *("horse", "boy", "oil", "toy", "house", "cloud", "flower", "tower", "chair", "year"),
    *("square", "star", "shore", "fire", "hour", "king", "ring", "song", "wagon", "ladder"),
    *("metal", "city", "letter", "butter", "cotton", "fox", "zebra", "violin", "piano", "island"),
    *("camera", "hammer", "tunnel", "shadow", "apple", "basket", "ocean", "picture", "blanket", "garage"),
    *("lion", "tiger", "drum", "cup"),
)
VERBS = (
    *("carried", "watched", "painted", "borrowed", "noticed", "dropped", "pushed", "washed", "opened"),
    *("closed", "measured", "covered", "chased", "visited", "jumped over", "looked at", "brought", "found"),
    *("caught", "bought", "thought about", "fixed", "sang about", "reached", "followed", "checked"),
    *("touched", "judged", "enjoyed", "poured", "hid", "sold", "showed", "held", "kept"),
)
PREPOSITIONS = ("near", "behind", "under", "beside", "across", "inside", "toward", "beyond", "through")
TIMES = (
    *("yesterday", "this morning", "every evening", "at noon", "last winter", "on Thursday"),
    *("after the show", "twice", "again", "before dawn", "rather slowly", "quite early"),
    *("at the end of June", "while it was raining"),
)
PRONOUNS = ("she", "he", "they", "we")
WORD_CLASSES = {
    "name": NAMES,
    "adjective": ADJECTIVES,
    "noun": NOUNS,
    "verb": VERBS,
    "preposition": PREPOSITIONS,
    "time": TIMES,
    "pronoun": PRONOUNS,
}
# Sentence patterns; each {slot} is filled with a random word of WORD_CLASSES[slot].
TEMPLATES = (
    "the {adjective} {noun} {verb} the {noun} {time}.",
    "{name} {verb} a {adjective} {noun} {preposition} the {noun}.",
    "did {name} see the {noun} {preposition} the {adjective} {noun}?",
    "{pronoun} {verb} the {noun}, and {pronoun} {verb} the {noun}.",
    "{time}, the {noun} was {adjective} and {adjective}.",
)
_SLOT = re.compile(r"\{(\w+)\}")


def random_sentence(rng: np.random.Generator) -> str:
    """One sentence of 6-12 words: a random template of :data:`TEMPLATES` with random words."""
    template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]

    def pick(slot: re.Match[str]) -> str:
        words = WORD_CLASSES[slot[1]]
        return words[int(rng.integers(len(words)))]

    text = _SLOT.sub(pick, template)
    return text[0].upper() + text[1:]
