"""Real English sentences for the synthetic corpus, from the Debian fortunes files.

The extraction is deterministic: the English fortune files (:data:`ENGLISH_FILES`,
those of the Debian packages ``fortunes`` and ``fortunes-min``) are read in sorted
order, every fortune is split into sentences, and a sentence is kept only when it
normalises cleanly to the recipe's character set (upper-case ``A``-``Z``, the
apostrophe and single spaces) and has between ``MIN_WORDS`` and ``MAX_WORDS`` words.
Sentences with digits, addresses, code-like symbols or attributions (``-- Author``)
are dropped, and the result is de-duplicated, keeping the first occurrence.

Two text domains are offered (:func:`load_text`):

- ``open``: every such sentence (:func:`load_sentences`, ~16,600 sentences and
  ~15,600 distinct words), so test sets are full of words never trained on;
- ``closed`` (the default): clauses (sentences cut at ``, ; : . ! ? " ( )``) whose
  words all belong to a fixed vocabulary, the :data:`CLOSED_VOCABULARY_SIZE` most
  frequent words pruned until every kept word occurs in at least
  :data:`MIN_SENTENCES_PER_WORD` kept clauses (:func:`closed_vocabulary`; ~5,200
  clauses over ~680 words, 5.6 words on average). :func:`coverage_order` orders a
  list so that a short prefix of it holds the whole vocabulary.

Example
-------
>>> normalize_sentence("Don't panic, it's only a test!")
"DON'T PANIC IT'S ONLY A TEST"
>>> normalize_sentence("Call 555-1234 now.") is None
True
>>> split_sentences("Go home. Then sleep! Why?")
['Go home.', 'Then sleep!', 'Why?']
>>> split_clauses("When in doubt, tell the truth; it will confound your enemies.")
['WHEN IN DOUBT', 'TELL THE TRUTH', 'IT WILL CONFOUND YOUR ENEMIES']
"""

import collections
import functools
import hashlib
import heapq
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from speechbrain_sparse.errors import MissingInputError, UserInputError

logger = logging.getLogger(__name__)

FORTUNES_DIR = Path("/usr/share/games/fortunes")
MIN_WORDS = 3
MAX_WORDS = 16
TEXT_DOMAINS = ("closed", "open")
# The closed vocabulary: the most frequent words of the clauses, pruned (see
# ``closed_vocabulary``). 800 / 5 give ~5,200 clauses over ~680 words, which the
# greedy coverage order covers in ~250 clauses: fewer than a tiny target trains on.
CLOSED_VOCABULARY_SIZE = 800
MIN_SENTENCES_PER_WORD = 5

# The top-level files of the Debian packages ``fortunes-min`` and ``fortunes``
# (bookworm, 1:1.99.1-7.3: ``dpkg -c``). Only these are English: ``fortunes-de``,
# ``-es``, ``-it``, ``-pl`` and ``-br`` install into the same folder (language
# folders, top-level symlinks such as ``computer -> it/computer``, a ``brasil`` file).
DEBIAN_FORTUNES_FILES = (
    # fortunes-min
    "fortunes", "literature", "riddles",
    # fortunes
    "art", "ascii-art", "computers", "cookie", "debian", "definitions", "disclaimer",
    "drugs", "education", "ethnic", "food", "goedel", "humorists", "kids", "knghtbrd",
    "law", "linux", "linuxcookie", "love", "magic", "medicine", "men-women",
    "miscellaneous", "news", "paradoxum", "people", "perl", "pets", "platitudes",
    "politics", "pratchett", "science", "songs-poems", "sports", "startrek", "tao",
    "translate-me", "wisdom", "work", "zippy",
)  # fmt: skip
# Never read: pictures rather than prose, other languages, and the offensive
# collection (Debian's ``fortunes-off`` installs into an ``off`` folder; folders are
# never read anyway).
EXCLUDED_NAMES = {"ascii-art", "translate-me", "off"}
ENGLISH_FILES = tuple(
    sorted(name for name in DEBIAN_FORTUNES_FILES if name not in EXCLUDED_NAMES)
)

