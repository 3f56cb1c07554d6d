"""A small speech benchmark on the synthetic corpus, standing in for SUPERB.

Three tasks probe a frozen upstream (``asr/probing.py``), each read from the
multi-dialect synthetic corpus (``<corpus>/<dialect>/<split>.csv``):

* ``asr``: the source dialect's train / dev / test manifests as they are
  (characters, CTC);
* ``dialect_id``: one class per dialect (the source and the targets); each
  dialect's own train / dev / test utterances. The source has many more
  training utterances than a target, so every class's train rows are cut to
  the smallest class's count (a seeded draw; ``balance=False`` keeps all);
* ``speaker_id``: the speakers of the source's *train* split, one class
  each; every speaker's utterances are split 80 / 10 / 10 (a seeded draw per
  speaker, at least one utterance in dev and in test), so dev and test hold
  new utterances of known speakers, as in SUPERB's SID.

Every manifest keeps the corpus columns and adds ``label`` (the ASR ones
carry the dialect as label too, unused). They are written atomically to
``<out_dir>/<task>/<split>.csv``, with ``<task>/classes.txt`` (one class a
line, sorted) for the classification tasks.

Example
-------
>>> import tempfile, pathlib
>>> from speechbrain_sparse.fileio import write_csv_atomic
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> for dialect, n in [("a", 10), ("b", 4)]:
...     for split in SPLITS:
...         rows = [{"ID": f"{dialect}{split}{i}", "duration": 1.0, "wav": "x.wav",
...                  "spk_id": f"{dialect}{i % 2}", "wrd": "HI", "dialect": dialect}
...                 for i in range(n if split == "train" else 2)]
...         write_csv_atomic(root / dialect / f"{split}.csv", rows, MANIFEST_FIELDS)
>>> tasks = build_mini_superb(root, root / "bench", "a", ["b"])
>>> sorted(tasks), read_classes(tasks["dialect_id"]["train"])
(['asr', 'dialect_id', 'speaker_id'], ['a', 'b'])
>>> [len(read_manifest(tasks["speaker_id"][s])) for s in SPLITS]
[6, 2, 2]
"""

import random
from pathlib import Path

from speechbrain_sparse.data.manifests import MANIFEST_FIELDS
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.fileio import read_manifest, write_csv_atomic, write_text_atomic

TASKS = ("asr", "dialect_id", "speaker_id")
SPLITS = ("train", "dev", "test")
FIELDS = (*MANIFEST_FIELDS, "label")
CLASSES_FILE = "classes.txt"


def _rows(corpus_root, dialect, split):
    path = Path(corpus_root) / dialect / f"{split}.csv"
    if not path.is_file():
        raise UserInputError(f"{path}: no such manifest (is {dialect!r} a dialect "
                             f"of the corpus at {corpus_root}?)")
    return read_manifest(path, MANIFEST_FIELDS)


def _labelled(rows, label_of):
    return [{**{key: row[key] for key in MANIFEST_FIELDS}, "label": label_of(row)}
            for row in rows]


def asr_rows(corpus_root, source):
    """Split -> the source dialect's rows (label: the dialect)."""
    return {split: _labelled(_rows(corpus_root, source, split),
                             lambda row: row["dialect"]) for split in SPLITS}


def dialect_rows(corpus_root, dialects, seed=0, balance=True):
    """Split -> rows of every dialect, labelled with it; train balanced."""
    splits = {split: {dialect: _labelled(_rows(corpus_root, dialect, split),
                                         lambda row, d=dialect: d)
                      for dialect in dialects} for split in SPLITS}
    if balance:
        smallest = min(len(rows) for rows in splits["train"].values())
        for dialect, rows in splits["train"].items():
            kept = set(random.Random(f"{seed}-{dialect}").sample(
                range(len(rows)), smallest))
            splits["train"][dialect] = [row for i, row in enumerate(rows) if i in kept]
    return {split: [row for dialect in dialects for row in by_dialect[dialect]]
            for split, by_dialect in splits.items()}


def speaker_rows(corpus_root, source, seed=0, dev=0.1, test=0.1):
    """Split -> the source train speakers' utterances, split per speaker."""
    by_speaker = {}
    for row in _labelled(_rows(corpus_root, source, "train"),
                         lambda row: row["spk_id"]):
        by_speaker.setdefault(row["label"], []).append(row)
    splits = {split: [] for split in SPLITS}
    for speaker, rows in sorted(by_speaker.items()):
        if len(rows) < 3:
            raise UserInputError(f"speaker {speaker!r} of {source} has {len(rows)} "
                                 "train utterances; speaker ID needs at least 3")
        order = list(range(len(rows)))
        random.Random(f"{seed}-{speaker}").shuffle(order)
        n_dev = max(1, round(dev * len(rows)))
        n_test = max(1, round(test * len(rows)))
        picked = {"dev": order[:n_dev], "test": order[n_dev:n_dev + n_test],
                  "train": order[n_dev + n_test:]}
        for split, indices in picked.items():
            splits[split] += [rows[i] for i in sorted(indices)]
    return splits


def read_classes(manifest):
    """The sorted ``classes.txt`` next to a task's manifest."""
    path = Path(manifest).parent / CLASSES_FILE
    return path.read_text(encoding="utf-8").split()


def build_mini_superb(corpus_root, out_dir, source, targets, seed=0, balance=True):
    """Writes the three tasks' manifests; returns ``{task: {split: path}}``.

    Arguments
    ---------
    corpus_root : str or Path
        A synthetic corpus (``<corpus_root>/<dialect>/<split>.csv``).
    out_dir : str or Path
        Where ``<task>/<split>.csv`` go.
    source : str
        The source dialect (ASR, speaker ID).
    targets : sequence of str
        The other dialects of dialect ID.
    seed : int
        Seeds the balancing draw and the speaker splits.
    balance : bool
        Cut every dialect's train rows to the smallest dialect's count.

    Returns
    -------
    dict
        Task -> split -> manifest path.
    """
    dialects = [source, *targets]
    if len(set(dialects)) != len(dialects) or not targets:
        raise UserInputError(f"dialect ID needs distinct source and targets, not "
                             f"{dialects}")
    built = {"asr": asr_rows(corpus_root, source),
             "dialect_id": dialect_rows(corpus_root, dialects, seed, balance),
             "speaker_id": speaker_rows(corpus_root, source, seed)}
    paths = {}
    for task, splits in built.items():
        folder = Path(out_dir) / task
        paths[task] = {}
        for split, rows in splits.items():
            paths[task][split] = folder / f"{split}.csv"
            write_csv_atomic(paths[task][split], rows, FIELDS)
        if task != "asr":
            classes = sorted({row["label"] for row in splits["train"]})
            write_text_atomic(folder / CLASSES_FILE, "".join(f"{c}\n" for c in classes))
    return paths
