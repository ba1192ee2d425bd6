"""Word repair: the pure gap spacing and segmentation (rag/ocr/words.py), the decoder
that measures the gaps (rag/ocr/ctc.py), and word boxes in payloads.

The lexicon is the real one (symspellpy's shipped English frequencies, loaded once).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.ocr.ctc import Gap, PositionDecoder, decode_line
from rag.ocr.lexicon import SymSpellLexicon, english
from rag.ocr.words import (
    STRONG_SPACE,
    apply_splits,
    halfwidth,
    is_protected,
    word_splits,
    words_with_positions,
)
from rag.types import OcrBox

NONE = Gap(0.0, 1.0)
WEAK = Gap(0.02, 1.0)  # what the recogniser typically leaves where it dropped a space
WIDE = Gap(0.0, 2.0)  # no space symbol, but twice the line's pitch
STRONG = Gap(STRONG_SPACE + 0.1, 1.0)


@pytest.fixture(scope="module")
def lexicon() -> SymSpellLexicon:
    return english()


def glued(truth: str, dropped: str, evidence: Gap = WEAK) -> tuple[str, list[Gap]]:
    """The recogniser's line for ``truth`` when it wrote ``dropped`` (the same characters
    with some spaces missing), with ``evidence`` where a space was dropped."""
    gaps: list[Gap] = []
    t = 0
    for k, ch in enumerate(dropped):
        assert truth[t] == ch, (truth, dropped)
        t += 1
        if k + 1 < len(dropped):
            dropped_space = truth[t] == " " and dropped[k + 1] != " "
            if dropped_space:
                t += 1
            gaps.append(evidence if dropped_space else NONE)
    return dropped, gaps


def repair(text: str, gaps: list[Gap], lexicon: SymSpellLexicon) -> str:
    return apply_splits(text, word_splits(text, gaps, lexicon))


ISSUE_LINES = [
    # (what the page says, what the recogniser wrote): the issue's examples
    ("INC-2291 postmortem", "INC-2291postmortem"),
    ("internal DNS", "internalDNS"),
    ("about 9,000 to 61,000 queries per second, and", "about9,000 to 61,000 queriesper second,and"),
    ("tee - read from standard input and write to standard output and files",
     "tee-readfromstandard inputand writetostandard outputand files"),
    ("append to the given FILEs, do not overwrite", "append to thegiven FILEs,donotoverwrite"),
    ("set behavior on write error", "setbehavioronwriteerror"),
]


@pytest.mark.parametrize(("truth", "read"), ISSUE_LINES)
@pytest.mark.parametrize("evidence", [WEAK, WIDE], ids=["space-prob", "pitch"])
def test_the_issues_glued_lines_come_back_with_their_spaces(
    truth: str, read: str, evidence: Gap, lexicon: SymSpellLexicon
) -> None:
    text, gaps = glued(truth, read, evidence)
    assert repair(text, gaps, lexicon) == truth


@pytest.mark.parametrize(("truth", "read"), ISSUE_LINES)
def test_without_a_gap_in_the_image_nothing_is_split(
    truth: str, read: str, lexicon: SymSpellLexicon
) -> None:
    """The dictionary only proposes: a glued line whose picture shows no gaps stays."""
    assert repair(read, [NONE] * (len(read) - 1), lexicon) == read


def test_strong_evidence_is_a_space_even_where_no_dictionary_agrees(
    lexicon: SymSpellLexicon,
) -> None:
    truth = "--output-error[=MODE] /usr/local/bin"
    text, gaps = glued(truth, truth.replace(" ", ""), STRONG)
    assert repair(text, gaps, lexicon) == truth


def test_strong_evidence_inside_a_dictionary_word_is_a_misreading(
    lexicon: SymSpellLexicon,
) -> None:
    # Seen on a clean render: the space symbol scored 0.3+ between "appe" and "nd".
    gaps = [NONE] * 5
    gaps[3] = STRONG
    assert repair("append", gaps, lexicon) == "append"


@pytest.mark.parametrize(
    ("truth", "read", "expected"),
    [
        ("camel Case", "camelCase", "camelCase"),  # a hump needs the space symbol itself
        ("10 ms", "10ms", "10ms"),  # numbers keep their units
        ("2 nd", "2nd", "2nd"),  # and ordinals
        ("sha 256 sum", "sha256sum", "sha256sum"),  # letters, digits, letters: a name
        ("tee - read", "tee-read", "tee - read"),
        ("k, m, g, t", "k,m,g,t", "k,m,g,t"),  # a list of letters, not a clause
        ("KB, MB", "KB,MB", "KB,MB"),
    ],
)
def test_identifiers_units_and_short_runs_stay_whole_on_weak_evidence(
    truth: str, read: str, expected: str, lexicon: SymSpellLexicon
) -> None:
    text, gaps = glued(truth, read, WEAK)
    assert repair(text, gaps, lexicon) == expected


@pytest.mark.parametrize("token", ["camelCase", "getElementById", "HttpClient"])
def test_camel_case_identifiers_stay_whole_on_gaps_without_a_space_symbol(
    token: str, lexicon: SymSpellLexicon
) -> None:
    """Monospace fonts leave wide gaps around narrow letters; that alone never cuts a
    camel hump."""
    assert repair(token, [WIDE] * (len(token) - 1), lexicon) == token


def test_a_dash_is_spaced_on_both_sides_or_not_at_all(lexicon: SymSpellLexicon) -> None:
    gaps = [NONE] * 7
    gaps[3] = WEAK  # after the dash only: "tee-read" with one half-gap stays
    assert repair("tee-read", gaps, lexicon) == "tee-read"


PROTECTED = [
    "--output-error", "-rf", "--dry-run", "/usr/local/bin", "~/.ssh/config",
    "https://example.com/docs/index.html", "git@github.com:org/repo.git", "ops@example.org",
    "snake_case_name", "MAX_RETRIES", "__init__", "api.internal.example.com",
    "db-01.prod.local", "v2.14.1", "python3.11", "x86_64", "tmpfiles.d", "README.md",
    "a=b", "$HOME", "C:\\Windows", "std::vector", "sha256sum", "md5sum",
]


@pytest.mark.parametrize("token", PROTECTED)
def test_protected_tokens_are_recognised(token: str) -> None:
    assert is_protected(token)


@pytest.mark.parametrize("token", ["inputand", "FILEs,do", "about9,000", "internalDNS"])
def test_prose_is_not_protected(token: str) -> None:
    assert not is_protected(token)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(PROTECTED + ["10ms", "250MB", "5GB", "64KiB", "2nd", "100x",
                                 "overwrite", "standard"]),
    st.data(),
)
def test_protected_tokens_are_never_split_below_strong_evidence(
    lexicon: SymSpellLexicon, token: str, data: st.DataObject
) -> None:
    gaps = data.draw(st.lists(
        st.builds(Gap, st.floats(0, STRONG_SPACE - 1e-6), st.floats(0, 4)),
        min_size=len(token) - 1, max_size=len(token) - 1,
    ))
    assert word_splits(token, gaps, lexicon) == []


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEF0123456789 ,.;:-/_", max_size=60),
       st.data())
def test_repair_only_inserts_spaces_between_characters(
    lexicon: SymSpellLexicon, text: str, data: st.DataObject
) -> None:
    gaps = data.draw(st.lists(st.builds(Gap, st.floats(0, 1), st.floats(0, 4)),
                              min_size=max(0, len(text) - 1), max_size=max(0, len(text) - 1)))
    splits = word_splits(text, gaps, lexicon)
    out = apply_splits(text, splits)
    assert out.replace(" ", "") == text.replace(" ", "")
    assert all(0 < k < len(text) and text[k - 1] != " " and text[k] != " " for k in splits)
    assert splits == sorted(set(splits))
    # Word positions point at the words' characters in the original line.
    for word, a, b in words_with_positions(text, splits):
        assert text[a : b + 1] == word and " " not in word
    assert [w for w, _, _ in words_with_positions(text, splits)] == out.split()


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet="abcdefghij ,", max_size=40))
def test_no_evidence_no_new_spaces(lexicon: SymSpellLexicon, text: str) -> None:
    assert word_splits(text, [NONE] * max(0, len(text) - 1), lexicon) == []


def test_missing_or_mismatched_evidence_splits_nothing(lexicon: SymSpellLexicon) -> None:
    assert word_splits("inputand", [], lexicon) == []
    assert word_splits("", [], lexicon) == []


def test_fullwidth_punctuation_becomes_ascii_one_for_one() -> None:
    assert halfwidth("second，and：x；（a）") == "second,and:x;(a)"
    assert len(halfwidth("ＡＢＣ。")) == 4


# -- the decoder --------------------------------------------------------------------

CHARS = ["blank", "a", "b", "c", "1", " "]


def test_decoder_reads_characters_their_positions_and_the_gap_between() -> None:
    # columns: a a _ (space .2) _ b _ c c _
    probs = np.full((10, len(CHARS)), 0.01, dtype=np.float32)
    best = [1, 1, 0, 0, 0, 2, 0, 3, 3, 0]
    for col, sym in enumerate(best):
        probs[col, sym] = 0.9
    probs[3, 5] = 0.2  # the space scored, but below the blank
    line = decode_line(probs, CHARS, content_fraction=1.0)
    assert line.text == "abc"
    assert line.score == pytest.approx(0.9)
    assert line.gaps[0].space_prob == pytest.approx(0.2)
    assert line.gaps[1].space_prob == pytest.approx(0.01)
    assert line.spans[0] == (0.0, 0.2) and line.spans[1] == (0.5, 0.6)
    # Half of the columns are padding: positions are relative to the crop itself.
    assert decode_line(probs, CHARS, content_fraction=0.5).spans[1] == (1.0, 1.0)


@settings(max_examples=60)
@given(st.integers(1, 40), st.integers(0, 2**31 - 1))
def test_decoder_text_and_score_match_rapidocrs_own(columns: int, seed: int) -> None:
    from rapidocr_onnxruntime.ch_ppocr_rec.utils import CTCLabelDecode

    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, size=(2, columns, len(CHARS))).astype(np.float32)
    preds = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    theirs = CTCLabelDecode(character=["a", "b", "c", "1"])(preds)
    ours = PositionDecoder(CTCLabelDecode(character=["a", "b", "c", "1"]).character)(
        preds, False, wh_ratio_list=[3.0, 2.0], max_wh_ratio=3.0
    )
    assert [(t, s) for t, s, _ in ours] == [tuple(r) for r in theirs]
    for text, _, line in ours:
        assert len(line.spans) == len(text) and len(line.gaps) == max(0, len(text) - 1)


# -- word boxes in payloads -----------------------------------------------------------


def test_word_boxes_round_trip_and_old_payloads_still_read() -> None:
    line = OcrBox("read from", (0.1, 0.2, 0.5, 0.3), 0.9,
                  (("read", (0.1, 0.2, 0.25, 0.3)), ("from", (0.3, 0.2, 0.5, 0.3))))
    assert OcrBox.from_payload(line.to_payload()) == line
    old = {"text": "read from", "box": [0.1, 0.2, 0.5, 0.3], "confidence": 0.9}
    assert OcrBox.from_payload(old).words == ()
    assert "words" not in OcrBox("x", (0, 0, 1, 1), 1.0).to_payload()


def test_prose_before_a_bracketed_url_is_repaired_and_the_url_kept(
    lexicon: SymSpellLexicon,
) -> None:
    truth = "online help: <https://www.gnu.org/software/coreutils/>"
    text, gaps = glued(truth, "onlinehelp:<https://www.gnu.org/software/coreutils/>")
    assert repair(text, gaps, lexicon) == truth


@pytest.mark.parametrize(
    ("truth", "read"),
    [
        ("is unchanged if missing. Group is", "is unchanged if missing.Group is"),
        ("the original extension. gunzip also", "the original extension.gunzipalso"),
        ("tee [OPTION]... [FILE]...", "tee[OPTION]...[FILE]..."),
        ("chown [OPTION]... --reference=RFILE", "chown [OPTION]...--reference=RFILE"),
        ("tar --create FILE", "tar--create FILE"),
    ],
)
def test_sentence_ends_and_brackets_glued_to_words(
    truth: str, read: str, lexicon: SymSpellLexicon
) -> None:
    text, gaps = glued(truth, read)
    assert repair(text, gaps, lexicon) == truth


@pytest.mark.parametrize("name", ["example.com", "resolv.conf", "api.internal.example.com",
                                  "read(2)", "a[0]", "config.yaml", "i--"])
def test_host_and_file_names_and_calls_keep_their_dots_and_brackets(
    name: str, lexicon: SymSpellLexicon
) -> None:
    assert repair(name, [WEAK] * (len(name) - 1), lexicon) == name