# Punctuation that is simply removed (replaced by a space) when normalising.
_SOFT_PUNCTUATION = re.compile(r"""[,.;:!?"()\-]""")
# Anything outside letters, apostrophes, spaces and soft punctuation rejects a sentence.
_ALLOWED = re.compile(r"""^[A-Za-z' ,.;:!?"()\-]+$""")
_SENTENCE_END = re.compile(r"""(?<=[.!?])["')]*\s+(?=["'(]*[A-Z])""")
_CLAUSE_END = re.compile(r"""[,;:.!?"()]|\s-\s""")
_ATTRIBUTION = re.compile(r"^\s*(--|~~)")
_SINGLE_LETTERS_OK = {"A", "I", "O"}
_VOWEL = re.compile("[AEIOUY]")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e\n\t]")


@dataclass(frozen=True)
class Alphabet:
    """What one language's normalised sentences are written with, and how to cut them.

    :data:`ENGLISH` is the English corpus's (``A``-``Z`` and the apostrophe, ASCII
    fortunes only); :func:`make_alphabet` builds the others.

    Arguments
    ---------
    allowed : re.Pattern
        A raw sentence must match it whole (letters, apostrophe, soft punctuation).
    soft_punctuation : re.Pattern
        Replaced by a space when normalising.
    sentence_end : re.Pattern
        Where running text is cut into sentences.
    clause_end : re.Pattern
        Where a sentence is cut into clauses.
    vowel : re.Pattern
        A word without a match is an abbreviation (rejected).
    single_letters : frozenset
        The one-letter words accepted (upper case).
    unprintable : re.Pattern
        A fortune holding a match is skipped whole.
    encoding : str
        How the text files are decoded.
    caseless : str
        Letters kept as they are when upper-casing (German ``ß``).
    """

    allowed: re.Pattern
    soft_punctuation: re.Pattern
    sentence_end: re.Pattern
    clause_end: re.Pattern
    vowel: re.Pattern
    single_letters: frozenset
    unprintable: re.Pattern
    encoding: str = "latin-1"
    caseless: str = ""

    def decode(self, data):
        """Decodes a file's bytes (UTF-8: NFC, typographic apostrophes plain)."""
        text = data.decode(self.encoding, errors="replace")
        if self.encoding == "latin-1":
            return text
        return unicodedata.normalize("NFC", text).translate(_TYPOGRAPHIC)

    def upper(self, text):
        """Upper-cases ``text``, leaving the :attr:`caseless` letters alone."""
        if not self.caseless:
            return text.upper()
        return "".join(c if c in self.caseless else c.upper() for c in text)



ENGLISH = Alphabet(
    allowed=_ALLOWED,
    soft_punctuation=_SOFT_PUNCTUATION,
    sentence_end=_SENTENCE_END,
    clause_end=_CLAUSE_END,
    vowel=_VOWEL,
    single_letters=frozenset(_SINGLE_LETTERS_OK),
    unprintable=_UNPRINTABLE,
)
# Typographic apostrophes and quotes of the UTF-8 texts, mapped before matching.
_TYPOGRAPHIC = str.maketrans({"\u2019": "'", "\u2018": "'", "\u00b4": "'",
                              "\u02bc": "'", "\u00a0": " "})
# Quotes and marks that only separate clauses in the other languages.
_EXTRA_PUNCTUATION = "\u00ab\u00bb\u201c\u201d\u201e\u00bf\u00a1"


def make_alphabet(extra_letters, vowels, single_letters, caseless=""):
    """An :class:`Alphabet` of ``A``-``Z`` plus ``extra_letters`` (UTF-8 text).

    Arguments
    ---------
    extra_letters : str
        The language's upper-case letters beyond ``A``-``Z`` (``caseless`` ones too).
    vowels : str
        Its upper-case vowels (a word needs one, unless it is a ``single_letters``).
    single_letters : str
        The one-letter words it has (upper case).
    caseless : str
        Letters without an upper case of their own (German ``ß``).

    Returns
    -------
    Alphabet

    Example
    -------
    >>> french = make_alphabet("ÀÂÇÉÈÊËÎÏÔÙÛÜŸŒÆ", "AEIOUYÀÂÉÈÊËÎÏÔÙÛÜŸŒÆ", "AÀY")
    >>> normalize_sentence("« Où est-il ? » demanda l'élève.", alphabet=french)
    "OÙ EST IL DEMANDA L'ÉLÈVE"
    >>> make_alphabet("ÄÖÜß", "AEIOUYÄÖÜ", "", caseless="ß").upper("straße")
    'STRAßE'
    """
    upper = "A-Z" + extra_letters
    lower = "a-z" + "".join(c.lower() for c in extra_letters)
    soft = rf""",.;:!?"()\-{_EXTRA_PUNCTUATION}"""
    return Alphabet(
        allowed=re.compile(rf"""^[{upper}{lower}' {soft}]+$"""),
        soft_punctuation=re.compile(f"[{soft}]"),
        sentence_end=re.compile(
            rf"""(?<=[.!?])["')\u00bb\u201d]*\s+(?=["'(\u00ab\u201c\u201e\u00bf\u00a1]*[{upper}])"""
        ),
        clause_end=re.compile(rf"""[,;:.!?"(){_EXTRA_PUNCTUATION}]|\s-\s"""),
        vowel=re.compile(f"[{vowels}]"),
        single_letters=frozenset(single_letters),
        unprintable=re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]"),
        encoding="utf-8",
        caseless=caseless,
    )


