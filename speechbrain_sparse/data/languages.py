"""The languages of the multilingual synthetic corpus: voices, texts and alphabets.

Each language (:data:`LANGUAGES`) has its native eSpeak NG voices (never an MBROLA
``mb/`` one), the Debian package that holds its text, and the
:class:`~speechbrain_sparse.data.sentences.Alphabet` its sentences are normalised to.
The text is read the way the English corpus reads the fortunes
(:mod:`speechbrain_sparse.data.sentences`):
paragraphs are cut into sentences, sentences into clauses of 3 to 16 words written
only with the language's letters, and :func:`~speechbrain_sparse.data.sentences
.closed_vocabulary` keeps the clauses written with its most frequent words.
English is exactly the English corpus's ``closed`` pool.

========  ==============  =========================================  ===========
language  voices          text (Debian package)                      licence
========  ==============  =========================================  ===========
en        en-us, ...      fortunes, fortunes-min (English files)     BSD
de        de              fortunes-de (``de/``)                      GPL-2+
es        es, es-419      fortunes-es (``es/*.fortunes``)            GPL-2+
it        it              fortunes-it (``it/``)                      GPL
pl        pl              fortunes-pl (``pl/*.u8``)                  GPL-2+
pt        pt, pt-br       fortunes-br (``brasil``)                   see copyright
fr        fr-fr, ...      manpages-fr (``/usr/share/man/fr``)        GPL-3+
nl        nl              manpages-nl (``/usr/share/man/nl``)        GPL-3+
========  ==============  =========================================  ===========

Debian has no French or Dutch fortunes, so those two read the translated manual
pages (a technical register). A missing package or voice is a
:class:`~speechbrain_sparse.errors.MissingInputError` naming the apt package.

Example
-------
>>> LANGUAGES["fr"].package, LANGUAGES["fr"].voice
('manpages-fr', 'fr-fr')
>>> roff_paragraphs([".SH NOM", "Afficher le \\\\fINOM\\\\fP sans", "chemin.",
...                  ".PP", "Voir", ".B ls", "aussi."])
['NOM', 'Afficher le NOM sans chemin.', 'Voir ls aussi.']
"""

import functools
import gzip
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from speechbrain_sparse.data import sentences, voices
from speechbrain_sparse.data.sentences import make_alphabet
from speechbrain_sparse.errors import MissingInputError, UserInputError

FORTUNES = sentences.FORTUNES_DIR
MAN = Path("/usr/share/man")


@dataclass(frozen=True)
class Language:
    """One language of the corpus.

    Arguments
    ---------
    code : str
        ISO 639-1 (the corpus folder and the ``language`` column).
    name : str
        In English.
    voices : tuple of str
        Its native eSpeak NG voices; the first is the default.
    package : str
        The Debian package holding its text.
    source : str
        ``fortunes`` (fortune files), ``manpages`` (roff manual pages) or
        ``english`` (the English corpus's own pool).
    path : str
        Where that package puts the text: a folder, or one file.
    pattern : str
        The glob of the text files inside ``path`` (a folder).
    licence : str
        Of the text.
    alphabet : sentences.Alphabet or None
        Its letters (``None`` for English: :data:`sentences.ENGLISH`).
    closed : tuple of int
        ``(size, min_sentences)`` of its :func:`~speechbrain_sparse.data.sentences
        .closed_vocabulary`: English's ``(800, 5)`` where the text is as large;
        the smaller texts need a larger start and fewer sentences per word, or the
        pruning empties the pool.
    """

    code: str
    name: str
    voices: tuple
    package: str
    source: str
    path: str
    pattern: str = "*"
    licence: str = ""
    alphabet: sentences.Alphabet = None
    closed: tuple = (sentences.CLOSED_VOCABULARY_SIZE, sentences.MIN_SENTENCES_PER_WORD)

    @property
    def voice(self):
        """The default eSpeak NG voice."""
        return self.voices[0]


