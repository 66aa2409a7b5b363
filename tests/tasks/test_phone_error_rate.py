from __future__ import annotations

import math

import pytest

from src.tasks.phone_error_rate import PhoneErrorRate, scoring_transcript


def per(hypotheses: list[str], references: list[str]) -> float:
    """Corpus PER of space-separated phone strings, scored in one update."""
    metric = PhoneErrorRate()
    metric.update([h.split() for h in hypotheses], [r.split() for r in references])
    return float(metric.compute())


@pytest.mark.parametrize(
    ("hypothesis", "reference", "expected"),
    [
        ("aa b d", "aa b d", 0.0),
        ("aa p d", "aa b d", 1 / 3),  # one substitution
        ("aa d", "aa b d", 1 / 3),  # one deletion
        ("aa b d", "aa b", 1 / 2),  # one insertion, N = 2
        ("p aa", "aa b d", 3 / 3),  # insertion p, deletions b, d (or three substitutions)
        ("", "aa b d iy", 4 / 4),  # empty hypothesis: every reference phone deleted
    ],
)
def test_single_utterance_rates(hypothesis: str, reference: str, expected: float) -> None:
    assert per([hypothesis], [reference]) == pytest.approx(expected)


def test_errors_and_reference_phones_are_summed_over_the_split_not_averaged_per_utterance() -> None:
    metric = PhoneErrorRate()
    # utterance 1: 1 substitution in 2 phones (rate 0.5); utterance 2: 0 errors in 8 phones (rate 0).
    metric.update([["aa", "p"]], [["aa", "b"]])
    metric.update(
        [["s", "iy", "t", "ah", "m", "aa", "n", "d"]], [["s", "iy", "t", "ah", "m", "aa", "n", "d"]]
    )
    assert float(metric.compute()) == pytest.approx(1 / 10)
    assert float(metric.compute()) != pytest.approx((0.5 + 0.0) / 2)
    assert (float(metric.errors), float(metric.total)) == (1.0, 10.0)


def test_an_empty_reference_adds_its_insertions_but_no_reference_phones() -> None:
    assert per(["aa", "b d"], ["", "b d"]) == pytest.approx(1 / 2)


def test_no_reference_phone_at_all_is_undefined() -> None:
    assert per(["aa"], [""]) == math.inf
    assert math.isnan(per([""], [""]))


def test_reset_starts_a_new_split() -> None:
    metric = PhoneErrorRate()
    metric.update([["p"]], [["b"]])
    assert float(metric.compute()) == 1.0
    metric.reset()
    metric.update([["b", "d"]], [["b", "d"]])
    assert float(metric.compute()) == 0.0


@pytest.mark.parametrize(
    ("hypothesis", "reference"),
    [
        ("ao", "aa"),  # ao folds to aa
        ("ix ax-h axr", "ih ah er"),
        ("aa b", "q aa q b"),  # q is deleted from the reference
        ("q aa b q", "aa b"),  # ... and from the hypothesis
        ("cl vcl epi", "sil sil sil"),  # closures of the 48-phone set score as sil
        ("pcl bcl h# pau", "sil sil sil sil"),  # closures and pauses of the 61-phone set too
        ("el en zh", "l n sh"),
    ],
)
def test_both_sides_are_folded_to_39_phones_before_scoring(hypothesis: str, reference: str) -> None:
    assert per([hypothesis], [reference]) == 0.0


def test_folding_does_not_hide_real_errors() -> None:
    # ao -> aa matches; ix -> ih does not match iy: 1 error over the 2 folded reference phones.
    assert per(["ao ix"], ["aa iy"]) == pytest.approx(1 / 2)


def test_scoring_transcript_folds_and_joins() -> None:
    assert scoring_transcript(["h#", "q", "ao", "kcl", "k", "h#"]) == "sil aa sil k sil"
    assert scoring_transcript([]) == ""


def test_unknown_phones_and_unpaired_batches_fail_clearly() -> None:
    metric = PhoneErrorRate()
    with pytest.raises(ValueError, match="not a TIMIT phone"):
        metric.update([["xyz"]], [["aa"]])
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        metric.update([["aa"], ["b"]], [["aa"]])
