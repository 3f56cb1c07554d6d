#!/usr/bin/env python3
"""Data preparation for LibriSpeech (OpenSLR 12): SpeechBrain CSV manifests.

The corpus as distributed::

    <data_folder>/<split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac
    <data_folder>/<split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt

where each line of a ``.trans.txt`` is ``<speaker>-<chapter>-<utt> TRANSCRIPT``
and ``<split>`` is e.g. ``train-clean-100``, ``dev-clean``, ``test-other``
(``data_folder`` is the ``LibriSpeech`` folder the archives unpack to).

:func:`prepare_librispeech` writes ``<save_folder>/<split>.csv`` with the
columns of SpeechBrain's own LibriSpeech recipes, ``ID,duration,wav,spk_id,wrd``:
``ID`` is the utterance id, ``duration`` in seconds (from the FLAC header),
``wav`` the absolute path of the ``.flac``, ``spk_id`` ``<speaker>-<chapter>``
(as SpeechBrain does), ``wrd`` the transcript as written (upper case). Rows
follow the corpus order (speaker, chapter, line). Optionally the rows of
several splits are also merged into one CSV (e.g. ``train.csv``).

With ``max_hours``, each split is limited to a deterministic subset of at
most that many hours, written as ``<split>_<H>h.csv`` (``train-other-500_10h.csv``):
the utterances are ranked by a hash of ``seed`` and their ID (a seeded
shuffle that is the same on any machine and Python version, and does not
depend on the order of the files) and the longest prefix of that ranking that
fits in the budget is kept, in corpus order (:func:`hours_subset`).

Every CSV is written atomically; a preparation with the same options whose
CSVs all exist is skipped (the options are kept in
``librispeech_prepare.json``, written last).

Bad input fails at once, naming the file (and line): a missing split folder
(``FileNotFoundError``); a chapter folder without its ``.trans.txt``, a line
without an id or a transcript, an id of another chapter, a duplicated id, an id
whose ``.flac`` is missing, a ``.flac`` that no line transcribes, or audio that
cannot be read (``ValueError``).

Usage::

    python librispeech_prepare.py /data/LibriSpeech manifests \\
        --splits train-clean-100 dev-clean test-clean
    python librispeech_prepare.py /data/LibriSpeech manifests \\
        --splits train-other-500 --max-hours 10 --seed 0
"""

import argparse
import hashlib
import logging
from pathlib import Path

import soundfile

from speechbrain_sparse.errors import MissingInputError, UserInputError
from speechbrain_sparse.fileio import read_json, write_csv_atomic, write_json_atomic

logger = logging.getLogger(__name__)

FIELDS = ("ID", "duration", "wav", "spk_id", "wrd")
SPLITS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean",
          "dev-other", "test-clean", "test-other")
OPTIONS_FILE = "librispeech_prepare.json"


