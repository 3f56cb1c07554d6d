#!/usr/bin/env python3
"""Data preparation for Multilingual LibriSpeech (MLS, OpenSLR 94): CSV manifests.

The corpus as distributed, one folder per language (flac or opus audio)::

    <data_folder>/mls_<language>[_opus]/metainfo.txt
    <data_folder>/mls_<language>[_opus]/{train,dev,test}/transcripts.txt
    <data_folder>/mls_<language>[_opus]/{train,dev,test}/segments.txt
    <data_folder>/mls_<language>[_opus]/{train,dev,test}/audio/<spk>/<book>/<spk>_<book>_<utt>.{flac,opus}
    <data_folder>/mls_<language>[_opus]/train/limited_supervision/9hr/handles.txt
    <data_folder>/mls_<language>[_opus]/train/limited_supervision/1hr/{0..5}/handles.txt

``transcripts.txt`` lines are ``<id>\\t<text>``, ``segments.txt`` lines
``<id>\\t<mp3 url>\\t<start>\\t<end>`` (seconds in the LibriVox mp3),
``metainfo.txt`` is pipe-separated with the header
``SPEAKER|GENDER|PARTITION|MINUTES|BOOK ID|TITLE|CHAPTER`` (fields padded with
spaces), a ``handles.txt`` lists one id per line. ``mls_lm_<language>`` folders
(the LM resources) are not read. ``data_folder`` may also be the
``mls_<language>[_opus]`` folder itself.

:func:`prepare_mls` writes ``<save_folder>/<language>/<name>.csv`` with the
columns ``ID,duration,wav,spk_id,wrd,language,book_id,gender``: ``duration`` is
``end - start`` from ``segments.txt`` (no audio file is opened: the English
train split has 10.8 M utterances), ``wav`` the absolute audio path, ``wrd``
the transcript in Unicode NFC with runs of whitespace made one space,
``gender`` the speaker's from ``metainfo.txt`` (empty, with a logged count,
for a speaker it does not list). Rows follow the order of ``transcripts.txt``.

``<name>`` is ``dev`` and ``test`` for those splits and, for ``train``, the
subset (the Libri-light conventions, which HF datasets also follows):

* ``train``: the whole train split (``subset="full"``);
* ``9hr``: ``limited_supervision/9hr/handles.txt``;
* ``1hr``: the union of ``limited_supervision/1hr/{0..5}/handles.txt``;
* ``10hr``: ``9hr`` ∪ ``1hr``;
* ``10min``: one fold ``limited_supervision/1hr/<k>/handles.txt``, ``k`` =
  ``ten_min_fold`` (0 by default; each fold is 10 minutes);
* with ``max_hours``: a deterministic draw (``seed``) of whole utterances from
  the subset above, at most ``max_hours`` hours in all; the name gets
  ``_max<hours>h`` (``train_max5h``, ``9hr_max2h``).

Audio files are only checked to exist (one ``os.path.exists`` each;
``check_audio=False`` skips even that); ``verify_audio=N`` also opens the
headers of N utterances drawn with ``seed`` and fails when one's duration is
more than 0.05 s off ``segments.txt``.

Every CSV is written atomically; a preparation with the same options whose CSVs
all exist is reused (the options are kept in ``mls_prepare.json``, written
last).

Bad input fails at once with one line naming the file (and line): an unknown
language or ``mls_<name>`` folder (the known languages listed), a missing
corpus folder, ``transcripts.txt``, ``segments.txt``, ``metainfo.txt`` or
``handles.txt``, both ``mls_<language>`` and ``mls_<language>_opus`` (or both a
``.flac`` and an ``.opus``) without ``audio_format``, a line without a tab,
text that is not UTF-8, an id not ``<spk>_<book>_<utt>``, empty text, a
duplicated id (both lines), a bad or missing segment, a handle that is not in
the transcripts, missing audio (unless ``skip_missing``: then those
utterances are left out and counted in one log line).

Usage::

    python mls_prepare.py /data/mls manifests french --subset 9hr
"""

import argparse
import logging
import math
import os
import random
import re
import sys
import unicodedata
from pathlib import Path

import soundfile

from speechbrain_sparse.data.generic_layout import read_utf8_lines
from speechbrain_sparse.errors import (
    MissingInputError,
    UserInputError,
    exit_on_user_error,
)
from speechbrain_sparse.fileio import read_json, write_csv_atomic, write_json_atomic