def split_sentences(text, alphabet=ENGLISH):
    """Splits running text into sentences at ``.``, ``!`` or ``?`` before a capital.

    Arguments
    ---------
    text : str
        One fortune, whitespace already collapsed.
    alphabet : Alphabet
        The language's (:data:`ENGLISH` by default).

    Returns
    -------
    list of str
        The sentences, stripped.

    Example
    -------
    >>> split_sentences("It works. Mostly.")
    ['It works.', 'Mostly.']
    """
    return [part.strip() for part in alphabet.sentence_end.split(text) if part.strip()]


def normalize_sentence(
    sentence, min_words=MIN_WORDS, max_words=MAX_WORDS, alphabet=ENGLISH
):
    """Normalises one sentence to ``A``-``Z``, apostrophe and spaces, or rejects it.

    Arguments
    ---------
    sentence : str
        A raw sentence.
    min_words, max_words : int
        The accepted length in words.
    alphabet : Alphabet
        The language's letters (:data:`ENGLISH` by default: ``A``-``Z``).

    Returns
    -------
    str or None
        The normalised sentence, or ``None`` when it does not normalise cleanly.

    Example
    -------
    >>> normalize_sentence("  'Well-known' words, said he.")
    'WELL KNOWN WORDS SAID HE'
    >>> normalize_sentence("See http://example.org today") is None
    True
    """
    if not alphabet.allowed.match(sentence) or "--" in sentence:
        return None
    words = []
    for token in alphabet.upper(alphabet.soft_punctuation.sub(" ", sentence)).split():
        token = token.strip("'")
        if not token:
            continue
        if "''" in token or len(token) > 20:
            return None
        if token in alphabet.single_letters:
            words.append(token)
            continue
        if len(token) == 1 or not alphabet.vowel.search(token):
            return None  # abbreviations and roman numerals: MR, XXXIII, HMM
        words.append(token)
    if not min_words <= len(words) <= max_words:
        return None
    return " ".join(words)


def split_clauses(sentence, alphabet=ENGLISH):
    """Cuts a clean sentence at ``, ; : . ! ? " ( )`` and normalises each clause.

    Arguments
    ---------
    sentence : str
        A raw sentence; one that does not normalise as a whole (digits, symbols,
        ``--``) gives no clauses.
    alphabet : Alphabet
        The language's (:data:`ENGLISH` by default).

    Returns
    -------
    list of str
        The normalised clauses of ``MIN_WORDS`` to ``MAX_WORDS`` words, in order.

    Example
    -------
    >>> split_clauses("Yes, we can (sometimes).")
    []
    >>> split_clauses("Well, I never said that I could do it.")
    ['I NEVER SAID THAT I COULD DO IT']
    """
    if not alphabet.allowed.match(sentence) or "--" in sentence:
        return []
    parts = alphabet.clause_end.split(sentence)
    clauses = (normalize_sentence(part, alphabet=alphabet) for part in parts)
    return [clause for clause in clauses if clause is not None]


