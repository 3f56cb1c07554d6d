"""The ground floor: reading and writing files, safely.

Nothing here imports the rest of the package but the error types of
:mod:`speechbrain_sparse.errors`, so every layer may use it.

* :mod:`~speechbrain_sparse.fileio.writing`: atomic writes of text, CSV, JSON,
  ``torch.save`` files and whole folders;
* :mod:`~speechbrain_sparse.fileio.reading`: manifests, audio and JSON read
  with errors that name the file (:class:`ManifestError`);
* :mod:`~speechbrain_sparse.fileio.records`: the versioned, checksummed record
  format of mask files and sparse checkpoints;
* :mod:`~speechbrain_sparse.fileio.guards`: checks made before writing (the
  place takes files; no NaN or inf in a tensor, :class:`NonFiniteTensorError`).
"""

from speechbrain_sparse.fileio.guards import (
    NonFiniteTensorError,
    check_finite,
    check_finite_file,
    check_writable,
)
from speechbrain_sparse.fileio.reading import (
    ManifestError,
    check_audio_file,
    read_audio_checked,
    read_json,
    read_manifest,
    row_place,
)
from speechbrain_sparse.fileio.records import (
    check_sha256,
    dtype_from_name,
    dtype_name,
    load_record,
    pack_bits,
    save_record,
    sha256_of,
    unpack_bits,
)
from speechbrain_sparse.fileio.writing import (
    atomic_folder,
    atomic_write,
    replace_folder,
    torch_save_atomic,
    write_csv_atomic,
    write_json_atomic,
    write_text_atomic,
)

__all__ = [
    "ManifestError",
    "NonFiniteTensorError",
    "atomic_folder",
    "atomic_write",
    "check_audio_file",
    "check_finite",
    "check_finite_file",
    "check_sha256",
    "check_writable",
    "dtype_from_name",
    "dtype_name",
    "load_record",
    "pack_bits",
    "read_audio_checked",
    "read_json",
    "read_manifest",
    "replace_folder",
    "row_place",
    "save_record",
    "sha256_of",
    "torch_save_atomic",
    "unpack_bits",
    "write_csv_atomic",
    "write_json_atomic",
    "write_text_atomic",
]
