"""The columns of the manifests this package writes.

The atomic writers and ``read_json`` live in :mod:`speechbrain_sparse.fileio`;
they are importable from here too, for the prepare scripts and tools that use
them next to :data:`MANIFEST_FIELDS`.

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

from speechbrain_sparse.fileio import (
    read_json,
    write_csv_atomic,
    write_json_atomic,
    write_text_atomic,
)

__all__ = [
    "MANIFEST_FIELDS",
    "read_json",
    "write_csv_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

MANIFEST_FIELDS = ("ID", "duration", "wav", "spk_id", "wrd", "dialect")