def prepare_librispeech(data_folder, save_folder,
                        splits=("train-clean-100", "dev-clean", "test-clean"),
                        merge_splits=None, merge_name="train",
                        select_n_sentences=None, max_hours=None, seed=0,
                        skip_prep=False):
    """Writes ``<save_folder>/<split>.csv`` for each split (see the module doc).

    Arguments
    ---------
    data_folder : str or Path
        The ``LibriSpeech`` folder holding the split folders.
    save_folder : str or Path
        Where the CSVs and the options file go.
    splits : sequence of str
        Split folder names to prepare.
    merge_splits : sequence of str, optional
        Splits (among ``splits``) whose rows also go to ``<merge_name>.csv``.
    merge_name : str
        Name of the merged CSV (without ``.csv``).
    select_n_sentences : int, optional
        Keep only the first N utterances of each split (quick experiments).
    max_hours : float, optional
        Keep a deterministic subset of at most this many hours of each split
        (after ``select_n_sentences``), written as ``<split>_<H>h.csv``.
    seed : int
        Which subset ``max_hours`` draws (see :func:`hours_subset`).
    skip_prep : bool
        Do nothing; return the expected paths.

    Returns
    -------
    dict
        ``{name: Path}`` of every CSV: each split's (its subset's, with
        ``max_hours``) under the split's name, and the merged one.

    Example
    -------
    >>> prepare_librispeech("LibriSpeech", "manifests")  # doctest: +SKIP
    {'train-clean-100': PosixPath('manifests/train-clean-100.csv'), ...}
    """
    save_folder = Path(save_folder)
    merge_splits = list(merge_splits or [])
    unknown = [s for s in merge_splits if s not in splits]
    if unknown:
        raise UserInputError(
            f"merge_splits {unknown} are not among splits {list(splits)}"
        )
    if max_hours is not None and not max_hours > 0:
        raise UserInputError(f"max_hours must be a positive number of hours, "
                             f"not {max_hours!r}")
    paths = {split: save_folder / f"{split_name(split, max_hours)}.csv"
             for split in splits}
    if merge_splits:
        paths[merge_name] = save_folder / f"{merge_name}.csv"
    if skip_prep:
        return paths
    data_folder = Path(data_folder).resolve()
    options = {"data_folder": str(data_folder), "splits": list(splits),
               "merge_splits": merge_splits, "merge_name": merge_name,
               "select_n_sentences": select_n_sentences, "max_hours": max_hours,
               "seed": seed}
    options_path = save_folder / OPTIONS_FILE
    if read_json(options_path) == options and all(p.is_file() for p in paths.values()):
        logger.info("LibriSpeech already prepared in %s, skipping", save_folder)
        return paths
    options_path.unlink(missing_ok=True)  # the CSVs are about to change
    merged = []
    for split in splits:
        rows = split_rows(data_folder / split)
        if select_n_sentences is not None:
            rows = rows[: int(select_n_sentences)]
        if max_hours is not None:
            rows = hours_subset(rows, max_hours, seed, where=data_folder / split)
        write_csv_atomic(paths[split], rows, FIELDS)
        logger.info("%s: %d utterances, %.1f hours", paths[split], len(rows),
                    sum(r["duration"] for r in rows) / 3600)
        if split in merge_splits:
            merged.extend(rows)
    if merge_splits:
        write_csv_atomic(paths[merge_name], merged, FIELDS)
    write_json_atomic(options_path, options)
    return paths


def split_name(split, max_hours=None):
    """The name of a split's CSV (without ``.csv``): ``<split>_<H>h`` for a subset.

    Example
    -------
    >>> split_name("dev-clean"), split_name("train-other-500", 10.0)
    ('dev-clean', 'train-other-500_10h')
    >>> split_name("train-other-500", 0.5)
    'train-other-500_0.5h'
    """
    return split if max_hours is None else f"{split}_{max_hours:g}h"


def hours_subset(rows, max_hours, seed=0, where="the split"):
    """At most ``max_hours`` of ``rows``, drawn by a seeded shuffle, in their order.

    The rows are ranked by the SHA-256 of ``"<seed>/<ID>"``; the longest prefix
    of that ranking whose durations sum to at most ``max_hours`` is kept. The
    subset of a seed is thus the same on any machine, and a larger budget
    keeps every utterance of a smaller one (same seed).

    Arguments
    ---------
    rows : list of dict
        Manifest rows with ``ID`` and ``duration`` (seconds).
    max_hours : float
        The budget.
    seed : int
        Which subset.
    where : str or Path
        Names the rows in the error raised when nothing fits.

    Returns
    -------
    list of dict
        The kept rows, in the order of ``rows``.

    Example
    -------
    >>> rows = [{"ID": f"u{i}", "duration": 1800.0} for i in range(5)]
    >>> [row["ID"] for row in hours_subset(rows, 1.0, seed=0)]
    ['u3', 'u4']
    >>> [row["ID"] for row in hours_subset(rows, 1.0, seed=1)]
    ['u0', 'u4']
    >>> len(hours_subset(rows, 100.0))
    5
    """
    def rank(index):
        key = f"{seed}/{rows[index]['ID']}".encode()
        return hashlib.sha256(key).hexdigest()

    budget, total, kept = max_hours * 3600, 0.0, []
    for index in sorted(range(len(rows)), key=rank):
        total += rows[index]["duration"]
        if total > budget:
            break
        kept.append(index)
    if not kept:
        shortest = min(row["duration"] for row in rows)
        raise UserInputError(f"{where}: max_hours={max_hours:g} holds no utterance "
                             f"(the first drawn is longer; the shortest is "
                             f"{shortest:g} s)")
    return [rows[index] for index in sorted(kept)]


