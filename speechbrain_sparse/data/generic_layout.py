"""Reads the generic per-dialect corpus layout and writes SpeechBrain CSV manifests.

The layout (written by ``sb-sparse synth``, and the one the Tibetan recipe reads)::

    <data_folder>/<dialect>/<split>/<spk_id>/<utt_id>.wav
    <data_folder>/<dialect>/<split>/text        lines "<utt_id> <TRANSCRIPT>"

:func:`prepare_generic_corpus` turns it into ``<save_folder>/<dialect>_<split>.csv``
with the columns ``ID,duration,wav,spk_id,wrd,dialect`` (duration in seconds, ``wav``
an absolute path). :func:`split_manifest_rows` is the one manifest reader, which the
corpus generator uses too.

Bad input raises ``ValueError`` naming the file (and line) at fault, never a silent
loss: a ``text`` line without an id or without a transcript, text that is not UTF-8,
a duplicated id, an id with no audio and audio with no transcript are all errors,
because a corpus that lost files should be rebuilt, not trained on. A missing data
folder raises ``FileNotFoundError``. An optional ``normalize`` callable (for Tibetan,
:func:`speechbrain_sparse.metrics.normalize_tibetan`) is applied to every transcript.

Example
-------
>>> import tempfile, pathlib, wave
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> (root / "en-us/train/spk1").mkdir(parents=True)
>>> with wave.open(str(root / "en-us/train/spk1/spk1_u1.wav"), "wb") as handle:
...     handle.setnchannels(1); handle.setsampwidth(2); handle.setframerate(16000)
...     handle.writeframes(bytes(3200))
>>> _ = (root / "en-us/train/text").write_text("spk1_u1 HELLO WORLD\\n")
>>> out = prepare_generic_corpus(root, root / "csv", splits=("train",))
>>> [(row["ID"], row["duration"], row["wrd"]) for row in split_manifest_rows(
...     root / "en-us/train", "en-us")]
[('spk1_u1', 0.1, 'HELLO WORLD')]
>>> sorted(out)
['en-us_train']
"""

import logging
from pathlib import Path

import soundfile

from speechbrain_sparse.data.manifests import MANIFEST_FIELDS
from speechbrain_sparse.errors import MissingInputError, UserInputError
from speechbrain_sparse.fileio import read_json, write_csv_atomic, write_json_atomic

logger = logging.getLogger(__name__)
SPLITS = ("train", "dev", "test")
OPTIONS_FILE = "generic_prepare.json"


def read_utf8_lines(path):
    """Yields ``(line_number, line)`` of a UTF-8 text file (a leading BOM dropped).

    Arguments
    ---------
    path : str or Path
        The file to read.

    Yields
    ------
    tuple
        The 1-based line number and the decoded line (with its newline).

    Raises
    ------
    ValueError
        On bytes that are not UTF-8, naming the file, the line and the byte.
    """
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise UserInputError(
                    f"{path}:{number}: not UTF-8 text ({error.reason} at byte "
                    f"{error.start} of the line: {raw[error.start : error.end]!r})"
                ) from None
            yield number, line


def _is_tibetan(character):
    """True for a character of the Tibetan Unicode block."""
    return "\u0f00" <= character <= "\u0fff"


def read_transcripts(text_path, normalize=None):
    """Reads a ``text`` file: ``{utt_id: transcript}``, in file order.

    Arguments
    ---------
    text_path : Path
        Lines ``<utt_id> <TRANSCRIPT>``; blank lines are ignored.
    normalize : callable, optional
        Applied to each transcript (after runs of whitespace became one space).

    Returns
    -------
    dict
        Transcripts by utterance id.

    Raises
    ------
    ValueError
        On a line without an id (it starts with whitespace or with Tibetan
        text) or without a transcript, a duplicated id or text that is not
        UTF-8 (naming file and line).
    """
    transcripts = {}
    for number, line in read_utf8_lines(text_path):
        if not line.strip():
            continue
        fields = line.split(maxsplit=1)
        if line[0].isspace() or any(map(_is_tibetan, fields[0])):
            raise UserInputError(
                f"{text_path}:{number}: no utterance id at the start of the line "
                f"{line.strip()[:40]!r}"
            )
        if len(fields) < 2:
            raise UserInputError(
                f"{text_path}:{number}: no transcript after id {fields[0]!r}"
            )
        utt_id, words = fields[0], " ".join(fields[1].split())
        if normalize is not None:
            words = normalize(words)
        if utt_id in transcripts:
            raise UserInputError(f"{text_path}:{number}: duplicated id {utt_id!r}")
        transcripts[utt_id] = words
    return transcripts


