"""The TIMIT phone sets and the Lee & Hon foldings 61 -> 48 -> 39."""

from __future__ import annotations

import pytest

from src.data.timit.phones import PHONE_SETS, TIMIT_39, TIMIT_48, TIMIT_61, fold

# The 61 -> 39 foldings of Lee & Hon (1989) that change a symbol; q is deleted, the rest stay as they are.
FOLDED_TO_39 = {
    "ao": "aa", "ax": "ah", "ax-h": "ah", "axr": "er", "hv": "hh", "ix": "ih", "el": "l", "em": "m",
    "en": "n", "nx": "n", "eng": "ng", "zh": "sh", "ux": "uw",
    "pcl": "sil", "tcl": "sil", "kcl": "sil", "bcl": "sil", "dcl": "sil", "gcl": "sil",
    "h#": "sil", "pau": "sil", "epi": "sil",
}  # fmt: skip


def test_set_sizes_and_order() -> None:
    assert (len(TIMIT_61), len(TIMIT_48), len(TIMIT_39)) == (61, 48, 39)
    assert PHONE_SETS == {61: TIMIT_61, 48: TIMIT_48, 39: TIMIT_39}
    for phones in PHONE_SETS.values():
        assert list(phones) == sorted(set(phones))
    assert "q" in TIMIT_61 and "q" not in TIMIT_48 and "sil" in TIMIT_39 and "cl" in TIMIT_48


@pytest.mark.parametrize(("phone", "folded"), sorted(FOLDED_TO_39.items()))
def test_lee_hon_mapping_to_39(phone: str, folded: str) -> None:
    assert fold([phone], 39) == [folded]
    assert fold(fold([phone], 48), 39) == [folded]  # through the 48-set, the same


def test_every_other_phone_keeps_its_symbol_in_39() -> None:
    unchanged = set(TIMIT_61) - set(FOLDED_TO_39) - {"q"}
    assert len(unchanged) == 61 - len(FOLDED_TO_39) - 1
    assert fold(sorted(unchanged), 39) == sorted(unchanged)
    assert set(fold(TIMIT_61, 39)) == set(TIMIT_39)


def test_48_set_keeps_some_distinctions_and_merges_closures() -> None:
    assert fold(["ao", "ax", "ax-h", "ix", "el", "en", "zh", "epi"], 48) == [
        *("ao", "ax", "ax", "ix", "el", "en", "zh", "epi"),
    ]
    assert fold(["pcl", "tcl", "kcl", "bcl", "dcl", "gcl"], 48) == ["cl"] * 3 + ["vcl"] * 3
    assert fold(["h#", "pau", "em", "nx", "eng", "hv", "ux", "axr"], 48) == [
        *("sil", "sil", "m", "n", "ng", "hh", "uw", "er"),
    ]
    assert set(fold(TIMIT_61, 48)) == set(TIMIT_48)
    assert fold(["cl", "vcl", "sil"], 39) == ["sil"] * 3


def test_q_is_deleted_when_folding_and_kept_with_61() -> None:
    sequence = ["h#", "q", "ix", "tcl", "t", "q", "h#"]
    assert fold(sequence, 61) == sequence
    assert fold(sequence, 48) == ["sil", "ix", "cl", "t", "sil"]
    assert fold(sequence, 39) == ["sil", "ih", "sil", "t", "sil"]


def test_unknown_phone_and_size_are_errors() -> None:
    with pytest.raises(ValueError, match="'xyz' is not a TIMIT phone"):
        fold(["aa", "xyz"], 39)
    with pytest.raises(ValueError, match="'cl' is not a TIMIT phone of the 61"):
        fold(["cl"], 61)
    with pytest.raises(ValueError, match="61, 48 or 39"):
        fold(["aa"], 40)
