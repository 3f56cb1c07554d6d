"""Versioned, checksummed ``torch.save`` records (mask files, sparse checkpoints).

A record is a dict written with ``torch.save`` (so it loads with
``weights_only=True``) whose ``format`` says what it is and ``format_version``
which layout of it. :func:`save_record` writes it atomically;
:func:`load_record` checks name and version and turns every way a damaged file
fails into a ``ValueError`` naming the file. Bool tensors are stored packed 8
per byte (:func:`pack_bits`, numpy ``packbits``, row-major) and payloads carry
the sha256 of their bytes (:func:`sha256_of`, :func:`check_sha256`).

Example
-------
>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "r.pt")
>>> bits = pack_bits(torch.tensor([True, False, True]))
>>> save_record(path, "demo.Bits", 1, {"bits": bits, "sha256": sha256_of([bits])})
>>> def parse(record):
...     check_sha256([record["bits"]], record["sha256"])
...     return unpack_bits(record["bits"], 3)
>>> load_record(path, "demo.Bits", 1, parse, "bits file")
tensor([ True, False,  True])
>>> load_record(path, "demo.Other", 1, parse, "other file")
Traceback (most recent call last):
...
speechbrain_sparse.errors.UserInputError: ...r.pt: not a demo.Other file
"""

import hashlib
import os

import numpy as np
import torch

from speechbrain_sparse.errors import MissingInputError, UserInputError
from speechbrain_sparse.fileio.writing import torch_save_atomic

PARSE_ERRORS = (KeyError, TypeError, RuntimeError, ValueError, AttributeError)


def save_record(path, format_name, version, fields):
    """Writes ``{"format", "format_version", **fields}`` to ``path`` atomically.

    Arguments
    ---------
    path : str or os.PathLike
        The destination.
    format_name : str
        What the file is, e.g. ``"speechbrain_sparse.ParameterMask"``.
    version : int
        The layout version of ``fields``.
    fields : dict
        The content (tensors, numbers, strings, lists and dicts of them).
    """
    torch_save_atomic(
        {"format": format_name, "format_version": version, **fields}, path
    )


def load_record(path, format_name, version, parse, what):
    """Reads a record written by :func:`save_record` and returns ``parse(record)``.

    Arguments
    ---------
    path : str or os.PathLike
        The file.
    format_name : str
        The ``format`` it must have.
    version : int
        The newest layout this reader understands.
    parse : callable
        Turns the record dict into the object to return; a ``KeyError``,
        ``TypeError``, ``RuntimeError``, ``ValueError`` or ``AttributeError``
        it raises means the file is corrupted.
    what : str
        What to call the file in messages (``"mask file"``).

    Returns
    -------
    object
        What ``parse`` returns.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    MissingInputError
        If there is no such file.
    UserInputError
        If the file is truncated, corrupted, of another format or of a newer
        version; the message names the file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingInputError(f"{what} not found: {path}")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserInputError(f"{path}: cannot read {what} (truncated, corrupted, "
                             f"or not a torch file): {reason}") from error
    if not isinstance(record, dict) or record.get("format") != format_name:
        raise UserInputError(f"{path}: not a {format_name} file")
    if record.get("format_version", 0) > version:
        raise UserInputError(f"{path}: format version {record['format_version']} is "
                             f"newer than this reader ({version})")
    try:
        return parse(record)
    except PARSE_ERRORS as error:
        raise UserInputError(f"{path}: corrupted {what}: {error}") from error


def pack_bits(mask):
    """Returns a bool tensor's entries packed 8 per byte (row-major), as uint8.

    Example
    -------
    >>> pack_bits(torch.tensor([[True, True], [False, True]]))
    tensor([208], dtype=torch.uint8)
    """
    return torch.from_numpy(np.packbits(mask.reshape(-1).numpy()))


def unpack_bits(packed, count):
    """Returns the first ``count`` bits of ``packed`` as a flat bool tensor.

    Raises
    ------
    ValueError
        If ``packed`` does not hold exactly the bytes ``count`` bits need.

    Example
    -------
    >>> unpack_bits(torch.tensor([208], dtype=torch.uint8), 4)
    tensor([ True,  True, False,  True])
    """
    if packed.numel() != (count + 7) // 8:
        raise ValueError(f"{packed.numel()} packed bytes cannot hold exactly "
                         f"{count} bits")
    return torch.from_numpy(np.unpackbits(packed.numpy(), count=count).astype(bool))


def sha256_of(tensors):
    """Returns the sha256 (hex) of the raw bytes of ``tensors``, one after another.

    Example
    -------
    >>> sha256_of([torch.tensor([1, 2], dtype=torch.uint8)])[:12]
    'a12871fee210'
    """
    hasher = hashlib.sha256()
    for tensor in tensors:
        hasher.update(tensor.detach().cpu().contiguous().reshape(-1)
                      .view(torch.uint8).numpy())
    return hasher.hexdigest()


def dtype_name(dtype):
    """Returns how a record names ``dtype`` (``torch.bfloat16`` -> ``"bfloat16"``).

    Example
    -------
    >>> dtype_name(torch.bfloat16)
    'bfloat16'
    """
    return str(dtype).replace("torch.", "")


def dtype_from_name(name):
    """Returns the ``torch.dtype`` a record names (inverse of :func:`dtype_name`).

    Raises
    ------
    ValueError
        If ``name`` is not a torch dtype (a corrupted record).

    Example
    -------
    >>> dtype_from_name("float16")
    torch.float16
    >>> dtype_from_name("nn")
    Traceback (most recent call last):
    ...
    ValueError: 'nn' is not a torch dtype
    """
    dtype = getattr(torch, str(name), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"{name!r} is not a torch dtype")
    return dtype


def check_sha256(tensors, expected):
    """Raises ``ValueError("payload checksum mismatch")`` unless they hash to it."""
    if sha256_of(tensors) != expected:
        raise ValueError("payload checksum mismatch")