def fortune_files(fortunes_dir=FORTUNES_DIR):
    """Lists the English fortune files present in ``fortunes_dir``, sorted by name.

    Only the regular files named in :data:`ENGLISH_FILES` count: no symlink, no
    folder, nothing other packages install next to them.

    Arguments
    ---------
    fortunes_dir : str or Path
        Where Debian installs the fortunes.

    Returns
    -------
    list of Path
        The English text files.
    """
    fortunes_dir = Path(fortunes_dir)
    if not fortunes_dir.is_dir():
        raise MissingInputError(
            f"no fortunes at {fortunes_dir}: install the Debian package fortunes "
            "(apt-get install fortunes)"
        )
    paths = [fortunes_dir / name for name in ENGLISH_FILES]
    files = [path for path in paths if path.is_file() and not path.is_symlink()]
    if not files:
        raise MissingInputError(
            f"no English fortune files in {fortunes_dir}: install the Debian package "
            "fortunes"
        )
    if len(files) < len(paths):
        missing = sorted(path.name for path in set(paths) - set(files))
        logger.warning(
            "%d English fortune files missing from %s (%s): install the Debian "
            "packages fortunes and fortunes-min", len(missing), fortunes_dir,
            ", ".join(missing),
        )
    return files


def fortunes_in(path, alphabet=ENGLISH):
    """Yields the fortunes of one file, one string each, attributions removed.

    Arguments
    ---------
    path : Path
        A fortune file (fortunes separated by ``%`` lines).
    alphabet : Alphabet
        Its language's (decoding; fortunes with unprintable characters are skipped).

    Yields
    ------
    str
        One fortune, whitespace collapsed.
    """
    text = alphabet.decode(Path(path).read_bytes())
    for fortune in text.split("\n%\n"):
        if alphabet.unprintable.search(fortune):
            continue  # overstrike, escape sequences or non-ASCII
        lines = [line for line in fortune.splitlines() if not _ATTRIBUTION.match(line)]
        yield " ".join(" ".join(lines).split())


def _raw_sentences(fortunes_dir):
    """Yields every raw sentence of the English fortune files, in file order."""
    for path in fortune_files(fortunes_dir):
        for fortune in fortunes_in(path):
            yield from split_sentences(fortune)


def distinct_clauses(paragraphs, alphabet=ENGLISH):
    """The distinct normalised clauses of running text, in first-seen order.

    Arguments
    ---------
    paragraphs : iterable of str
        Running text (fortunes, man page paragraphs), whitespace collapsed.
    alphabet : Alphabet
        The language's.

    Returns
    -------
    tuple of str
        :func:`split_clauses` of every sentence (:func:`split_sentences`).

    Example
    -------
    >>> distinct_clauses(["Go home now. Then sleep well, go home now!"])
    ('GO HOME NOW', 'THEN SLEEP WELL')
    """
    clauses = (
        clause
        for paragraph in paragraphs
        for sentence in split_sentences(paragraph, alphabet)
        for clause in split_clauses(sentence, alphabet)
    )
    return tuple(dict.fromkeys(clauses))


@functools.lru_cache(maxsize=4)
def load_sentences(fortunes_dir=str(FORTUNES_DIR)):
    """Returns the distinct normalised English sentences of the fortunes files.

    Arguments
    ---------
    fortunes_dir : str
        Where Debian installs the fortunes.

    Returns
    -------
    tuple of str
        The sentences in first-seen order (deterministic for a given installation).
    """
    normalised = (normalize_sentence(s) for s in _raw_sentences(fortunes_dir))
    return tuple(dict.fromkeys(s for s in normalised if s is not None))


@functools.lru_cache(maxsize=4)
def load_clauses(fortunes_dir=str(FORTUNES_DIR)):
    """Returns the distinct normalised clauses of the English fortunes files.

    Arguments
    ---------
    fortunes_dir : str
        Where Debian installs the fortunes.

    Returns
    -------
    tuple of str
        The clauses (see :func:`split_clauses`) in first-seen order.
    """
    paragraphs = (
        fortune for path in fortune_files(fortunes_dir) for fortune in fortunes_in(path)
    )
    return distinct_clauses(paragraphs)


def _document_frequencies(sentences):
    """How many of ``sentences`` hold each word."""
    return collections.Counter(w for s in sentences for w in set(s.split()))


