"""Tibetan normalisation, syllable splitting and the WER / SER / CER units."""

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from speechbrain.utils.metric_stats import ErrorRateStats

from speechbrain_sparse.metrics import (
    TIBETAN_SYLLABLE_DELIMITERS,
    character_tokens,
    error_rate,
    error_rate_stats,
    normalize_tibetan,
    tibetan_syllables,
    word_tokens,
)

TASHI_DELEK = "བཀྲ་ཤིས་བདེ་ལེགས།"  # "good luck", four syllables and a shad


def test_known_greeting_has_four_syllables():
    assert tibetan_syllables(TASHI_DELEK) == ["བཀྲ", "ཤིས", "བདེ", "ལེགས"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ཀ་ཁ", ["ཀ", "ཁ"]),
        ("ཀ་།", ["ཀ"]),  # tsheg before a shad: no empty syllable
        ("ཀ༌ཁ", ["ཀ", "ཁ"]),  # non-breaking tsheg (U+0F0C)
        ("ཀ༔ཁ", ["ཀ", "ཁ"]),  # gter tsheg (U+0F14)
        ("ཀ༎ ཁ༏ག༐ང༑ཅ༒ཆ", ["ཀ", "ཁ", "ག", "ང", "ཅ", "ཆ"]),  # shad variants
        ("༄༅། །ཀ་ཁ།", ["ཀ", "ཁ"]),  # head marks at the start of a text
        ("༺ཀ་ཁ༻", ["ཀ", "ཁ"]),  # gug rtags brackets
        ("ཀ།\u200bཁ", ["ཀ", "ཁ"]),  # zero-width space after a shad
        ("བཀྲ་ཤིས  བདེ་ལེགས", ["བཀྲ", "ཤིས", "བདེ", "ལེགས"]),  # whitespace too
        ("ཨོཾ་མ་ཎི་པདྨེ་ཧཱུྃ།", ["ཨོཾ", "མ", "ཎི", "པདྨེ", "ཧཱུྃ"]),  # marks stay
        ("༢༠༡༩ ལོ།", ["༢༠༡༩", "ལོ"]),  # a number is one token
        ("", []),
        (" ་།༄ ", []),
    ],
)
def test_syllable_splitting(text, expected):
    assert tibetan_syllables(text) == expected


def test_nfc_and_decomposed_input_give_identical_syllables():
    # U+0F43 GHA and U+0F73 (long I) decompose in NFC; vowel signs reorder.
    precomposed = "\u0f43\u0f73\u0f0b\u0f40\u0f72\u0f71\u0f0d"
    decomposed = "\u0f42\u0fb7\u0f71\u0f72\u0f0b\u0f40\u0f71\u0f72\u0f0d"
    assert precomposed != decomposed
    assert normalize_tibetan(precomposed) == normalize_tibetan(decomposed)
    assert tibetan_syllables(precomposed) == tibetan_syllables(decomposed)
    assert len(tibetan_syllables(decomposed)) == 2
    assert error_rate([precomposed], [decomposed], unit="character") == 0.0


def test_normalize_collapses_and_strips_whitespace():
    assert normalize_tibetan("\t བཀྲ་ཤིས \n\n བདེ་ལེགས། ") == "བཀྲ་ཤིས བདེ་ལེགས།"


def test_delimiters_are_the_tibetan_punctuation_except_paluta():
    punctuation = {
        chr(code)
        for code in range(0x0F00, 0x1000)
        if unicodedata.category(chr(code)).startswith("P")
    }
    assert punctuation - TIBETAN_SYLLABLE_DELIMITERS == {"\u0f85"}
    extra = TIBETAN_SYLLABLE_DELIMITERS - punctuation
    assert extra == {"\u0f01", "\u0f02", "\u0f03", "\u200b"}
    for character in TIBETAN_SYLLABLE_DELIMITERS:
        assert unicodedata.category(character)[0] not in "LMN", hex(ord(character))


def test_syllable_error_rate_by_hand():
    # Reference: 4 syllables. Hypothesis: ཤིས -> ཤེས (substitution), བདེ deleted.
    stats = error_rate_stats(["བཀྲ་ཤེས་ལེགས།"], [TASHI_DELEK], unit="syllable")
    summary = stats.summarize()
    assert summary["substitutions"] == 1 and summary["deletions"] == 1
    assert summary["insertions"] == 0 and summary["num_scored_tokens"] == 4
    assert summary["error_rate"] == pytest.approx(50.0)


def test_syllable_error_rate_ignores_delimiter_differences():
    hypothesis = "བཀྲ༌ཤིས བདེ་ལེགས་"  # other tsheg, a space, no shad
    assert error_rate([hypothesis], [TASHI_DELEK], unit="syllable") == 0.0
    # One reference word, two hypothesis words: a substitution and an insertion.
    assert error_rate([hypothesis], [TASHI_DELEK], unit="word") == 200.0


