"""Atomic writers for manifests and small metadata files.

A reader never sees half a file: everything is written to a temporary name in the same
folder and moved into place with ``os.replace``.

Example
-------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> rows = [{"ID": "u1", "duration": 1.5, "wav": "/a/u1.wav", "spk_id": "s1",
...          "wrd": "HELLO", "dialect": "en-us"}]
>>> write_csv_atomic(folder / "train.csv", rows, MANIFEST_FIELDS)
>>> (folder / "train.csv").read_text().splitlines()[1]
'u1,1.5,/a/u1.wav,s1,HELLO,en-us'
"""

import csv
import json
import os
from pathlib import Path

MANIFEST_FIELDS = ("ID", "duration", "wav", "spk_id", "wrd", "dialect")


def _temporary_name(path):
    """A temporary sibling of ``path``, unique to this process."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def write_text_atomic(path, text):
    """Writes ``text`` to ``path`` atomically (temporary file, then ``os.replace``).

    Arguments
    ---------
    path : str or Path
        The destination; its folder is created when missing.
    text : str
        The content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_name(path)
    with open(temporary, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def write_csv_atomic(path, rows, fieldnames):
    """Writes ``rows`` (dicts) as a CSV with exactly ``fieldnames`` columns, atomically.

    Arguments
    ---------
    path : str or Path
        The destination CSV.
    rows : iterable of dict
        One dict per line, keyed by ``fieldnames``.
    fieldnames : sequence of str
        The columns, in order.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_name(path)
    with open(temporary, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, list(fieldnames), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def write_json_atomic(path, data):
    """Writes ``data`` as indented, key-sorted JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path):
    """Returns the JSON content of ``path``, or ``None`` when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def split_manifests(folders, dialects, splits, pattern="{dialect}_{split}.csv"):
    """Test-set name (``<dialect>_<split>``) -> manifest path, for a stage YAML.

    Arguments
    ---------
    folders : str or Mapping[str, str]
        The folder of every dialect's manifests, or dialect -> its folder.
    dialects : list of str
        The dialects evaluated.
    splits : list of str
        The splits evaluated.
    pattern : str
        The manifest's path inside its folder.

    Example
    -------
    >>> tests = split_manifests("corpus", ["en-us"], ["dev", "test"],
    ...                         "{dialect}/{split}.csv")
    >>> tests["en-us_test"]
    PosixPath('corpus/en-us/test.csv')
    >>> split_manifests({"amdo": "source"}, ["amdo"], ["test"])
    {'amdo_test': PosixPath('source/amdo_test.csv')}
    >>> split_manifests({"amdo": "source"}, ["kham"], ["test"])
    Traceback (most recent call last):
    ...
    ValueError: eval_dialects: 'kham' has no manifest folder (known: amdo)
    """
    manifests = {}
    for dialect in dialects:
        if isinstance(folders, (str, os.PathLike)):
            folder = folders
        elif dialect in folders:
            folder = folders[dialect]
        else:
            raise ValueError(f"eval_dialects: {dialect!r} has no manifest folder "
                             f"(known: {', '.join(folders)})")
        for split in splits:
            manifests[f"{dialect}_{split}"] = Path(folder) / pattern.format(
                dialect=dialect, split=split)
    return manifests
