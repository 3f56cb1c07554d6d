"""Real English sentences for the synthetic corpus, from the Debian fortunes files.

The extraction is deterministic: the fortune files are read in sorted order, every
fortune is split into sentences, and a sentence is kept only when it normalises cleanly
to the recipe's character set (upper-case ``A``-``Z``, the apostrophe and single
spaces) and has between ``MIN_WORDS`` and ``MAX_WORDS`` words. Sentences with digits,
addresses, code-like symbols or attributions (``-- Author``) are dropped, and the
result is de-duplicated, keeping the first occurrence.

Example
-------
>>> normalize_sentence("Don't panic, it's only a test!")
"DON'T PANIC IT'S ONLY A TEST"
>>> normalize_sentence("Call 555-1234 now.") is None
True
>>> split_sentences("Go home. Then sleep! Why?")
['Go home.', 'Then sleep!', 'Why?']
"""

import functools
import re
from pathlib import Path

FORTUNES_DIR = Path("/usr/share/games/fortunes")
MIN_WORDS = 3
MAX_WORDS = 16
# Files and folders never read: pictures rather than prose, other languages, and the
# offensive collection (Debian's ``fortunes-off`` installs into an ``off`` folder).
EXCLUDED_NAMES = {"ascii-art", "translate-me", "off"}
EXCLUDED_SUFFIXES = {".dat", ".u8", ".gz"}

# Punctuation that is simply removed (replaced by a space) when normalising.
_SOFT_PUNCTUATION = re.compile(r"""[,.;:!?"()\-]""")
# Anything outside letters, apostrophes, spaces and soft punctuation rejects a sentence.
_ALLOWED = re.compile(r"""^[A-Za-z' ,.;:!?"()\-]+$""")
_SENTENCE_END = re.compile(r"""(?<=[.!?])["')]*\s+(?=["'(]*[A-Z])""")
_ATTRIBUTION = re.compile(r"^\s*(--|~~)")
_SINGLE_LETTERS_OK = {"A", "I", "O"}
_VOWEL = re.compile("[AEIOUY]")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e\n\t]")


def split_sentences(text):
    """Splits running text into sentences at ``.``, ``!`` or ``?`` before a capital.

    Arguments
    ---------
    text : str
        One fortune, whitespace already collapsed.

    Returns
    -------
    list of str
        The sentences, stripped.

    Example
    -------
    >>> split_sentences("It works. Mostly.")
    ['It works.', 'Mostly.']
    """
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]


def normalize_sentence(sentence, min_words=MIN_WORDS, max_words=MAX_WORDS):
    """Normalises one sentence to ``A``-``Z``, apostrophe and spaces, or rejects it.

    Arguments
    ---------
    sentence : str
        A raw sentence.
    min_words, max_words : int
        The accepted length in words.

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
    if not _ALLOWED.match(sentence) or "--" in sentence:
        return None
    words = []
    for token in _SOFT_PUNCTUATION.sub(" ", sentence).upper().split():
        token = token.strip("'")
        if not token:
            continue
        if "''" in token or len(token) > 20:
            return None
        if len(token) == 1 and token not in _SINGLE_LETTERS_OK:
            return None
        if not _VOWEL.search(token):
            return None  # abbreviations and roman numerals: MR, XXXIII, HMM
        words.append(token)
    if not min_words <= len(words) <= max_words:
        return None
    return " ".join(words)


def fortune_files(fortunes_dir=FORTUNES_DIR):
    """Lists the fortune text files under ``fortunes_dir`` in sorted order.

    Arguments
    ---------
    fortunes_dir : str or Path
        Where Debian installs the fortunes.

    Returns
    -------
    list of Path
        The text files, without index (``.dat``) or UTF-8 (``.u8``) copies.
    """
    fortunes_dir = Path(fortunes_dir)
    if not fortunes_dir.is_dir():
        raise FileNotFoundError(
            f"no fortunes at {fortunes_dir}: install the Debian package fortunes "
            "(apt-get install fortunes)"
        )
    files = []
    for path in sorted(fortunes_dir.rglob("*")):
        parts = set(path.relative_to(fortunes_dir).parts)
        if not path.is_file() or parts & EXCLUDED_NAMES:
            continue
        if path.suffix in EXCLUDED_SUFFIXES:
            continue
        files.append(path)
    if not files:
        raise FileNotFoundError(
            f"no fortune files in {fortunes_dir}: install the Debian package fortunes"
        )
    return files


def _fortunes_in(path):
    """Yields the fortunes of one file, one string each, attributions removed."""
    text = path.read_bytes().decode("latin-1")
    for fortune in text.split("\n%\n"):
        if _UNPRINTABLE.search(fortune):
            continue  # overstrike, escape sequences or non-ASCII
        lines = [line for line in fortune.splitlines() if not _ATTRIBUTION.match(line)]
        yield " ".join(" ".join(lines).split())


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
    seen = {}
    for path in fortune_files(fortunes_dir):
        for fortune in _fortunes_in(path):
            for sentence in split_sentences(fortune):
                normalised = normalize_sentence(sentence)
                if normalised is not None:
                    seen.setdefault(normalised, None)
    return tuple(seen)