logger = logging.getLogger(__name__)

LANGUAGES = ("dutch", "english", "french", "german", "italian", "polish",
             "portuguese", "spanish")
SPLITS = ("train", "dev", "test")
SUBSETS = ("full", "9hr", "1hr", "10hr", "10min")
AUDIO_FORMATS = ("flac", "opus")
ONE_HOUR_FOLDS = 6
FIELDS = ("ID", "duration", "wav", "spk_id", "wrd", "language", "book_id", "gender")
METAINFO_HEADER = ("SPEAKER", "GENDER", "PARTITION", "MINUTES", "BOOK ID", "TITLE",
                   "CHAPTER")
OPTIONS_FILE = "mls_prepare.json"
VERIFY_TOLERANCE_S = 0.05
ID_PATTERN = re.compile(r"([0-9]+)_([0-9]+)_([0-9]+)")
FOLDER_PATTERN = re.compile(r"mls_(.+?)(_opus)?")


def prepare_mls(data_folder, save_folder, language, splits=SPLITS, subset="full",
                max_hours=None, audio_format=None, skip_missing=False,
                skip_prep=False, seed=0, ten_min_fold=0, check_audio=True,
                verify_audio=0):
    """Writes ``<save_folder>/<language>/<name>.csv`` per split (see the module doc).

    Arguments
    ---------
    data_folder : str or Path
        The folder holding ``mls_<language>[_opus]``, or that folder itself.
    save_folder : str or Path
        Where the ``<language>/`` folder of CSVs goes.
    language : str
        One of :data:`LANGUAGES`.
    splits : sequence of str
        Among ``train``, ``dev``, ``test``.
    subset : str
        The train subset, one of :data:`SUBSETS`.
    max_hours : float, optional
        Keep a deterministic draw of at most this many hours of the subset.
    audio_format : str, optional
        ``flac`` or ``opus``; needed only when both are there.
    skip_missing : bool
        Leave out (and count) utterances whose audio is missing instead of failing.
    skip_prep : bool
        Do nothing; return the expected paths.
    seed : int
        Seed of the ``max_hours`` draw and of the ``verify_audio`` sample.
    ten_min_fold : int
        Which ``1hr/<k>`` fold is the ``10min`` subset (0 to 5).
    check_audio : bool
        Whether to check that each audio file exists (False: paths unchecked).
    verify_audio : int
        Number of utterances per split whose audio header is read and whose
        duration must match ``segments.txt`` within 0.05 s.

    Returns
    -------
    dict
        ``{name: Path}`` of every CSV written.

    Example
    -------
    >>> prepare_mls("/data/mls", "manifests", "french", subset="9hr")  # doctest: +SKIP
    {'train': PosixPath('manifests/french/9hr.csv'), 'dev': ..., 'test': ...}
    """
    names = manifest_names(splits, subset, max_hours, ten_min_fold)
    out_folder = Path(save_folder) / language
    paths = {split: out_folder / f"{name}.csv" for split, name in names.items()}
    if skip_prep:
        return paths
    if language not in LANGUAGES:
        raise UserInputError(f"unknown MLS language {language!r}; known languages: "
                             f"{', '.join(LANGUAGES)}")
    corpus, audio_format = find_corpus(data_folder, language, audio_format)
    options = {"corpus": str(corpus), "language": language, "splits": list(splits),
               "subset": subset, "max_hours": max_hours, "seed": seed,
               "ten_min_fold": ten_min_fold, "audio_format": audio_format,
               "skip_missing": skip_missing, "check_audio": check_audio,
               "verify_audio": verify_audio}
    options_path = out_folder / OPTIONS_FILE
    if read_json(options_path) == options and all(p.is_file() for p in paths.values()):
        logger.info("MLS %s already prepared in %s, skipping", language, out_folder)
        return paths
    options_path.unlink(missing_ok=True)  # the CSVs are about to change
    genders = read_metainfo(corpus / "metainfo.txt")
    for split in splits:
        split_folder = corpus / split
        utterances = read_split(split_folder)
        keep = None
        if split == "train" and subset != "full":
            keep = subset_ids(split_folder, subset, ten_min_fold, utterances)
        if split == "train" and max_hours is not None:
            keep = draw_hours(utterances, keep, max_hours, seed)
        ids = audio_checked(split_folder, utterances, keep, audio_format,
                            skip_missing, check_audio)
        rows = ManifestRows(split_folder, utterances, ids, language, genders,
                            audio_format)
        if verify_audio:
            verify_durations(rows, verify_audio, seed)
        write_csv_atomic(paths[split], rows, FIELDS)
        logger.info("%s: %d utterances, %.2f hours", paths[split], len(ids),
                    sum(utterances[utt_id][1] for utt_id in ids) / 3600)
    write_json_atomic(options_path, options)
    return paths