LANGUAGES = {
    language.code: language
    for language in (
        Language(
            "en", "English", ("en-us", "en-gb", "en-gb-scotland", "en-029"),
            "fortunes", "english", str(FORTUNES), licence="BSD (fortune data)",
        ),
        Language(
            "de", "German", ("de",), "fortunes-de", "fortunes", str(FORTUNES / "de"),
            licence="GPL-2+",
            alphabet=make_alphabet("ÄÖÜß", "AEIOUYÄÖÜ", "", caseless="ß"),
        ),
        Language(
            "es", "Spanish", ("es", "es-419"), "fortunes-es", "fortunes",
            str(FORTUNES / "es"), "*.fortunes", "GPL-2+",
            make_alphabet("ÁÉÍÓÚÜÑ", "AEIOUYÁÉÍÓÚÜ", "AEOUY"), (1200, 4),
        ),
        Language(
            "it", "Italian", ("it",), "fortunes-it", "fortunes", str(FORTUNES / "it"),
            licence="GPL",
            alphabet=make_alphabet("ÀÈÉÌÍÒÓÙÚ", "AEIOUÀÈÉÌÍÒÓÙÚ", "AEIOÈ"),
            closed=(1200, 4),
        ),
        Language(
            "pl", "Polish", ("pl",), "fortunes-pl", "fortunes", str(FORTUNES / "pl"),
            licence="GPL-2+",
            alphabet=make_alphabet("ĄĆĘŁŃÓŚŹŻ", "AEIOUYĄĘÓ", "AIOUWZ"),
            closed=(1200, 3),
        ),
        Language(
            "pt", "Portuguese", ("pt", "pt-br"), "fortunes-br", "fortunes",
            str(FORTUNES / "brasil"), licence="see its copyright file",
            alphabet=make_alphabet("ÁÂÃÀÇÉÊÍÓÔÕÚÜ", "AEIOUÁÂÃÀÉÊÍÓÔÕÚÜ", "AEOÀÉÈ"),
            closed=(1200, 3),
        ),
        Language(
            "fr", "French", ("fr-fr", "fr-be", "fr-ch"), "manpages-fr", "manpages",
            str(MAN / "fr"), "man*/*.gz", "GPL-3+",
            make_alphabet("ÀÂÆÇÉÈÊËÎÏÔŒÙÛÜŸ", "AEIOUYÀÂÆÉÈÊËÎÏÔŒÙÛÜŸ", "AÀY"),
            (1200, 5),
        ),
        Language(
            "nl", "Dutch", ("nl",), "manpages-nl", "manpages", str(MAN / "nl"),
            "man*/*.gz", "GPL-3+", make_alphabet("ÉËÏÖÜÈ", "AEIOUYÉËÏÖÜÈ", "U"),
            (1200, 3),
        ),
    )
}


def get_language(code):
    """Returns the :class:`Language` of ``code``, or raises naming the valid ones.

    Example
    -------
    >>> get_language("nl").name
    'Dutch'
    >>> get_language("xx")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    speechbrain_sparse.errors.UserInputError: unknown language 'xx'; valid: en, de, ...
    """
    if code not in LANGUAGES:
        raise UserInputError(
            f"unknown language {code!r}; valid: {', '.join(LANGUAGES)}"
        )
    return LANGUAGES[code]


def check_voice(code, voice=None):
    """Returns the voice ``code`` is spoken with, once checked to be installed.

    Arguments
    ---------
    code : str
        A key of :data:`LANGUAGES`.
    voice : str, optional
        One of its native voices (default: its first).

    Returns
    -------
    str
        The eSpeak NG voice.
    """
    language = get_language(code)
    voice = voice or language.voice
    if voice not in language.voices:
        raise UserInputError(
            f"{voice!r} is not a native {language.name} voice; valid: "
            f"{', '.join(language.voices)}"
        )
    if voice not in voices.list_voices():
        raise MissingInputError(
            f"the eSpeak NG voice {voice!r} ({language.name}) is not installed: "
            "install the Debian package espeak-ng-data (apt-get install espeak-ng-data)"
        )
    return voice


_NOT_TEXT = {".dat", ".u8"}  # strfile indexes, and empty links to the text
_FONT = re.compile(r"\\f(\[[^\]]*\]|\(..|.)")
_INVISIBLE = re.compile(r"\\[,/&|^%]")
_SPECIAL = {r"\-": "-", r"\ ": " ", r"\~": " ", r"\(aq": "'", r"\(cq": "'",
            r"\(Fo": "«", r"\(Fc": "»", r"\(em": " - ", r"\(en": " - "}  # fmt: skip