def split_rows(split_folder):
    """Returns the manifest rows of one split folder, in corpus order.

    Arguments
    ---------
    split_folder : Path
        ``<data_folder>/<split>``.

    Returns
    -------
    list of dict
        One row per utterance, keyed by :data:`FIELDS`.
    """
    split_folder = Path(split_folder)
    if not split_folder.is_dir():
        raise MissingInputError(f"missing split folder {split_folder} (expected "
                                "<data_folder>/<split>/<speaker>/<chapter>/)")
    rows = []
    chapters = sorted(p for p in split_folder.glob("*/*") if p.is_dir())
    for chapter_folder in chapters:
        rows.extend(chapter_rows(chapter_folder))
    if not rows:
        raise UserInputError(f"{split_folder}: no utterances found (expected "
                             "<speaker>/<chapter>/<speaker>-<chapter>.trans.txt)")
    return rows


def chapter_rows(chapter_folder):
    """Returns the rows of one ``<speaker>/<chapter>`` folder."""
    prefix = f"{chapter_folder.parent.name}-{chapter_folder.name}"
    transcript = chapter_folder / f"{prefix}.trans.txt"
    if not transcript.is_file():
        raise UserInputError(
            f"{chapter_folder}: missing transcript file {transcript.name}"
        )
    rows, seen = [], set()
    with open(transcript, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{transcript}, line {number}"
            utt_id, _, words = line.strip().partition(" ")
            words = " ".join(words.split())
            if not words or line[0].isspace():
                raise UserInputError(f"{where}: expected '<utterance id> TRANSCRIPT', "
                                     f"got {line.rstrip()!r}")
            if not utt_id.startswith(f"{prefix}-"):
                raise UserInputError(
                    f"{where}: id {utt_id!r} is not of chapter {prefix}"
                )
            if utt_id in seen:
                raise UserInputError(f"{where}: id {utt_id!r} appears twice")
            seen.add(utt_id)
            audio = chapter_folder / f"{utt_id}.flac"
            if not audio.is_file():
                raise UserInputError(f"{where}: audio file not found: {audio}")
            rows.append({"ID": utt_id, "duration": _duration(audio),
                         "wav": str(audio), "spk_id": prefix, "wrd": words})
    for audio in sorted(chapter_folder.glob("*.flac")):
        if audio.stem not in seen:
            raise UserInputError(f"{audio}: no line for {audio.stem} in {transcript}")
    return rows


def _duration(audio):
    try:
        info = soundfile.info(str(audio))
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise UserInputError(f"{audio}: cannot read audio: {error}") from None
    return round(info.frames / info.samplerate, 4)


def main(argv=None):
    """Command line: ``python librispeech_prepare.py DATA SAVE [--splits ...]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_folder", help="the LibriSpeech folder")
    parser.add_argument("save_folder", help="where the CSVs go")
    parser.add_argument("--splits", nargs="+",
                        default=["train-clean-100", "dev-clean", "test-clean"],
                        choices=SPLITS)
    parser.add_argument("--merge-splits", nargs="+", default=None)
    parser.add_argument("--merge-name", default="train")
    parser.add_argument("--select-n-sentences", type=int, default=None)
    parser.add_argument("--max-hours", type=float, default=None,
                        help="a deterministic subset of at most this many hours "
                             "of each split (<split>_<H>h.csv)")
    parser.add_argument("--seed", type=int, default=0,
                        help="which subset --max-hours draws")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    prepare_librispeech(args.data_folder, args.save_folder, args.splits,
                        args.merge_splits, args.merge_name, args.select_n_sentences,
                        args.max_hours, args.seed)


if __name__ == "__main__":
    main()
