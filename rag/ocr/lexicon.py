"""English words and a word segmenter, from symspellpy and the frequency list it ships.

symspellpy (maintained, MIT) carries an 82,765-word English frequency dictionary in its
wheel, so nothing is downloaded. Its ``word_segmentation`` splits a glued run into the
most probable words; :mod:`rag.ocr.words` only takes the splits the image agrees with.
symspellpy's types stay in this module.
"""

from __future__ import annotations

import functools
import threading
from typing import Protocol

from rag.errors import ModelUnavailable

# Longest run handed to the segmenter; longer ones are left as they are (its cost grows
# with length x longest word, and a 60-letter run without a space is not prose anyway).
MAX_RUN = 80


class Lexicon(Protocol):
    """What word repair needs from a dictionary (tests may pass a small one)."""

    def is_word(self, word: str) -> bool: ...

    def segment(self, run: str) -> list[str]: ...


class SymSpellLexicon:
    """:class:`Lexicon` over symspellpy's shipped English unigram frequencies."""

    def __init__(self) -> None:
        try:
            import importlib.resources

            from symspellpy import SymSpell
        except ImportError as exc:
            raise ModelUnavailable(
                "OCR word repair needs the symspellpy package (pip install symspellpy)"
            ) from exc
        path = importlib.resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt"
        # Edit distance 0: segmentation only, no spelling correction (a misread letter is
        # not ours to guess), which also keeps the index small.
        self._sym = SymSpell(max_dictionary_edit_distance=0, prefix_length=7)
        if not self._sym.load_dictionary(str(path), term_index=0, count_index=1):
            raise ModelUnavailable(f"symspellpy's dictionary is missing at {path}")
        self._words = self._sym.words
        self._lock = threading.Lock()

    def is_word(self, word: str) -> bool:
        return word.lower() in self._words

    def segment(self, run: str) -> list[str]:
        """``run`` split into the most probable words (its characters unchanged)."""
        if len(run) > MAX_RUN or len(run) < 2:
            return [run]
        with self._lock:  # SymSpell keeps no per-call state, but be safe across threads
            result = self._sym.word_segmentation(run, max_edit_distance=0)
        pieces = result.segmented_string.split()
        return pieces if "".join(pieces) == run else [run]


@functools.lru_cache(maxsize=1)
def english() -> SymSpellLexicon:
    """The shipped English lexicon, loaded once per process (about 1-3 s): it is data,
    not a model with settings, so one copy serves every engine."""
    return SymSpellLexicon()
