"""How each synthetic dialect sounds: one small style table per dialect, and speakers.

The eSpeak NG voice (``en-us``, ``en-gb-scotland``, ...) is the main difference between
dialects; on top of it every dialect has its own *style*: the pool of voice variants
its speakers draw from and its ranges of speaking rate, pitch and word gap. Tune how
far apart the dialects are by editing :data:`DIALECT_STYLES`; a voice without an entry
uses :data:`DEFAULT_STYLE`.

A speaker is a fixed combination of variant, pitch, rate, word gap and a mild channel
tilt, drawn with a random generator seeded by ``(seed, dialect, speaker index)`` only.

Example
-------
>>> speakers = make_speakers("en-us", count=3, seed=0, installed_variants=["m1", "f2"])
>>> [s.spk_id for s in speakers]
['en-us_s000', 'en-us_s001', 'en-us_s002']
>>> speakers == make_speakers("en-us", count=3, seed=0, installed_variants=["m1", "f2"])
True
>>> sorted({s.variant for s in speakers})
['f2', 'm1']
"""

import zlib
from dataclasses import dataclass

import numpy as np

from speechbrain_sparse.errors import UserInputError


@dataclass(frozen=True)
class DialectStyle:
    """The speaker population of one dialect.

    Arguments
    ---------
    variants : tuple of str
        eSpeak NG voice variants its speakers use (those not installed are skipped).
    rate : tuple of int
        Speaking-rate range in words per minute (``-s``), inclusive.
    pitch : tuple of int
        Base-pitch range 0..99 (``-p``), inclusive.
    word_gap : tuple of int
        Extra pause between words in units of 10 ms (``-g``), inclusive.
    """

    variants: tuple
    rate: tuple = (145, 185)
    pitch: tuple = (35, 65)
    word_gap: tuple = (0, 2)


_COMMON_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "f1", "f2", "f3", "f4", "klatt")

DEFAULT_STYLE = DialectStyle(variants=_COMMON_VARIANTS)

DIALECT_STYLES = {
    # The source dialect: many timbres, a neutral pace.
    "en-us": DialectStyle(
        variants=_COMMON_VARIANTS + ("klatt2", "adam", "linda", "paul", "steph"),
        rate=(150, 190),
        pitch=(35, 65),
        word_gap=(0, 1),
    ),
    # Slower and lower.
    "en-gb-scotland": DialectStyle(
        variants=("m3", "m6", "m7", "f2", "f5", "klatt3", "robert", "david", "max"),
        rate=(130, 165),
        pitch=(25, 55),
        word_gap=(1, 3),
    ),
    # Faster and higher.
    "en-029": DialectStyle(
        variants=("m2", "m8", "f3", "f4", "klatt4", "zac", "edward", "steph2", "john"),
        rate=(165, 205),
        pitch=(45, 80),
        word_gap=(0, 1),
    ),
}


def style_for(dialect):
    """Returns the :class:`DialectStyle` of ``dialect`` (the default when untabled).

    Example
    -------
    >>> style_for("en-gb-scotland").rate
    (130, 165)
    >>> style_for("fr-fr") is DEFAULT_STYLE
    True
    """
    return DIALECT_STYLES.get(dialect, DEFAULT_STYLE)


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: a fixed eSpeak NG voice setting plus a channel tilt.

    Arguments
    ---------
    spk_id : str
        ``<dialect>_s<NNN>``; the dialect tag makes it unique in the corpus.
    dialect : str
        The eSpeak NG voice.
    variant : str
        The eSpeak NG voice variant.
    pitch, rate, word_gap : int
        The ``-p``, ``-s`` and ``-g`` settings.
    tilt : float
        First-order channel filter coefficient ``y[n] = x[n] + tilt * x[n-1]``.
    """

    spk_id: str
    dialect: str
    variant: str
    pitch: int
    rate: int
    word_gap: int
    tilt: float


def stable_id(text):
    """Returns a stable 32-bit integer for ``text`` (not Python's salted ``hash``).

    Example
    -------
    >>> stable_id("en-us") == stable_id("en-us")
    True
    """
    return zlib.crc32(text.encode("utf-8"))


def make_speakers(dialect, count, seed, installed_variants):
    """Draws ``count`` speakers of ``dialect``; the same arguments give the same ones.

    Variants are dealt from a seeded shuffle of the dialect's pool in turn, so speakers
    cover the pool evenly before any variant repeats.

    Arguments
    ---------
    dialect : str
        The eSpeak NG voice.
    count : int
        How many speakers.
    seed : int
        The corpus seed.
    installed_variants : list of str
        The variants eSpeak NG has (see ``voices.list_variants``).

    Returns
    -------
    list of Speaker
    """
    style = style_for(dialect)
    installed = set(installed_variants)
    pool = [variant for variant in style.variants if variant in installed]
    if not pool:
        raise UserInputError(
            f"none of the voice variants of {dialect!r} ({', '.join(style.variants)}) "
            "is installed"
        )
    order = np.random.default_rng([seed, stable_id(dialect), 0]).permutation(len(pool))
    speakers = []
    for index in range(count):
        rng = np.random.default_rng([seed, stable_id(dialect), 1, index])
        speakers.append(
            Speaker(
                spk_id=f"{dialect}_s{index:03d}",
                dialect=dialect,
                variant=pool[int(order[index % len(pool)])],
                pitch=int(rng.integers(style.pitch[0], style.pitch[1] + 1)),
                rate=int(rng.integers(style.rate[0], style.rate[1] + 1)),
                word_gap=int(rng.integers(style.word_gap[0], style.word_gap[1] + 1)),
                tilt=round(float(rng.uniform(-0.6, 0.3)), 3),
            )
        )
    return speakers