def closed_vocabulary(
    sentences, size=CLOSED_VOCABULARY_SIZE, min_sentences=MIN_SENTENCES_PER_WORD
):
    """Keeps the sentences written with a closed vocabulary of frequent words.

    The vocabulary starts as the ``size`` most frequent words (ties broken
    alphabetically); sentences with any other word are dropped, then every word in
    fewer than ``min_sentences`` remaining sentences is removed with its sentences,
    until none is left to remove.

    Arguments
    ---------
    sentences : sequence of str
        Normalised sentences (words separated by single spaces).
    size : int
        The number of most frequent words to start from.
    min_sentences : int
        How many kept sentences every kept word must occur in.

    Returns
    -------
    vocabulary : frozenset of str
        The kept words (every word of the kept sentences).
    kept : tuple of str
        The kept sentences, in their original order.

    Example
    -------
    >>> lines = ["A B C", "A B D", "A C D", "B C D", "A B E"]
    >>> vocabulary, kept = closed_vocabulary(lines, size=4, min_sentences=2)
    >>> sorted(vocabulary), kept
    (['A', 'B', 'C', 'D'], ('A B C', 'A B D', 'A C D', 'B C D'))
    """
    counts = collections.Counter(w for s in sentences for w in s.split())
    ranked = sorted(counts, key=lambda word: (-counts[word], word))
    vocabulary = set(ranked[:size])
    kept = [s for s in sentences if set(s.split()) <= vocabulary]
    while True:
        frequencies = _document_frequencies(kept)
        rare = {w for w in vocabulary if frequencies[w] < min_sentences}
        if not rare:
            return frozenset(vocabulary), tuple(kept)
        vocabulary -= rare
        kept = [s for s in kept if not rare.intersection(s.split())]


@functools.lru_cache(maxsize=4)
def load_closed_sentences(fortunes_dir=str(FORTUNES_DIR)):
    """Returns the clauses of the fortunes written with the closed vocabulary.

    Arguments
    ---------
    fortunes_dir : str
        Where Debian installs the fortunes.

    Returns
    -------
    tuple of str
        :func:`closed_vocabulary` of :func:`load_clauses`, in first-seen order.
    """
    return closed_vocabulary(load_clauses(fortunes_dir))[1]


def load_text(domain="closed", fortunes_dir=str(FORTUNES_DIR)):
    """Returns the sentence list of one text domain.

    Arguments
    ---------
    domain : str
        ``closed`` (:func:`load_closed_sentences`) or ``open``
        (:func:`load_sentences`).
    fortunes_dir : str
        Where Debian installs the fortunes.

    Returns
    -------
    tuple of str
        The distinct sentences.
    """
    if domain == "closed":
        return load_closed_sentences(str(fortunes_dir))
    if domain == "open":
        return load_sentences(str(fortunes_dir))
    valid = ", ".join(TEXT_DOMAINS)
    raise UserInputError(f"unknown text domain {domain!r}; valid: {valid}")


def sentences_sha256(sentences):
    """The SHA-256 of a sentence list (one sentence a line, in order), in hex.

    Example
    -------
    >>> sentences_sha256(["A B C"]) == sentences_sha256(("A B C",))
    True
    >>> sentences_sha256(["A B C"]) == sentences_sha256(["A B D"])
    False
    """
    text = "".join(f"{sentence}\n" for sentence in sentences)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def coverage_order(sentences):
    """Orders sentences greedily so that a short prefix holds every word.

    Each next sentence is the one whose still-uncovered words weigh most, a word
    weighing its number of occurrences in ``sentences`` (so frequent words come
    first); ties go to the earlier sentence. Once every word is covered, the
    remaining sentences are not listed.

    Arguments
    ---------
    sentences : sequence of str
        Normalised sentences.

    Returns
    -------
    list of int
        Indices into ``sentences``: the greedy cover, in order.

    Example
    -------
    >>> coverage_order(["A B", "C", "A B C D", "D E", "A"])
    [2, 3]
    """
    weights = collections.Counter(w for s in sentences for w in s.split())
    words = [set(s.split()) for s in sentences]
    heap = [(-sum(weights[w] for w in ws), i) for i, ws in enumerate(words)]
    heapq.heapify(heap)
    covered, order = set(), []
    while heap:  # lazy greedy: a gain only ever shrinks
        _, index = heapq.heappop(heap)
        gain = sum(weights[w] for w in words[index] - covered)
        if gain == 0:
            continue
        if heap and (-gain, index) > heap[0]:
            heapq.heappush(heap, (-gain, index))
            continue
        order.append(index)
        covered |= words[index]
    return order
