"""The eSpeak NG voices (dialects) and voice variants (speaker timbres) installed here.

A *dialect* of the synthetic corpus is an eSpeak NG voice name such as ``en-us`` or
``en-gb-scotland`` (``espeak-ng --voices``); a *variant* such as ``m3``, ``f2`` or
``klatt2`` (``espeak-ng --voices=variant``) changes the timbre and is appended as
``<voice>+<variant>``. :func:`synthesize` runs eSpeak NG once and returns the samples.
MBROLA voices (file ``mb/...``) are never listed: they need the separate ``mbrola``
program and its voice packages.

Example
-------
>>> _parse_voice_table(
...     "Pty Language Age/Gender VoiceName File Other\\n"
...     " 5  en-029  --/M  English_(Caribbean) gmw/en-029  (en 10)\\n"
... )
['en-029']
>>> _parse_voice_table(
...     "Pty Language Age/Gender VoiceName File Other\\n"
...     " 7  fr-fr  --/M  french-mbrola-1  mb/mb-fr1  (fr 7)\\n"
... )
[]
>>> _parse_voice_table(
...     "Pty Language Age/Gender VoiceName File Other\\n"
...     " 5  variant  --/M  klatt2  !v/klatt2\\n", variants=True
... )
['klatt2']
"""

import functools
import shutil
import subprocess

import numpy as np

from speechbrain_sparse.errors import MissingInputError, UserInputError

ESPEAK = "espeak-ng"


def _espeak_binary():
    """Returns the eSpeak NG executable, or raises a clear error when it is missing."""
    binary = shutil.which(ESPEAK)
    if binary is None:
        raise MissingInputError(
            "espeak-ng not found: install the Debian package espeak-ng "
            "(apt-get install espeak-ng)"
        )
    return binary


def _parse_voice_table(table, variants=False):
    """Parses the output of ``espeak-ng --voices``: voice names, or variant names."""
    names = []
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 5:
            continue
        if variants:
            if "!v/" in line:
                name = line.split("!v/", 1)[1].split("(")[0].strip()
                if name and " " not in name:
                    names.append(name)
        elif not fields[4].startswith("mb/"):
            names.append(fields[1])
    return sorted(set(names))


@functools.lru_cache(maxsize=1)
def espeak_version():
    """Returns the ``espeak-ng --version`` line (recorded in ``corpus.json``)."""
    result = subprocess.run(
        [_espeak_binary(), "--version"], capture_output=True, text=True, check=True
    )
    return result.stdout.split("Data at")[0].strip()


@functools.lru_cache(maxsize=1)
def list_voices():
    """Lists the installed eSpeak NG voice names (the possible dialects).

    Returns
    -------
    list of str
        Sorted voice names such as ``en-us``.
    """
    result = subprocess.run(
        [_espeak_binary(), "--voices"], capture_output=True, text=True, check=True
    )
    return _parse_voice_table(result.stdout)


@functools.lru_cache(maxsize=1)
def list_variants():
    """Lists the installed eSpeak NG voice variants (speaker timbres).

    Returns
    -------
    list of str
        Sorted variant names such as ``f2``, ``klatt`` or ``m3`` (names with spaces,
        which cannot be passed as ``+variant``, are left out).
    """
    result = subprocess.run(
        [_espeak_binary(), "--voices=variant"],
        capture_output=True,
        text=True,
        check=True,
    )
    return _parse_voice_table(result.stdout, variants=True)


def validate_voice(voice):
    """Returns ``voice`` when it is an installed eSpeak NG voice, else raises.

    Arguments
    ---------
    voice : str
        A dialect name such as ``en-gb-scotland``.

    Returns
    -------
    str
        The same name.

    Raises
    ------
    ValueError
        When the voice is unknown; the message lists the installed voices.
    """
    voices = list_voices()
    if voice not in voices:
        english = [name for name in voices if name.startswith("en")]
        raise UserInputError(
            f"unknown eSpeak NG voice {voice!r}; English voices: "
            f"{', '.join(english)}; all installed voices: {', '.join(voices)}"
        )
    return voice


def synthesize(text, voice, variant, pitch, rate, word_gap=0):
    """Speaks ``text`` with eSpeak NG and returns its samples.

    Arguments
    ---------
    text : str
        What to say (plain text; lower case reads best).
    voice : str
        The eSpeak NG voice (dialect), e.g. ``en-us``.
    variant : str
        The voice variant (timbre), e.g. ``m3``.
    pitch : int
        Base pitch, 0..99 (``-p``).
    rate : int
        Speaking rate in words per minute (``-s``).
    word_gap : int
        Extra pause between words in units of 10 ms (``-g``).

    Returns
    -------
    samples : numpy.ndarray
        int16 mono samples.
    sample_rate : int
        The sample rate eSpeak NG used (22050 Hz).
    """
    command = [_espeak_binary(), "-v", f"{voice}+{variant}", "-p", str(pitch)]
    command += ["-s", str(rate), "-g", str(word_gap), "--stdout", "--", text]
    # Only stdout is piped (its errors reach the terminal): a single pipe reads fast.
    wav = subprocess.run(command, stdout=subprocess.PIPE, check=True).stdout
    return _parse_streamed_wav(wav)


def _parse_streamed_wav(data):
    """Reads the RIFF header eSpeak NG streams (its sizes are placeholders)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise RuntimeError("espeak-ng did not return a wav stream")
    position, sample_rate = 12, None
    while position + 8 <= len(data):
        chunk, size = data[position : position + 4], data[position + 4 : position + 8]
        size = int.from_bytes(size, "little")
        if chunk == b"fmt ":
            sample_rate = int.from_bytes(data[position + 12 : position + 16], "little")
        if chunk == b"data":
            body = data[position + 8 :]
            body = body[: len(body) // 2 * 2]
            return np.frombuffer(body, dtype="<i2").copy(), sample_rate
        position += 8 + size
    raise RuntimeError("espeak-ng wav stream has no data chunk")
