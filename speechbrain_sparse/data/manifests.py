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


def check_declared_manifests(hparams, train, valid, tests, writer):
    """Raises unless the YAML's ``train_csv``, ``valid_csv``, ``test_csvs`` are the
    manifests the preparation wrote.

    Arguments
    ---------
    hparams : dict
        The stage's hparams.
    train, valid : path
        The training and validation manifests written.
    tests : Mapping[str, path]
        Test-set name -> manifest written.
    writer : str
        What wrote them (in the message).

    Example
    -------
    >>> hparams = {"train_csv": "m/train.csv", "valid_csv": "m/dev.csv",
    ...            "test_csvs": {"test": "m/test.csv"}}
    >>> check_declared_manifests(hparams, "m/train.csv", "m/dev.csv",
    ...                          {"test": "m/test.csv"}, "prepare.py")
    >>> try:
    ...     check_declared_manifests(hparams, "m/other.csv", "m/dev.csv",
    ...                              {"test": "m/test.csv"}, "prepare.py")
    ... except ValueError as error:
    ...     print(str(error).split(",")[0])
    train_csv is m/train.csv
    """
    pairs = [("train_csv", hparams["train_csv"], train),
             ("valid_csv", hparams["valid_csv"], valid)]
    pairs += [(f"test_csvs[{name}]", hparams["test_csvs"][name], path)
              for name, path in tests.items()]
    for key, declared, written in pairs:
        if str(declared) != str(written):
            raise UserInputError(f"{key} is {declared}, but {writer} wrote that "
                                 f"manifest to {written}")

