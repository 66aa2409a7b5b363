"""Phone error rate of TIMIT transcriptions, scored on the 39-phone set over a whole split."""

from __future__ import annotations

from collections.abc import Sequence

from torchmetrics.text import WordErrorRate

from src.data.timit.phones import fold

SCORING_SET = 39
"""TIMIT phone recognition is scored after folding both sides to the 39-phone set (Lee & Hon, 1989)."""


def scoring_transcript(phones: Sequence[str]) -> str:
    """Phones of any TIMIT set folded to the 39-phone set (``q`` deleted), joined by single spaces."""
    return " ".join(fold(phones, SCORING_SET))


class PhoneErrorRate(WordErrorRate):
    """``(S + D + I) / N`` over every utterance seen since the last reset, on the 39-phone set.

    Each update folds hypotheses and references to the 39 phones (:func:`scoring_transcript`) and hands
    the space-joined strings to torchmetrics' ``WordErrorRate``, whose states are the summed edit distances
    (``errors``) and the summed reference lengths (``total``): the result is the corpus PER, errors summed
    over the split divided by reference phones summed over the split, not the mean of per-utterance rates.
    An empty hypothesis counts every reference phone as a deletion; an empty reference adds its hypothesis
    phones as insertions and nothing to ``N``. With no reference phone at all the rate is undefined:
    ``inf`` (errors / 0), or ``nan`` when there are no errors either.
    """

    def update(self, hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> None:
        """Add a batch of utterances: decoded phones and reference phones, one sequence per utterance."""
        if len(hypotheses) != len(references):
            raise ValueError(
                f"got {len(hypotheses)} hypotheses for {len(references)} references: pass one of each "
                "per utterance"
            )
        super().update(
            [scoring_transcript(phones) for phones in hypotheses],
            [scoring_transcript(phones) for phones in references],
        )
