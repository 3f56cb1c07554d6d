"""Data preparation for XBMU-AMDO31 (OpenSLR 133), the Amdo Tibetan source corpus.

The corpus as distributed (CC BY-SA 4.0)::

    <data_folder>/data/wav/{train,dev,test}/<spk>/<spk>-<uttid>.wav
    <data_folder>/data/wav/{train,dev,test}.tar.gz     (unpacked in place when the
                                                        split folder is missing)
    <data_folder>/data/transcript/transcript_clean.txt  lines "<uttid> <token> ..."

``data_folder`` may also be the ``data`` folder itself. One transcript file holds
every split. :func:`prepare_xbmu_amdo31` writes ``<save_folder>/<dialect>_<split>.csv``
with the columns ``ID,duration,wav,spk_id,wrd,dialect``: ``ID`` is the wav name
without ``.wav`` (``<spk>-<uttid>``, unique in the corpus), ``spk_id`` the parent
folder, ``wrd`` the transcript's tokens joined by single spaces in Unicode NFC,
``dialect`` ``amdo``.

Ids. The wav is ``<spk>-<uttid>.wav`` and the transcript line starts with the bare
``<uttid>`` (what the Kaldi and Lhotse recipes for this corpus assume: they look the
transcript up by the part of the name after the first ``-``). A transcript that
uses the full ``<spk>-<uttid>`` instead works too: the full name is looked up
first, then the part after ``<spk>-`` (or, for a name that does not start with its
folder's name, after its first ``-``). Several speakers may share a bare id when
they read the same prompt; each gets that transcript.

Bad input, case by case:

* a transcript line without an id (it starts with whitespace or with Tibetan
  text) or without text, a duplicated id, text that is not UTF-8: ``ValueError``
  naming the file and line (the transcript file is damaged; nothing it says can
  be trusted);
* a wav that cannot be read, an utterance name found twice, a tarball that is
  damaged or holds unsafe paths: ``ValueError`` naming the file;
* a missing corpus, split folder and tarball: ``FileNotFoundError``;
* audio with no transcript, a wav outside ``<split>/<spk>/`` and a transcript id
  with no audio in the prepared splits: skipped, as the Kaldi and Lhotse recipes
  do, but never silently: one summary log line gives the counts, and every
  skipped item is listed in ``<save_folder>/xbmu_amdo31_skipped.tsv``;
* a split in which nothing is left: ``ValueError`` (most likely the ids do not
  follow the convention above; the message shows one name of each kind).
"""

import gzip
import logging
import shutil
import tarfile
import zlib
from pathlib import Path, PurePosixPath

import soundfile

from speechbrain_sparse.data.generic_layout import read_transcripts
from speechbrain_sparse.data.manifests import MANIFEST_FIELDS
from speechbrain_sparse.errors import MissingInputError, UserInputError
from speechbrain_sparse.fileio import (
    read_json,
    replace_folder,
    write_csv_atomic,
    write_json_atomic,
    write_text_atomic,
)
from speechbrain_sparse.metrics import normalize_tibetan

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
TRANSCRIPT_FILE = Path("transcript") / "transcript_clean.txt"
OPTIONS_FILE = "xbmu_amdo31_prepare.json"
SKIPPED_FILE = "xbmu_amdo31_skipped.tsv"