def manifest_names(splits, subset="full", max_hours=None, ten_min_fold=0):
    """The CSV name (without ``.csv``) of each split, checking the options.

    Example
    -------
    >>> manifest_names(["train", "dev"], "9hr")
    {'train': '9hr', 'dev': 'dev'}
    >>> manifest_names(["train"], "full", max_hours=2.5)
    {'train': 'train_max2.5h'}
    """
    unknown = [split for split in splits if split not in SPLITS]
    if unknown or not splits:
        raise UserInputError(f"splits {list(splits)}: choose among {list(SPLITS)}")
    if subset not in SUBSETS:
        raise UserInputError(f"subset {subset!r}: choose among {list(SUBSETS)}")
    if max_hours is not None and not float(max_hours) > 0:
        raise UserInputError(f"max_hours {max_hours!r}: must be a positive number")
    if ten_min_fold not in range(ONE_HOUR_FOLDS):
        raise UserInputError(
            f"ten_min_fold {ten_min_fold!r}: must be 0 to {ONE_HOUR_FOLDS - 1}"
        )
    train = "train" if subset == "full" else subset
    if max_hours is not None:
        train += f"_max{float(max_hours):g}h"
    return {split: train if split == "train" else split for split in splits}


def find_corpus(data_folder, language, audio_format=None):
    """Returns ``(corpus folder, audio format)`` of ``language`` under ``data_folder``.

    Arguments
    ---------
    data_folder : str or Path
        The folder holding ``mls_<language>[_opus]``, or that folder itself.
    language : str
        A known language.
    audio_format : str, optional
        ``flac`` or ``opus``: the folder named for it is used (the other one
        when only that is there).

    Returns
    -------
    tuple
        The absolute corpus folder and the audio format (file extension).
    """
    if audio_format not in (None, *AUDIO_FORMATS):
        raise UserInputError(f"audio_format {audio_format!r}: choose flac or opus")
    data_folder = Path(data_folder).resolve()
    found = {fmt: data_folder / f"mls_{language}{'_opus' * (fmt == 'opus')}"
             for fmt in AUDIO_FORMATS}
    found = {fmt: folder for fmt, folder in found.items() if folder.is_dir()}
    named = FOLDER_PATTERN.fullmatch(data_folder.name)
    if not found and named and not data_folder.name.startswith("mls_lm_"):
        if named.group(1) not in LANGUAGES:
            raise UserInputError(f"{data_folder}: unknown MLS folder mls_"
                                 f"{named.group(1)}; known languages: "
                                 f"{', '.join(LANGUAGES)}")
        if named.group(1) != language:
            raise UserInputError(f"{data_folder} is the MLS {named.group(1)} folder, "
                                 f"not {language}")
        found = {"opus" if named.group(2) else "flac": data_folder}
    if not found:
        present = sorted(p.name for p in data_folder.glob("mls_*") if p.is_dir())
        raise MissingInputError(f"{data_folder}: no mls_{language} or "
                                f"mls_{language}_opus folder (found: "
                                f"{', '.join(present) or 'none'})")
    if audio_format is None:
        if len(found) > 1:
            raise UserInputError(f"both {found['flac']} and {found['opus']} are "
                                 "there: choose one with audio_format flac or opus")
        audio_format = next(iter(found))
    return found.get(audio_format, next(iter(found.values()))), audio_format


