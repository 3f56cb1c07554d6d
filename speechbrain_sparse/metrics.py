"""Tibetan text normalisation and the units of the three error rates.

Every table of the recipes states which error rate it reports:

* **WER**, word error rate: tokens are the whitespace-separated words of the
  transcript (for Tibetan, whatever the corpus separates with spaces);
* **SER**, Tibetan syllable error rate: tokens are the syllables, split on the
  tsheg, the shad and the other Tibetan delimiters of
  :data:`TIBETAN_SYLLABLE_DELIMITERS` and on whitespace; the delimiters
  themselves are dropped, so a missing tsheg before a shad is no error;
* **CER**, character error rate: tokens are Unicode code points of the NFC
  text, the space between two words counting as one character, exactly as
  SpeechBrain's ``ErrorRateStats(split_tokens=True)`` counts them.

All three normalise references and hypotheses alike first
(:func:`normalize_tibetan`: the NFKC folds a SentencePiece tokenizer applies,
Unicode NFC, whitespace collapsed), so a transcript typed with decomposed
vowel signs scores the same as its precomposed spelling, and a tsheg bstar in
a reference is no error against the plain tsheg the tokenizer gives back. The
edit distance is SpeechBrain's
(:class:`speechbrain.utils.metric_stats.ErrorRateStats`); this module only
decides what a token is.

Example
-------
>>> tibetan_syllables("བཀྲ་ཤིས་བདེ་ལེགས།")
['བཀྲ', 'ཤིས', 'བདེ', 'ལེགས']
>>> error_rate(["བཀྲ་ཤིས་བདེ་ལེག།"], ["བཀྲ་ཤིས་བདེ་ལེགས།"], unit="syllable")
25.0
"""

import re
import unicodedata

from speechbrain.utils.metric_stats import ErrorRateStats

from speechbrain_sparse.errors import UserInputError

TSHEG = "\u0f0b"
NON_BREAKING_TSHEG = "\u0f0c"
SHAD = "\u0f0d"

# Marks that end a syllable: tsheg, non-breaking tsheg (tsheg bstar), gter tsheg
# (used like a tsheg in treasure texts) and nyis tsheg (a doubled tsheg).
TSHEG_MARKS = frozenset("\u0f0b\u0f0c\u0f14\u0fd2")
# Marks that end a clause or verse: shad and its variants (nyis shad, tsheg
# shad, nyis tsheg shad, rin chen spungs shad, rgya gram shad) and sbrul shad.
SHAD_MARKS = frozenset("\u0f08" + "".join(map(chr, range(0x0F0D, 0x0F13))))
# Head marks (yig mgo) that open or close a text or a section, never part of a
# syllable: U+0F01-U+0F07, U+0F09, U+0F0A and the later U+0FD0, U+0FD1,
# U+0FD3, U+0FD4. U+0F01-U+0F03 are symbols (So) in Unicode, the others
# punctuation (Po); all are ornaments around syllables, not in them.
HEAD_MARKS = frozenset(
    "".join(map(chr, range(0x0F01, 0x0F08))) + "\u0f09\u0f0a\u0fd0\u0fd1\u0fd3\u0fd4"
)
# Brackets: gug rtags and ang khang (left/right) and the mchan rtags
# annotation marks.
BRACKET_MARKS = frozenset("\u0f3a\u0f3b\u0f3c\u0f3d\u0fd9\u0fda")
# Zero-width space: digital Tibetan puts one after a tsheg or shad as a line
# break opportunity; Python does not count it as whitespace.
ZERO_WIDTH_SPACE = "\u200b"

#: Everything a Tibetan syllable is split on, besides whitespace: every
#: punctuation character (Unicode category P*) of the Tibetan block except
#: U+0F85 PALUTA (it lengthens the vowel of the syllable it follows, so it
#: belongs to that syllable), the three yig mgo head marks that Unicode files
#: as symbols, and the zero-width space. Letters, vowel signs, subjoined
#: consonants, digits and the astrological and logotype symbols are syllable
#: content.
TIBETAN_SYLLABLE_DELIMITERS = frozenset(
    TSHEG_MARKS | SHAD_MARKS | HEAD_MARKS | BRACKET_MARKS | {ZERO_WIDTH_SPACE}
)

_SYLLABLE_SPLIT = re.compile(
    "[\\s" + "".join(sorted(TIBETAN_SYLLABLE_DELIMITERS)) + "]+"
)


#: Tibetan characters whose NFKC form is not their NFC form: U+0F0C TSHEG
#: BSTAR (-> U+0F0B) and the vowel signs U+0F77, U+0F79 (-> subjoined RA / LA
#: + U+0F71 U+0F80). SentencePiece's default normalisation (``nmt_nfkc``)
#: writes the NFKC form into every hypothesis, so references are folded the
#: same way, or a perfect recogniser would score errors on every such word.
NFKC_FOLDS = {
    character: folded
    for character in map(chr, range(0x0F00, 0x1000))
    if (folded := unicodedata.normalize("NFKC", character))
    != unicodedata.normalize("NFC", character)
}
_FOLD_TABLE = str.maketrans(NFKC_FOLDS)