def prepare_xbmu_amdo31(
    data_folder, save_folder, splits=SPLITS, dialect="amdo", skip_prep=False
):
    """Writes ``<save_folder>/<dialect>_<split>.csv`` for XBMU-AMDO31.

    Skipped when ``save_folder`` already holds the CSVs of a preparation with the
    same options (recorded in ``xbmu_amdo31_prepare.json``, written last); other
    options prepare again.

    Arguments
    ---------
    data_folder : str or Path
        The corpus root (holding ``data/wav`` and ``data/transcript``), or its
        ``data`` folder.
    save_folder : str or Path
        Where the CSVs, the options and the list of skipped items go.
    splits : sequence of str
        The splits to prepare (``train``, ``dev``, ``test``).
    dialect : str
        The ``dialect`` column and the CSV names' prefix.
    skip_prep : bool
        When True, do nothing and return the expected CSV paths.

    Returns
    -------
    dict
        ``{"<dialect>_<split>": Path to its CSV}``.

    Example
    -------
    >>> prepare_xbmu_amdo31("corpora/xbmu_amdo31", "manifests")  # doctest: +SKIP
    {'amdo_train': PosixPath('manifests/amdo_train.csv'), ...}
    """
    save_folder = Path(save_folder)
    csv_paths = {
        f"{dialect}_{split}": save_folder / f"{dialect}_{split}.csv" for split in splits
    }
    if skip_prep:
        return csv_paths
    data_dir = find_data_dir(data_folder)
    options = {
        "data_folder": str(data_dir),
        "splits": list(splits),
        "dialect": dialect,
        "normalize": "speechbrain_sparse.metrics.normalize_tibetan",
    }
    options_path = save_folder / OPTIONS_FILE
    if read_json(options_path) == options and all(
        path.is_file() for path in csv_paths.values()
    ):
        logger.info("XBMU-AMDO31 already prepared in %s, skipping", save_folder)
        return csv_paths
    options_path.unlink(missing_ok=True)  # the CSVs are about to change

    transcript_path = data_dir / TRANSCRIPT_FILE
    if not transcript_path.is_file():
        raise MissingInputError(f"missing transcript file {transcript_path}")
    transcripts = read_transcripts(transcript_path, normalize=normalize_tibetan)
    used_ids, seen_names, skipped, counts = set(), {}, [], {}
    for split in splits:
        split_dir = unpack_split(data_dir / "wav", split)
        rows = split_rows(
            split_dir, transcripts, dialect, used_ids, seen_names, skipped
        )
        if not rows:
            raise UserInputError(
                _nothing_matched(split_dir, transcript_path, transcripts)
            )
        write_csv_atomic(csv_paths[f"{dialect}_{split}"], rows, MANIFEST_FIELDS)
        counts[split] = len(rows)
    for utt_id in sorted(transcripts.keys() - used_ids):
        skipped.append(("transcript without audio", "-", utt_id))

    _report(skipped, counts, transcript_path, save_folder / SKIPPED_FILE)
    write_json_atomic(options_path, options)
    return csv_paths


def find_data_dir(data_folder):
    """The corpus's ``data`` folder: ``<data_folder>/data`` or ``data_folder``."""
    data_folder = Path(data_folder).resolve()
    for candidate in (data_folder / "data", data_folder):
        if (candidate / "wav").is_dir() and (candidate / "transcript").is_dir():
            return candidate
    raise MissingInputError(
        f"{data_folder} is not an XBMU-AMDO31 folder: expected data/wav/ and "
        f"data/transcript/ in it"
    )


def unpack_split(wav_folder, split):
    """Returns ``<wav_folder>/<split>``, unpacking ``<split>.tar.gz`` if it is missing.

    The tarball is unpacked into a hidden sibling folder first and its
    ``<split>/`` folder is moved into place only when complete, so an
    interrupted unpacking is redone, never half used. Only plain files and
    folders with relative paths inside the archive are accepted.

    Arguments
    ---------
    wav_folder : Path
        ``data/wav`` of the corpus.
    split : str
        ``train``, ``dev`` or ``test``.

    Returns
    -------
    Path
        The split folder.
    """
    split_dir = wav_folder / split
    if split_dir.is_dir():
        return split_dir
    tarball = wav_folder / f"{split}.tar.gz"
    if not tarball.is_file():
        raise MissingInputError(f"missing split folder {split_dir} (and no {tarball})")
    logger.info("Unpacking %s", tarball)
    partial = wav_folder / f".{split}.unpacking"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        with tarfile.open(tarball, "r:*") as archive:
            members = _safe_members(archive, tarball)
            if hasattr(tarfile, "data_filter"):
                archive.extractall(partial, members=members, filter="data")
            else:  # Python without extraction filters; members already checked
                archive.extractall(partial, members=members)
        if not (partial / split).is_dir():
            found = sorted(path.name for path in partial.iterdir())[:5]
            raise ValueError(f"{tarball}: no top-level folder {split}/ (found {found})")
        replace_folder(partial / split, split_dir)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise UserInputError(f"{tarball}: cannot unpack: {error}") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return split_dir