def read_metainfo(path):
    """Speaker -> gender from an MLS ``metainfo.txt``.

    Example
    -------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "metainfo.txt"
    >>> _ = path.write_text(" SPEAKER | GENDER | PARTITION | MINUTES | BOOK ID |"
    ...                     " TITLE | CHAPTER\\n 10065 | F | train | 13.2 | 10039 |"
    ...                     " A | B |c\\n")
    >>> read_metainfo(path)
    {'10065': 'F'}
    """
    if not Path(path).is_file():
        raise MissingInputError(f"missing {path} (the speakers' metadata)")
    genders = {}
    for number, line in read_utf8_lines(path):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split("|")]
        if number == 1:
            if tuple(field.upper() for field in fields[:7]) != METAINFO_HEADER:
                raise UserInputError(f"{path}:1: expected the header "
                                     f"{'|'.join(METAINFO_HEADER)}, got "
                                     f"{line.strip()[:80]!r}")
            continue
        if len(fields) < 7 or not fields[0]:
            raise UserInputError(f"{path}:{number}: expected 7 '|'-separated fields, "
                                 f"got {line.strip()[:80]!r}")
        genders[fields[0]] = fields[1]
    return genders


def read_split(split_folder):
    """Reads a split's ``transcripts.txt`` and ``segments.txt``.

    Arguments
    ---------
    split_folder : Path
        ``mls_<language>/<split>``.

    Returns
    -------
    dict
        Id -> ``(text in NFC, duration in seconds)``, in transcript order.
    """
    split_folder = Path(split_folder)
    if not split_folder.is_dir():
        raise MissingInputError(f"missing split folder {split_folder}")
    durations = read_segments(split_folder / "segments.txt")
    transcripts = split_folder / "transcripts.txt"
    utterances = {}
    for number, utt_id, text in _tab_lines(transcripts):
        text = unicodedata.normalize("NFC", " ".join(text.split()))
        if not ID_PATTERN.fullmatch(utt_id):
            raise UserInputError(f"{transcripts}:{number}: id {utt_id!r} is not "
                                 "<speaker>_<book>_<utterance>")
        if not text:
            raise UserInputError(f"{transcripts}:{number}: empty text for {utt_id!r}")
        if utt_id in utterances:
            raise _duplicate(transcripts, utt_id, number)
        if utt_id not in durations:
            raise UserInputError(f"{transcripts}:{number}: id {utt_id!r} has no line "
                                 f"in {transcripts.with_name('segments.txt')}")
        utterances[utt_id] = (text, durations[utt_id])
    if not utterances:
        raise UserInputError(f"{transcripts}: no utterances")
    return utterances


def read_segments(path):
    """Id -> ``end - start`` (seconds, rounded to 0.1 ms) from a ``segments.txt``."""
    durations = {}
    for number, utt_id, rest in _tab_lines(path):
        fields = rest.rstrip("\r\n").split("\t")
        try:
            start, end = float(fields[-2]), float(fields[-1])
        except (ValueError, IndexError):
            start = end = math.nan
        if len(fields) != 3 or not end > start:
            raise UserInputError(f"{path}:{number}: expected '<id>\\t<url>\\t<start>"
                                 f"\\t<end>' with end > start, got "
                                 f"{(utt_id + chr(9) + rest).strip()[:120]!r}")
        if utt_id in durations:
            raise _duplicate(path, utt_id, number)
        durations[utt_id] = round(end - start, 4)
    return durations


def _tab_lines(path):
    """Yields ``(line number, id, rest)`` of a tab-separated MLS text file."""
    if not Path(path).is_file():
        raise MissingInputError(f"missing {path}")
    for number, line in read_utf8_lines(path):
        if not line.strip():
            continue
        utt_id, tab, rest = line.rstrip("\r\n").partition("\t")
        if not tab:
            raise UserInputError(f"{path}:{number}: no tab in the line "
                                 f"{line.strip()[:80]!r} (expected '<id>\\t...')")
        yield number, utt_id.strip(), rest


def _duplicate(path, utt_id, number):
    """The error for ``utt_id`` seen again at line ``number``, naming both lines."""
    first = next(n for n, other, _ in _tab_lines(path) if other == utt_id)
    return UserInputError(f"{path}:{number}: id {utt_id!r} already on line {first}")