def split_manifest_rows(split_dir, dialect, normalize=None):
    """Returns the manifest rows of one ``<dialect>/<split>`` folder, in ``text`` order.

    Arguments
    ---------
    split_dir : str or Path
        The folder holding ``text`` and the ``<spk_id>/<utt_id>.wav`` tree.
    dialect : str
        Written to the ``dialect`` column.
    normalize : callable, optional
        Applied to each transcript (see :func:`read_transcripts`).

    Returns
    -------
    list of dict
        One row per utterance with the :data:`MANIFEST_FIELDS` keys.

    Raises
    ------
    ValueError
        When transcripts and audio do not match one to one.
    """
    split_dir = Path(split_dir).resolve()
    text_path = split_dir / "text"
    if not text_path.is_file():
        raise MissingInputError(f"missing transcript file {text_path}")
    transcripts = read_transcripts(text_path, normalize)
    audio = {}
    for wav in sorted(split_dir.glob("*/*.wav")):
        if wav.stem in audio:
            raise UserInputError(
                f"{wav}: duplicated utterance id (also {audio[wav.stem]})"
            )
        audio[wav.stem] = wav
    for wav_id, wav in audio.items():
        if wav_id not in transcripts:
            raise UserInputError(f"{wav}: audio with no transcript in {text_path}")
    rows = []
    for number, (utt_id, words) in enumerate(transcripts.items(), start=1):
        wav = audio.get(utt_id)
        if wav is None:
            raise UserInputError(
                f"{text_path}: id {utt_id!r} (transcript {number}) has no audio "
                f"{split_dir}/<spk_id>/{utt_id}.wav"
            )
        info = soundfile.info(str(wav))
        rows.append(
            {
                "ID": utt_id,
                "duration": round(info.frames / info.samplerate, 5),
                "wav": str(wav),
                "spk_id": wav.parent.name,
                "wrd": words,
                "dialect": dialect,
            }
        )
    return rows


def prepare_generic_corpus(
    data_folder,
    save_folder,
    dialects=None,
    splits=SPLITS,
    skip_prep=False,
    normalize=None,
):
    """Writes ``<save_folder>/<dialect>_<split>.csv`` for a generic-layout corpus.

    Skipped when ``save_folder`` already holds the CSVs of a preparation with the same
    options (recorded in ``generic_prepare.json``, written last).

    Arguments
    ---------
    data_folder : str or Path
        The corpus root (holding one folder per dialect).
    save_folder : str or Path
        Where the CSVs go.
    dialects : list of str, optional
        The dialects to prepare; all sub-folders of ``data_folder`` by default.
    splits : sequence of str
        The splits to prepare; each must exist for each dialect.
    skip_prep : bool
        When True, do nothing and return the expected CSV paths.
    normalize : callable, optional
        Applied to each transcript (e.g. ``normalize_tibetan``); its qualified
        name is part of the recorded options.

    Returns
    -------
    dict
        ``{"<dialect>_<split>": Path to its CSV}``.
    """
    data_folder, save_folder = Path(data_folder).resolve(), Path(save_folder)
    if not data_folder.is_dir():
        raise MissingInputError(f"data folder {data_folder} does not exist")
    if dialects is None:
        dialects = sorted(p.name for p in data_folder.iterdir() if p.is_dir())
        if not dialects:
            raise UserInputError(f"no dialect folders in {data_folder}")
    csv_paths = {
        f"{dialect}_{split}": save_folder / f"{dialect}_{split}.csv"
        for dialect in dialects
        for split in splits
    }
    if skip_prep:
        return csv_paths
    options = {
        "data_folder": str(data_folder),
        "dialects": list(dialects),
        "splits": list(splits),
    }
    if normalize is not None:
        options["normalize"] = f"{normalize.__module__}.{normalize.__qualname__}"
    options_path = save_folder / OPTIONS_FILE
    if read_json(options_path) == options and all(
        path.is_file() for path in csv_paths.values()
    ):
        logger.info("Generic corpus already prepared in %s, skipping", save_folder)
        return csv_paths
    options_path.unlink(missing_ok=True)  # the CSVs are about to change
    for dialect in dialects:
        for split in splits:
            split_dir = data_folder / dialect / split
            if not split_dir.is_dir():
                raise MissingInputError(f"missing split folder {split_dir}")
            rows = split_manifest_rows(split_dir, dialect, normalize)
            write_csv_atomic(csv_paths[f"{dialect}_{split}"], rows, MANIFEST_FIELDS)
            logger.info("Wrote %d utterances of %s/%s", len(rows), dialect, split)
    write_json_atomic(options_path, options)
    return csv_paths