def _safe_members(archive, tarball):
    """The archive's members, refusing links, devices and paths leaving it."""
    members = archive.getmembers()
    for member in members:
        path = PurePosixPath(member.name)
        if not (member.isfile() or member.isdir()):
            raise UserInputError(
                f"{tarball}: refusing {member.name!r} (not a plain file)"
            )
        if path.is_absolute() or ".." in path.parts:
            raise UserInputError(f"{tarball}: refusing {member.name!r} (unsafe path)")
    return members


def split_rows(split_dir, transcripts, dialect, used_ids, seen_names, skipped):
    """Manifest rows of one split folder, sorted by speaker and name.

    Arguments
    ---------
    split_dir : Path
        ``data/wav/<split>``.
    transcripts : dict
        Transcript id -> normalised text.
    dialect : str
        The ``dialect`` column.
    used_ids : set
        Gets the transcript ids used here.
    seen_names : dict
        Utterance name -> wav of every split so far (duplicates are errors).
    skipped : list
        Gets ``(reason, split, item)`` for each skipped wav.

    Returns
    -------
    list of dict
        One row per wav that has a transcript.
    """
    rows = []
    for wav in sorted(split_dir.rglob("*")):
        if wav.suffix.lower() != ".wav" or not wav.is_file():
            continue
        if wav.parent.parent != split_dir:
            skipped.append(("audio outside <split>/<spk>/", split_dir.name, str(wav)))
            continue
        name, speaker = wav.stem, wav.parent.name
        if name in seen_names:
            raise UserInputError(
                f"{wav}: utterance name also used by {seen_names[name]}"
            )
        seen_names[name] = wav
        known = [i for i in transcript_ids(name, speaker) if i in transcripts]
        if not known:
            skipped.append(("audio without transcript", split_dir.name, str(wav)))
            continue
        utt_id = known[0]
        used_ids.add(utt_id)
        rows.append(
            {
                "ID": name,
                "duration": _duration(wav),
                "wav": str(wav),
                "spk_id": speaker,
                "wrd": transcripts[utt_id],
                "dialect": dialect,
            }
        )
    return rows


def transcript_ids(name, speaker):
    """The transcript ids a wav named ``name`` in folder ``speaker`` may have.

    Example
    -------
    >>> transcript_ids("A001-0042", "A001")
    ['A001-0042', '0042']
    >>> transcript_ids("B7-x-3", "A001")
    ['B7-x-3', 'x-3']
    """
    if name.startswith(f"{speaker}-"):
        return [name, name[len(speaker) + 1 :]]
    if "-" in name:
        return [name, name.split("-", 1)[1]]
    return [name]


def _duration(wav):
    """Duration of ``wav`` in seconds; a ValueError naming it if unreadable."""
    try:
        info = soundfile.info(str(wav))
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise UserInputError(f"{wav}: cannot read audio: {error}") from None
    return round(info.frames / info.samplerate, 5)


def _nothing_matched(split_dir, transcript_path, transcripts):
    """The message for a split without a single usable utterance."""
    wavs = sorted(p for p in split_dir.glob("*/*") if p.suffix.lower() == ".wav")
    if not wavs:
        return f"{split_dir}: no <spk>/<spk>-<uttid>.wav files"
    example_id = next(iter(transcripts), "none")
    return (
        f"{split_dir}: none of its {len(wavs)} wav files has a transcript in "
        f"{transcript_path} (a wav: {wavs[0].parent.name}/{wavs[0].name}; a "
        f"transcript id: {example_id!r}); expected ids <uttid> or <spk>-<uttid>"
    )


def _report(skipped, counts, transcript_path, skipped_path):
    """Logs one summary line and lists the skipped items in ``skipped_path``."""
    lines = ["reason\tsplit\titem\n"]
    lines += [f"{reason}\t{split}\t{item}\n" for reason, split, item in skipped]
    write_text_atomic(skipped_path, "".join(lines))
    by_reason = {}
    for reason, _, _ in skipped:
        by_reason[reason] = by_reason.get(reason, 0) + 1
    written = ", ".join(f"{split} {count}" for split, count in counts.items())
    skips = ", ".join(f"{count} {reason}" for reason, count in by_reason.items())
    log = logger.warning if skipped else logger.info
    log(
        "XBMU-AMDO31: wrote %s utterances; skipped %s (from %s; listed in %s)",
        written,
        skips or "nothing",
        transcript_path,
        skipped_path,
    )