def read_handles(path, utterances, transcripts):
    """The ids listed in a ``handles.txt``, each checked against ``utterances``.

    Arguments
    ---------
    path : Path
        The ``handles.txt``.
    utterances : dict
        The train split's utterances by id (:func:`read_split`).
    transcripts : Path
        The train ``transcripts.txt`` (named in the error for an unknown handle).

    Returns
    -------
    set
        The handles.
    """
    if not Path(path).is_file():
        raise MissingInputError(f"missing {path} (limited-supervision handles)")
    handles = set()
    for number, line in read_utf8_lines(path):
        handle = line.strip()
        if not handle:
            continue
        if handle not in utterances:
            raise UserInputError(f"{path}:{number}: handle {handle!r} is not in "
                                 f"{transcripts}")
        handles.add(handle)
    return handles


def subset_ids(train_folder, subset, ten_min_fold, utterances):
    """The ids of a limited-supervision subset (see the module doc)."""
    limited = Path(train_folder) / "limited_supervision"
    files = {
        "9hr": [limited / "9hr" / "handles.txt"],
        "1hr": [limited / "1hr" / str(fold) / "handles.txt"
                for fold in range(ONE_HOUR_FOLDS)],
        "10min": [limited / "1hr" / str(ten_min_fold) / "handles.txt"],
    }
    files["10hr"] = files["9hr"] + files["1hr"]
    ids = set()
    for path in files[subset]:
        ids |= read_handles(path, utterances, Path(train_folder) / "transcripts.txt")
    return ids


def draw_hours(utterances, keep, max_hours, seed):
    """A deterministic draw of at most ``max_hours`` hours among ``keep`` (or all).

    The ids are shuffled with ``seed`` (from their sorted order, so the draw
    does not depend on the file's order) and each one that still fits the
    budget is taken.

    Example
    -------
    >>> utterances = {f"1_2_{i}": ("a", 900.0) for i in range(10)}
    >>> sorted(draw_hours(utterances, None, 1, seed=0)) == sorted(
    ...     draw_hours(utterances, None, 1, seed=0))
    True
    >>> len(draw_hours(utterances, None, 1, seed=0))
    4
    """
    ids = sorted(utterances if keep is None else keep)
    random.Random(seed).shuffle(ids)
    budget, chosen = float(max_hours) * 3600, set()
    for utt_id in ids:
        duration = utterances[utt_id][1]
        if duration <= budget:
            chosen.add(utt_id)
            budget -= duration
    return chosen


def audio_checked(split_folder, utterances, keep, audio_format, skip_missing=False,
                  check_audio=True):
    """The ids of ``utterances`` (those in ``keep`` if given) whose audio exists.

    Arguments
    ---------
    split_folder : Path
        ``mls_<language>/<split>``.
    utterances : dict
        Id -> ``(text, duration)`` (:func:`read_split`), in order.
    keep : set, optional
        The ids to keep (a subset); all when None.
    audio_format : str
        ``flac`` or ``opus``.
    skip_missing : bool
        Leave out (and count in one log line) ids without audio instead of failing.
    check_audio : bool
        When False, no file is looked at.

    Returns
    -------
    list of str
        The ids, in the order of ``utterances``.
    """
    other = AUDIO_FORMATS[audio_format == "flac"]
    ids, missing = [], []
    for utt_id in utterances:
        if keep is not None and utt_id not in keep:
            continue
        if check_audio:
            wav = audio_path(split_folder, utt_id, audio_format)
            second = audio_path(split_folder, utt_id, other)
            if not os.path.exists(wav):
                if os.path.exists(second):
                    raise UserInputError(f"{wav} not found but {second} is: choose "
                                         f"audio_format {other}")
                if not skip_missing:
                    raise MissingInputError(f"audio file not found: {wav} (id "
                                            f"{utt_id} of {split_folder}"
                                            "/transcripts.txt)")
                missing.append(wav)
                continue
            if not ids and os.path.exists(second):
                raise UserInputError(f"both {wav} and {second} are there: choose "
                                     "one with audio_format flac or opus")
        ids.append(utt_id)
    if missing:
        logger.warning("%s: %d utterances left out, their audio is missing (e.g. %s)",
                       split_folder, len(missing), missing[0])
    return ids


def audio_path(split_folder, utt_id, audio_format):
    """``<split_folder>/audio/<spk>/<book>/<id>.<format>`` as a string.

    Example
    -------
    >>> audio_path("/d/mls_french/dev", "1_2_000003", "opus")
    '/d/mls_french/dev/audio/1/2/1_2_000003.opus'
    """
    speaker, book, _ = utt_id.split("_")
    return os.path.join(split_folder, "audio", speaker, book,
                        f"{utt_id}.{audio_format}")


