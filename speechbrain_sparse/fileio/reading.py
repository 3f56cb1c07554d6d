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
import io
import json
from pathlib import Path

import soundfile
import speechbrain as sb

from speechbrain_sparse.errors import UserInputError

#: How far (seconds) an audio file's length may be from its manifest's ``duration``.
DURATION_TOLERANCE = 0.05


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
        If the file is missing, is not UTF-8 text (naming the row and column),
        lacks a required column, lists an ``ID`` twice (naming both rows) or has
        a ``duration`` that is not a number (naming the row).

    Example
    -------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.csv"
    >>> _ = path.write_bytes(b"ID,duration,wav\\nu1,1,a.wav\\nu2,1,b\\xe9.wav\\n")
    >>> def problem(path):
    ...     try:
    ...         read_manifest(path)
    ...     except ManifestError as error:
    ...         return str(error).replace(str(path), "m.csv")
    >>> problem(path)
    "m.csv, row 2 (ID 'u2'): column 'wav' is not UTF-8 text: b'b\\\\xe9.wav' (save ...)"
    >>> _ = path.write_text("ID,duration,wav\\nu1,1,a.wav\\nu1,1,b.wav\\n")
    >>> problem(path)
    "m.csv: ID 'u1' is listed twice, in rows 1 and 2"
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise ManifestError(f"{csv_path}: manifest not found")
    reader = csv.DictReader(io.StringIO(_utf8_text(csv_path), newline=""))
    found = reader.fieldnames or []
    missing = [column for column in required if column not in found]
    if missing:
        raise ManifestError(
            f"{csv_path}: missing column(s) {', '.join(missing)} "
            f"(found: {', '.join(found)})"
        )
    rows = list(reader)
    if "ID" in found:
        _check_unique_ids(csv_path, rows)
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


def _utf8_text(csv_path):
    """The file's text; bytes that are not UTF-8 raise, naming row and column."""
    data = csv_path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # find the place: undecodable bytes become lone surrogates, which cannot be encoded
    text = data.decode("utf-8", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    for column, name in enumerate(header):
        if not _is_utf8(name):
            raise ManifestError(f"{csv_path}: header column {column + 1} is not "
                                f"UTF-8 text: {_raw(name)!r}")
    for number, values in enumerate(reader, start=1):
        row = dict(zip(header, values))
        for name, value in row.items():
            if not _is_utf8(value):
                raise ManifestError(
                    f"{row_place(csv_path, number, row)}: column {name!r} is not "
                    f"UTF-8 text: {_raw(value)!r} (save the file as UTF-8)")
    raise ManifestError(f"{csv_path}: not UTF-8 text")


def _is_utf8(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _raw(text):
    return text.encode("utf-8", errors="surrogateescape")


def _check_unique_ids(csv_path, rows):
    first_row = {}
    for number, row in enumerate(rows, start=1):
        first = first_row.setdefault(row["ID"], number)
        if first != number:
            raise ManifestError(f"{csv_path}: ID {row['ID']!r} is listed twice, in "
                                f"rows {first} and {number}")


def row_place(csv_path, number, row):
    """Names a manifest row in messages: ``<file>, row <n> (ID '<id>')``.

    Example
    -------
    >>> row_place("a.csv", 2, {"ID": "u2"})
    "a.csv, row 2 (ID 'u2')"
    """
    return f"{csv_path}, row {number} (ID {row.get('ID')!r})"


def check_audio_file(wav_path, where=None, sample_rate=None, duration=None,
                     tolerance=DURATION_TOLERANCE):
    """Raises ManifestError if ``wav_path`` cannot be trained on; reads the header only.

    The file must exist, have a readable header and at least one sample; with
    ``sample_rate`` it must be mono at that rate, and with ``duration`` (the
    manifest's column) it must last that long within ``tolerance`` seconds
    (a truncated file, or a manifest written for other audio, does not).

    Arguments
    ---------
    wav_path : str or os.PathLike
        The audio file.
    where : str, optional
        Prefix of the message (e.g. :func:`row_place`).
    sample_rate : int, optional
        The rate the recipe reads (Hz); also requires one channel.
    duration : float, optional
        The manifest's ``duration`` (seconds).
    tolerance : float
        How far (seconds) the file's length may be from ``duration``.

    Returns
    -------
    soundfile._SoundFileInfo
        The file's header (``samplerate``, ``frames``, ...).

    Example
    -------
    >>> import tempfile, pathlib, numpy
    >>> wav = pathlib.Path(tempfile.mkdtemp()) / "a.wav"
    >>> soundfile.write(wav, numpy.zeros(8000, dtype="int16"), 8000)
    >>> def problem(**checks):
    ...     try:
    ...         check_audio_file(wav, "m.csv, row 1", **checks)
    ...     except ManifestError as error:
    ...         return str(error).replace(str(wav), "a.wav")
    >>> problem(sample_rate=16000)
    'm.csv, row 1: audio a.wav is sampled at 8000 Hz, not 16000 Hz'
    >>> problem(duration=1.48)
    "m.csv, row 1: audio a.wav lasts 1.000 s, but column 'duration' says 1.48 s (...)"
    """
    prefix = f"{where}: " if where else ""
    if not Path(wav_path).is_file():
        raise ManifestError(f"{prefix}audio file not found: {wav_path}")
    try:
        info = soundfile.info(str(wav_path))
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise ManifestError(
            f"{prefix}cannot read audio {wav_path}: {error}"
        ) from None
    problem = None
    if info.frames <= 0:
        problem = "has no samples"
    elif sample_rate is not None and info.samplerate != sample_rate:
        problem = f"is sampled at {info.samplerate} Hz, not {sample_rate} Hz"
    elif sample_rate is not None and info.channels != 1:
        problem = f"has {info.channels} channels, not 1 (mono)"
    elif duration is not None:
        seconds = info.frames / info.samplerate
        if abs(seconds - duration) > tolerance:
            problem = (f"lasts {seconds:.3f} s, but column 'duration' says "
                       f"{duration} s (truncated, or another file?)")
    if problem:
        raise ManifestError(f"{prefix}audio {wav_path} {problem}")
    return info


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
