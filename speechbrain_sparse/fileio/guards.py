"""Checks made before writing: the place takes files, the tensors are finite.

:func:`check_writable` lets a command or a stage fail in its first second when
its output cannot be written (no permission, a read-only file system, a file
where a folder should be), not after calibration or training.
:func:`check_finite` keeps a model with a NaN or infinite entry from ever
being exported: such a model is a failed training run, never an input to the
next stage, so it raises :class:`NonFiniteTensorError` (not a user error: the
traceback shows where it came from) and the caller writes nothing.

Example
-------
>>> import torch
>>> check_finite({"w": torch.ones(2)}, "model.ckpt")
>>> try:
...     check_finite({"w": torch.tensor([1.0, float("nan")])}, "model.ckpt")
... except NonFiniteTensorError as error:
...     print(error)
model.ckpt: tensor 'w' has 1 non-finite entries (NaN or inf) of 2
"""

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch

from speechbrain_sparse.errors import UserInputError


class NonFiniteTensorError(RuntimeError):
    """A tensor about to be written holds NaN or inf; the message names it."""


def check_finite(tensors, where):
    """Raises NonFiniteTensorError naming the first tensor with a NaN or inf.

    Arguments
    ---------
    tensors : Mapping
        Name -> tensor (a state dict); nested mappings, lists and non-tensor
        values (a SpeechBrain normaliser's counters) are walked or skipped.
    where : str
        What is being written (a file), at the start of the message.

    Raises
    ------
    NonFiniteTensorError
        ``<where>: tensor '<name>' has <n> non-finite entries ...``.
    """
    for name, tensor in _floating_tensors(tensors):
        finite = torch.isfinite(tensor)
        if not bool(finite.all()):
            bad = int(finite.numel() - finite.sum())
            raise NonFiniteTensorError(
                f"{where}: tensor {name!r} has {bad} non-finite entries (NaN or "
                f"inf) of {tensor.numel()}")


def _floating_tensors(value, prefix=""):
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() or value.is_complex():
            yield prefix, value.detach()
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _floating_tensors(item, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _floating_tensors(item, f"{prefix}[{index}]")


def check_finite_file(path):
    """:func:`check_finite` on a ``torch.save`` file (read on the CPU).

    Example
    -------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.ckpt"
    >>> torch.save({"w": torch.zeros(3)}, path)
    >>> check_finite_file(path)
    """
    check_finite(torch.load(path, map_location="cpu"), os.fspath(path))


def check_writable(path, what="output"):
    """Raises UserInputError unless ``path`` (a file or folder) can be written.

    The nearest existing folder on the way to ``path`` must be a folder that
    takes a new file (one is created and removed there); nothing else is
    created, so a check that passes leaves no trace.

    Arguments
    ---------
    path : str or os.PathLike
        The file or folder that will be written (it may not exist yet).
    what : str
        The option or key that names it, at the start of the message.

    Raises
    ------
    UserInputError
        ``<what>: cannot write <path>: <reason>``.

    Example
    -------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> check_writable(folder / "new" / "model", "--out")
    >>> _ = (folder / "file").write_text("x")
    >>> try:
    ...     check_writable(folder / "file" / "model", "--out")
    ... except UserInputError as error:
    ...     print(str(error).replace(str(folder), "F"))
    --out: cannot write F/file/model: F/file is a file, not a folder
    """
    path = Path(path)
    existing = path if path.is_dir() else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserInputError(
            f"{what}: cannot write {path}: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise UserInputError(
            f"{what}: cannot write {path}: {error.strerror or error} in "
            f"{existing}") from None