_INLINE_FONTS = {".B", ".I", ".SM", ".SB"}
_ALTERNATING = {".BR", ".RB", ".IR", ".RI", ".BI", ".IB"}


def _roff_text(line):
    """Removes font changes and invisible escapes; maps the common special chars."""
    line = _INVISIBLE.sub("", _FONT.sub("", line))
    for escape, text in _SPECIAL.items():
        line = line.replace(escape, text)
    return line  # any other escape keeps a backslash, which rejects its sentence


def roff_paragraphs(lines):
    """The paragraphs of a roff manual page's source lines, escapes removed.

    Text lines and the arguments of the font macros (``.B``, ``.BR``, ...) are
    joined; every other request (``.PP``, ``.TP``, ``.SH``, ...) ends a paragraph,
    and its own text (a section title) is a paragraph of its own.

    Arguments
    ---------
    lines : iterable of str
        The page's source lines.

    Returns
    -------
    list of str
        The paragraphs, whitespace collapsed.
    """
    paragraphs, current = [], []

    def flush():
        text = " ".join(" ".join(current).split())
        if text:
            paragraphs.append(text)
        current.clear()

    for line in lines:
        if line.startswith((".\\\"", "'\\\"", "\\\"")):
            continue
        if not line.startswith((".", "'")):
            current.append(_roff_text(line))
            continue
        request, _, rest = line.partition(" ")
        try:
            words = shlex.split(rest)
        except ValueError:
            words = rest.split()
        if request in _INLINE_FONTS:
            current.append(_roff_text(" ".join(words)))
        elif request in _ALTERNATING:
            current.append(_roff_text("".join(words)))
        else:
            flush()
            current.append(_roff_text(" ".join(words)))
            flush()
    flush()
    return paragraphs


def text_files(code):
    """The text files of a language, sorted; raises naming the package when absent.

    Only regular files count (no symlink, no sub-folder of ``off`` fortunes).

    Arguments
    ---------
    code : str
        A key of :data:`LANGUAGES` other than ``en``.

    Returns
    -------
    list of Path
    """
    language = get_language(code)
    path = Path(language.path)
    if path.is_file():
        files = [path]
    else:
        files = sorted(
            p for p in path.glob(language.pattern)
            if p.is_file() and not p.is_symlink() and p.suffix not in _NOT_TEXT
        ) if path.is_dir() else []  # fmt: skip
    if not files:
        raise MissingInputError(
            f"no {language.name} text at {path}: install the Debian package "
            f"{language.package} (apt-get install {language.package})"
        )
    return files


def _paragraphs(code):
    """Yields the running text of a language's files, in file order."""
    language = get_language(code)
    for path in text_files(code):
        if language.source == "fortunes":
            yield from sentences.fortunes_in(path, language.alphabet)
        else:
            data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else (
                path.read_bytes())  # fmt: skip
            yield from roff_paragraphs(language.alphabet.decode(data).splitlines())


@functools.lru_cache(maxsize=16)
def load_language_clauses(code):
    """The distinct normalised clauses of a language's text (the open pool).

    Arguments
    ---------
    code : str
        A key of :data:`LANGUAGES`.

    Returns
    -------
    tuple of str
        In first-seen order.
    """
    if get_language(code).source == "english":
        return sentences.load_clauses()
    return sentences.distinct_clauses(_paragraphs(code), get_language(code).alphabet)


@functools.lru_cache(maxsize=16)
def load_language_sentences(code):
    """The closed-vocabulary clauses of a language, as the English corpus's.

    Arguments
    ---------
    code : str
        A key of :data:`LANGUAGES`; ``en`` gives ``sentences.load_text("closed")``.

    Returns
    -------
    tuple of str
        :func:`~speechbrain_sparse.data.sentences.closed_vocabulary` of
        :func:`load_language_clauses`, in first-seen order.
    """
    language = get_language(code)
    if language.source == "english":
        return sentences.load_text("closed")
    size, min_sentences = language.closed
    clauses = load_language_clauses(code)
    return sentences.closed_vocabulary(clauses, size, min_sentences)[1]