class ManifestRows:
    """The manifest rows of a split, each made when it is read (a sequence of dicts).

    A 10 M-utterance split then holds its ids and texts once, not 10 M dicts.

    Arguments
    ---------
    split_folder : Path
        ``mls_<language>/<split>``.
    utterances : dict
        Id -> ``(text, duration)`` (:func:`read_split`).
    ids : list of str
        The ids of the rows, in order.
    language : str
        The ``language`` column.
    genders : dict
        Speaker -> gender (:func:`read_metainfo`); a speaker it lacks gets an
        empty ``gender`` and is counted in one log line.
    audio_format : str
        ``flac`` or ``opus``.

    Example
    -------
    >>> rows = ManifestRows("/d/dev", {"1_2_3": ("salut", 1.5)}, ["1_2_3"],
    ...                     "french", {"1": "F"}, "flac")
    >>> len(rows), rows[0]["wav"], rows[0]["gender"]
    (1, '/d/dev/audio/1/2/1_2_3.flac', 'F')
    """

    def __init__(self, split_folder, utterances, ids, language, genders,
                 audio_format):
        self.split_folder, self.utterances, self.ids = split_folder, utterances, ids
        self.language, self.genders = language, genders
        self.audio_format = audio_format
        unknown = {utt_id.split("_")[0] for utt_id in ids} - genders.keys()
        if unknown:
            logger.warning("%s: %d speakers not in metainfo.txt (gender left "
                           "empty), e.g. %s", split_folder, len(unknown), min(unknown))

    def __len__(self):
        return len(self.ids)

    def __iter__(self):
        return (self[index] for index in range(len(self.ids)))

    def __getitem__(self, index):
        utt_id = self.ids[index]
        speaker, book, _ = utt_id.split("_")
        text, duration = self.utterances[utt_id]
        return {"ID": utt_id, "duration": duration,
                "wav": audio_path(self.split_folder, utt_id, self.audio_format),
                "spk_id": speaker, "wrd": text, "language": self.language,
                "book_id": book, "gender": self.genders.get(speaker, "")}


def verify_durations(rows, count, seed):
    """Reads the headers of ``count`` rows drawn with ``seed``; checks durations."""
    for index in random.Random(seed).sample(range(len(rows)), min(count, len(rows))):
        row = rows[index]
        try:
            info = soundfile.info(row["wav"])
        except (RuntimeError, soundfile.LibsndfileError) as error:
            raise UserInputError(f"{row['wav']}: cannot read audio: {error}") from None
        seconds = info.frames / info.samplerate
        if abs(seconds - row["duration"]) > VERIFY_TOLERANCE_S:
            raise UserInputError(f"{row['wav']}: {seconds:.3f} s of audio, but "
                                 f"segments.txt says {row['duration']} s")


def main(argv=None):
    """Command line: ``python mls_prepare.py DATA SAVE LANGUAGE [options]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_folder", help="the folder holding mls_<language>[_opus]")
    parser.add_argument("save_folder", help="the CSVs go to <save_folder>/<language>/")
    parser.add_argument("language", help=f"one of {', '.join(LANGUAGES)}")
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS)
    parser.add_argument("--subset", default="full", choices=SUBSETS)
    parser.add_argument("--max_hours", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ten_min_fold", type=int, default=0,
                        choices=range(ONE_HOUR_FOLDS))
    parser.add_argument("--audio_format", choices=AUDIO_FORMATS, default=None)
    parser.add_argument("--skip_missing", action="store_true",
                        help="leave out utterances whose audio is missing")
    parser.add_argument("--no_check_audio", action="store_true",
                        help="do not check that the audio files exist")
    parser.add_argument("--verify_audio", type=int, default=0, metavar="N",
                        help="read N audio headers per split, compare durations")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return prepare_mls(args.data_folder, args.save_folder, args.language,
                       splits=args.splits, subset=args.subset,
                       max_hours=args.max_hours, audio_format=args.audio_format,
                       skip_missing=args.skip_missing, seed=args.seed,
                       ten_min_fold=args.ten_min_fold,
                       check_audio=not args.no_check_audio,
                       verify_audio=args.verify_audio)


if __name__ == "__main__":
    exit_on_user_error(main, sys.argv[1:], "mls_prepare.py")
