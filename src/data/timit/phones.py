"""The TIMIT phone sets and the standard foldings between them (Lee & Hon, 1989).

TIMIT transcribes with 61 symbols. Recipes train on the 61 or on 48 of them and **score after folding
both sides to 39**: ao->aa; ax, ax-h->ah; axr->er; hv->hh; ix->ih; el->l; em->m; en, nx->n; eng->ng;
zh->sh; ux->uw; the closures pcl, tcl, kcl, bcl, dcl, gcl and h#, pau, epi->sil; the glottal stop q is
deleted. The 48-phone set keeps ao, ax, er, ix, el, en, zh, epi, and the closures as cl (unvoiced) and vcl
(voiced), as in the standard recipes' ``phones.60-48-39.map``.
"""

from __future__ import annotations

from collections.abc import Iterable

# 61 symbol -> (48-set symbol, 39-set symbol); q has neither (it is deleted).
_FOLDINGS: dict[str, tuple[str, str] | None] = {
    "aa": ("aa", "aa"), "ae": ("ae", "ae"), "ah": ("ah", "ah"), "ao": ("ao", "aa"), "aw": ("aw", "aw"),
    "ax": ("ax", "ah"), "ax-h": ("ax", "ah"), "axr": ("er", "er"), "ay": ("ay", "ay"), "b": ("b", "b"),
    "bcl": ("vcl", "sil"), "ch": ("ch", "ch"), "d": ("d", "d"), "dcl": ("vcl", "sil"), "dh": ("dh", "dh"),
    "dx": ("dx", "dx"), "eh": ("eh", "eh"), "el": ("el", "l"), "em": ("m", "m"), "en": ("en", "n"),
    "eng": ("ng", "ng"), "epi": ("epi", "sil"), "er": ("er", "er"), "ey": ("ey", "ey"), "f": ("f", "f"),
    "g": ("g", "g"), "gcl": ("vcl", "sil"), "h#": ("sil", "sil"), "hh": ("hh", "hh"), "hv": ("hh", "hh"),
    "ih": ("ih", "ih"), "ix": ("ix", "ih"), "iy": ("iy", "iy"), "jh": ("jh", "jh"), "k": ("k", "k"),
    "kcl": ("cl", "sil"), "l": ("l", "l"), "m": ("m", "m"), "n": ("n", "n"), "ng": ("ng", "ng"),
    "nx": ("n", "n"), "ow": ("ow", "ow"), "oy": ("oy", "oy"), "p": ("p", "p"), "pau": ("sil", "sil"),
    "pcl": ("cl", "sil"), "q": None, "r": ("r", "r"), "s": ("s", "s"), "sh": ("sh", "sh"),
    "t": ("t", "t"), "tcl": ("cl", "sil"), "th": ("th", "th"), "uh": ("uh", "uh"), "uw": ("uw", "uw"),
    "ux": ("uw", "uw"), "v": ("v", "v"), "w": ("w", "w"), "y": ("y", "y"), "z": ("z", "z"),
    "zh": ("zh", "sh"),
}  # fmt: skip

TIMIT_61: tuple[str, ...] = tuple(sorted(_FOLDINGS))
TIMIT_48: tuple[str, ...] = tuple(sorted({pair[0] for pair in _FOLDINGS.values() if pair is not None}))
TIMIT_39: tuple[str, ...] = tuple(sorted({pair[1] for pair in _FOLDINGS.values() if pair is not None}))
PHONE_SETS: dict[int, tuple[str, ...]] = {61: TIMIT_61, 48: TIMIT_48, 39: TIMIT_39}
_FOLD_48_TO_39: dict[str, str] = {pair[0]: pair[1] for pair in _FOLDINGS.values() if pair is not None}


def fold(phones: Iterable[str], size: int) -> list[str]:
    """Map a sequence of phones of any of the three sets onto the ``size``-phone set (61, 48 or 39).

    Folding to 61 only checks the symbols and removes nothing; folding to 48 or 39 deletes ``q``. A
    phone of the 48-set (e.g. ``cl``, ``vcl``) folds to 39 too, so predictions of a model trained on 48
    phones are scored the same way as those of a 61-phone model.
    """
    if size not in PHONE_SETS:
        raise ValueError(f"TIMIT phone sets have 61, 48 or 39 phones, not {size}")
    folded: list[str] = []
    for phone in phones:
        if phone in _FOLDINGS:
            pair = _FOLDINGS[phone]
            if size == 61:
                folded.append(phone)
            elif pair is not None:
                folded.append(pair[0] if size == 48 else pair[1])
        elif phone in _FOLD_48_TO_39 and size != 61:
            folded.append(phone if size == 48 else _FOLD_48_TO_39[phone])
        else:
            raise ValueError(f"{phone!r} is not a TIMIT phone of the {size}-phone set or a larger one")
    return folded
