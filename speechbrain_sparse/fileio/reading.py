"""Reading manifests, audio and JSON, with errors that name the file.

A manifest is a SpeechBrain CSV, one utterance per row (``ID``, ``duration``,
``wav``, ...). Whatever cannot be used raises :class:`ManifestError` (a
``ValueError``) naming the file, and the row (1-based, header excluded) and
column when there is one, never a stack trace from deep inside a reader.

Example
-------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "m.csv").write_text("ID,duration,wav\\nu1,1.5,/a/u1.wav\\n")
>>> read_manifest(folder / "m.csv")
[{'ID': 'u1', 'duration': 1.5, 'wav': '/a/u1.wav'}]
>>> _ = (folder / "bad.csv").write_text("ID,wav\\nu1,x.wav\\n")
>>> read_manifest(folder / "bad.csv")
Traceback (most recent call last):
...
speechbrain_sparse.fileio.reading.ManifestError: ...bad.csv: missing column(s) ...
"""

import csv
import json
from pathlib import Path

import soundfile
import speechbrain as sb

from speechbrain_sparse.errors import UserInputError


class ManifestError(UserInputError):
    """A manifest (CSV) or audio file that cannot be used; the message names it."""


def read_manifest(csv_path, required=("ID", "duration", "wav")):
    """Returns the rows of a manifest as dicts, ``duration`` as a float.

    Arguments
    ---------
    csv_path : str or os.PathLike
        The manifest.
    required : sequence of str
        Columns that must be present.

    Returns
    -------
    list of dict
        One dict per row, in file order.

    Raises
    ------
    ManifestError
        If the file is missing, lacks a required column or has a ``duration``
        that is not a number (naming the row).
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise ManifestError(f"{csv_path}: manifest not found")
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        found = reader.fieldnames or []
        missing = [column for column in required if column not in found]
        if missing:
            raise ManifestError(
                f"{csv_path}: missing column(s) {', '.join(missing)} "
                f"(found: {', '.join(found)})"
            )
        rows = list(reader)
    if "duration" in found:
        for number, row in enumerate(rows, start=1):
            try:
                row["duration"] = float(row["duration"])
            except (TypeError, ValueError):
                raise ManifestError(
                    f"{row_place(csv_path, number, row)}: column 'duration' is not "
                    f"a number: {row['duration']!r}"
                ) from None
    return rows


def row_place(csv_path, number, row):
    """Names a manifest row in messages: ``<file>, row <n> (ID '<id>')``.

    Example
    -------
    >>> row_place("a.csv", 2, {"ID": "u2"})
    "a.csv, row 2 (ID 'u2')"
    """
    return f"{csv_path}, row {number} (ID {row.get('ID')!r})"


def check_audio_file(wav_path, where=None):
    """Raises ManifestError if ``wav_path`` is missing or its header unreadable.

    Arguments
    ---------
    wav_path : str or os.PathLike
        The audio file.
    where : str, optional
        Prefix of the message (e.g. :func:`row_place`).

    Returns
    -------
    soundfile._SoundFileInfo
        The file's header (``samplerate``, ``frames``, ...).
    """
    prefix = f"{where}: " if where else ""
    if not Path(wav_path).is_file():
        raise ManifestError(f"{prefix}audio file not found: {wav_path}")
    try:
        return soundfile.info(str(wav_path))
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise ManifestError(
            f"{prefix}cannot read audio {wav_path}: {error}"
        ) from None


def read_audio_checked(wav_path):
    """Reads a wav with SpeechBrain, turning a failure into a message naming it.

    Arguments
    ---------
    wav_path : str
        Path of the audio file.

    Returns
    -------
    torch.Tensor
        The signal, shape ``[samples]``.

    Raises
    ------
    ManifestError
        ``cannot read audio <path>: <reason>``.
    """
    try:
        return sb.dataio.dataio.read_audio(wav_path)
    except Exception as error:  # torchaudio/soundfile raise many types
        raise ManifestError(f"cannot read audio {wav_path}: {error}") from error


def read_json(path):
    """Returns the JSON content of ``path``, or ``None`` when it does not exist.

    Example
    -------
    >>> read_json("/nonexistent/file.json") is None
    True
    """
    path = Path(path)
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