def test_error_rate_over_several_utterances():
    references = [TASHI_DELEK, "ང་བོད་པ་ཡིན།"]  # 4 + 4 syllables
    hypotheses = ["བཀྲ་ཤིས་བདེ་ལེགས།", "ང་བོད་པ་ཡིན་ནོ།"]  # one insertion
    assert error_rate(hypotheses, references, unit="syllable") == pytest.approx(12.5)


def test_word_error_rate_on_whitespace_tokens():
    reference = "བཀྲ་ཤིས་ བདེ་ལེགས། ཕུན་སུམ་ཚོགས།"
    assert word_tokens(reference) == ["བཀྲ་ཤིས་", "བདེ་ལེགས།", "ཕུན་སུམ་ཚོགས།"]
    hypothesis = "བཀྲ་ཤིས་ བདེ་ལེག ཕུན་སུམ་ཚོགས།"
    assert error_rate([hypothesis], [reference], unit="word") == pytest.approx(100 / 3)


def test_character_error_rate_matches_speechbrain_split_tokens():
    reference, hypothesis = "བཀྲ་ཤིས་ བདེ་ལེགས།", "བཀྲ་ཤེས་ བདེ་ལེགས"
    speechbrain_cer = ErrorRateStats(split_tokens=True)
    speechbrain_cer.append(["u"], [hypothesis.split()], [reference.split()])
    ours = error_rate_stats([hypothesis], [reference], unit="character")
    assert ours.summarize() == speechbrain_cer.summarize()
    assert ours.summarize()["num_scored_tokens"] == len(reference)
    assert character_tokens("ཀ  ཁ") == ["ཀ", " ", "ཁ"]


def test_write_stats_names_the_utterances(tmp_path):
    stats = error_rate_stats(["ཀ་ཁ"], ["ཀ་ག"], unit="syllable", ids=["utt-1"])
    with open(tmp_path / "ser.txt", "w", encoding="utf-8") as handle:
        stats.write_stats(handle)
    assert "utt-1" in (tmp_path / "ser.txt").read_text(encoding="utf-8")


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown error-rate unit 'phone'"):
        error_rate(["ཀ"], ["ཀ"], unit="phone")
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        error_rate(["ཀ", "ཁ"], ["ཀ"])


tibetan_letters = st.sampled_from(
    [chr(code) for code in range(0x0F40, 0x0F6D) if unicodedata.name(chr(code), "")]
)
syllables = st.lists(
    st.text(tibetan_letters, min_size=1, max_size=4), min_size=0, max_size=8
)
delimiters = st.sampled_from(sorted(TIBETAN_SYLLABLE_DELIMITERS) + [" ", "\n"])


@settings(max_examples=60, deadline=None)
@given(syllables, st.lists(delimiters, min_size=1, max_size=3), st.data())
def test_any_delimiters_between_syllables_give_the_same_syllables(
    pieces, separator_pool, data
):
    text = ""
    for piece in pieces:
        separator = data.draw(st.sampled_from(separator_pool))
        text += piece + separator * data.draw(st.integers(1, 2))
    assert tibetan_syllables(text) == [normalize_tibetan(piece) for piece in pieces]


def test_a_perfect_recogniser_scores_zero_on_nfkc_sensitive_tibetan(tmp_path):
    """Hypotheses come back through SentencePiece (NFKC); references are NFC."""
    import unicodedata

    import sentencepiece

    from speechbrain_sparse.metrics import error_rate, normalize_tibetan

    references = [
        "ཀ༌ཁ་ག། ང་ཅ",                  # U+0F0C tsheg bstar
        "རཱྀ་ལཱྀ་ ཀ་ཁ",                 # decomposed vocalic rr / ll
        "\u0f62\u0f77་\u0f63\u0f79་ བོད",  # U+0F77, U+0F79
    ]
    references = [unicodedata.normalize("NFC", text) for text in references]
    corpus = tmp_path / "text.txt"
    corpus.write_text("\n".join(references * 20) + "\n", encoding="utf-8")
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(tmp_path / "spm"), vocab_size=20,
        model_type="unigram", character_coverage=1.0)
    tokenizer = sentencepiece.SentencePieceProcessor(
        model_file=str(tmp_path / "spm.model"))
    perfect = [tokenizer.decode_ids(tokenizer.encode_as_ids(text))
               for text in references]
    assert perfect != references  # the tokenizer folds what NFKC folds

    for unit in ("word", "character", "syllable"):
        assert error_rate(perfect, references, unit=unit) == 0.0, unit
    # what the Brain scores: both sides through the recipe's normalize_text
    assert [normalize_tibetan(h).split() for h in perfect] == [
        normalize_tibetan(r).split() for r in references]
    # without the folds the same recogniser would score errors on the two
    # references with U+0F0C / U+0F77 / U+0F79 (the second is already folded)
    raw = [h.split() != r.split() for h, r in zip(perfect, references)]
    assert raw == [True, False, True]
