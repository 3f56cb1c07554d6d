"""The columns of the manifests this package writes, and where a stage finds them.

The atomic writers and readers live in :mod:`speechbrain_sparse.fileio`.

Example
-------
>>> import tempfile, pathlib
>>> from speechbrain_sparse.fileio import write_csv_atomic
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> rows = [{"ID": "u1", "duration": 1.5, "wav": "/a/u1.wav", "spk_id": "s1",
...          "wrd": "HELLO", "dialect": "en-us"}]
>>> write_csv_atomic(folder / "train.csv", rows, MANIFEST_FIELDS)
>>> (folder / "train.csv").read_text().splitlines()[1]
'u1,1.5,/a/u1.wav,s1,HELLO,en-us'
"""

import os
from pathlib import Path

from speechbrain_sparse.errors import UserInputError

MANIFEST_FIELDS = ("ID", "duration", "wav", "spk_id", "wrd", "dialect")


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
    >>> split_manifests({"amdo": "source"}, ["kham"], ["test"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    speechbrain_sparse.errors.UserInputError: eval_dialects: 'kham' has no ... amdo)
    """
    manifests = {}
    for dialect in dialects:
        if isinstance(folders, (str, os.PathLike)):
            folder = folders
        elif dialect in folders:
            folder = folders[dialect]
        else:
            raise UserInputError(f"eval_dialects: {dialect!r} has no manifest "
                                 f"folder (known: {', '.join(folders)})")
        for split in splits:
            manifests[f"{dialect}_{split}"] = Path(folder) / pattern.format(
                dialect=dialect, split=split)
    return manifests