def normalize_tibetan(text):
    """NFKC folds of Tibetan, NFC, runs of whitespace collapsed, ends stripped.

    NFC matters for Tibetan: the same syllable can be typed with the vowel
    signs in either order or with a precomposed letter (U+0F43 GHA is
    U+0F42 U+0FB7 in NFC), and only the normal form compares equal.

    Arguments
    ---------
    text : str
        A transcript.

    Returns
    -------
    str
        The normalised transcript.

    The characters of :data:`NFKC_FOLDS` are folded first, so a reference
    compares equal to what a SentencePiece tokenizer gives back.

    Example
    -------
    >>> normalized = normalize_tibetan("  \\u0f43\\u0f72\\u0f71   ཤིས ")
    >>> normalized == "\\u0f42\\u0fb7\\u0f71\\u0f72 ཤིས"
    True
    >>> normalize_tibetan("\\u0f40\\u0f0c") == "\\u0f40\\u0f0b"
    True
    """
    folded = unicodedata.normalize("NFC", text.translate(_FOLD_TABLE))
    return " ".join(folded.split())


def tibetan_syllables(text):
    """Splits a Tibetan transcript into syllables.

    The text is normalised (:func:`normalize_tibetan`), then split on
    whitespace and on :data:`TIBETAN_SYLLABLE_DELIMITERS`; the delimiters and
    empty pieces are dropped. A run of non-Tibetan text without delimiters
    (a Latin word, a number) counts as one syllable.

    Arguments
    ---------
    text : str
        A transcript.

    Returns
    -------
    list of str
        The syllables, in order.

    Example
    -------
    >>> tibetan_syllables("ང་ བོད་པ་ཡིན། ༄༅། ཀ")
    ['ང', 'བོད', 'པ', 'ཡིན', 'ཀ']
    """
    return [piece for piece in _SYLLABLE_SPLIT.split(normalize_tibetan(text)) if piece]


def word_tokens(text):
    """The whitespace-separated words of the normalised text (for WER).

    Example
    -------
    >>> word_tokens(" བཀྲ་ཤིས་  བདེ་ལེགས། ")
    ['བཀྲ་ཤིས་', 'བདེ་ལེགས།']
    """
    return normalize_tibetan(text).split()


def character_tokens(text):
    """The code points of the normalised text, one space between words (for CER).

    The same characters as SpeechBrain's ``ErrorRateStats(split_tokens=True)``
    on the words (which writes the space as ``_``), so the CER is the same.

    Example
    -------
    >>> character_tokens("ཀ་ ཁ")
    ['ཀ', '་', ' ', 'ཁ']
    """
    return list(normalize_tibetan(text))


#: Error-rate unit -> tokenizer (text -> list of tokens).
ERROR_RATE_TOKENIZERS = {
    "word": word_tokens,
    "syllable": tibetan_syllables,
    "character": character_tokens,
}


def error_rate_stats(hypotheses, references, unit="word", ids=None):
    """SpeechBrain ``ErrorRateStats`` filled with texts tokenized by ``unit``.

    Arguments
    ---------
    hypotheses : list of str
        Recognised texts.
    references : list of str
        Reference transcripts, one per hypothesis.
    unit : str
        ``"word"`` (WER), ``"syllable"`` (SER) or ``"character"`` (CER).
    ids : list of str, optional
        Utterance ids (for ``write_stats``); ``"0"``, ``"1"``, ... by default.

    Returns
    -------
    speechbrain.utils.metric_stats.ErrorRateStats
        Call ``summarize("error_rate")`` for the rate in percent, or
        ``write_stats(handle)`` for the per-utterance alignments.

    Example
    -------
    >>> stats = error_rate_stats(["ཀ་ཁ"], ["ཀ་ཁ་ག"], unit="syllable")
    >>> stats.summarize()["deletions"]
    1
    """
    if unit not in ERROR_RATE_TOKENIZERS:
        raise UserInputError(
            f"unknown error-rate unit {unit!r}; use one of "
            f"{', '.join(ERROR_RATE_TOKENIZERS)}"
        )
    if len(hypotheses) != len(references):
        raise UserInputError(
            f"{len(hypotheses)} hypotheses but {len(references)} references"
        )
    tokenize = ERROR_RATE_TOKENIZERS[unit]
    if ids is None:
        ids = [str(index) for index in range(len(references))]
    stats = ErrorRateStats()
    stats.append(
        ids,
        [tokenize(text) for text in hypotheses],
        [tokenize(text) for text in references],
    )
    return stats


def error_rate(hypotheses, references, unit="word"):
    """The error rate in percent: (substitutions + deletions + insertions) / N.

    Arguments
    ---------
    hypotheses : list of str
        Recognised texts.
    references : list of str
        Reference transcripts; N is their total number of ``unit`` tokens.
    unit : str
        ``"word"`` (WER), ``"syllable"`` (SER) or ``"character"`` (CER).

    Returns
    -------
    float
        The error rate in percent (above 100 when there are many insertions).

    Example
    -------
    >>> error_rate(["ཀ་ཁ ག"], ["ཀ་ཁ ང"], unit="word")
    50.0
    """
    return error_rate_stats(hypotheses, references, unit).summarize("error_rate")
