"""Atomic writes: a reader never sees half a file or half a folder.

Every file is written under a temporary name in its destination's folder and
moved into place with ``os.replace`` (a rename); when writing fails, the
temporary file is removed and an existing file under the final name is left as
it was. :func:`atomic_folder` and :func:`replace_folder` do the same for a
whole folder. Files and folders get the permissions the user's umask gives
(``0644`` and ``0755`` with the usual ``022``), as ``open`` and ``mkdir`` do.

Example
-------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> write_csv_atomic(folder / "a.csv", [{"ID": "u1", "wrd": "HI"}], ["ID", "wrd"])
>>> (folder / "a.csv").read_text()
'ID,wrd\\nu1,HI\\n'
>>> write_json_atomic(folder / "b.json", {"z": 1, "a": 2})
>>> (folder / "b.json").read_text()
'{\\n  "a": 2,\\n  "z": 1\\n}\\n'
>>> sorted(path.name for path in folder.iterdir())
['a.csv', 'b.json']
"""

import contextlib
import csv
import json
import os
import secrets
import shutil
from pathlib import Path

import torch


@contextlib.contextmanager
def atomic_write(path, mode="w"):
    """Opens a temporary sibling of ``path``; moves it to ``path`` once written.

    Arguments
    ---------
    path : str or os.PathLike
        The destination; its folder is created when missing.
    mode : str
        ``"w"`` (text: UTF-8, newlines written as given) or ``"wb"`` (bytes).

    Yields
    ------
    file object
        The open temporary file. It is flushed, synced and renamed to ``path``
        when the ``with`` block ends normally, removed when it raises.

    Example
    -------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "sub" / "x.bin"
    >>> with atomic_write(path, "wb") as handle:
    ...     _ = handle.write(b"ab")
    >>> path.read_bytes()
    b'ab'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    text = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
    try:
        with open(temporary, mode, **text) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text_atomic(path, text):
    """Writes ``text`` to ``path`` atomically (see :func:`atomic_write`).

    Arguments
    ---------
    path : str or os.PathLike
        The destination; its folder is created when missing.
    text : str
        The content.
    """
    with atomic_write(path) as handle:
        handle.write(text)


def write_csv_atomic(path, rows, fieldnames):
    """Writes ``rows`` (dicts) as a CSV with exactly ``fieldnames`` columns, atomically.

    Arguments
    ---------
    path : str or os.PathLike
        The destination CSV.
    rows : iterable of dict
        One dict per line, keyed by ``fieldnames``.
    fieldnames : sequence of str
        The columns, in order.
    """
    with atomic_write(path) as handle:
        writer = csv.DictWriter(handle, list(fieldnames), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_json_atomic(path, data):
    """Writes ``data`` as indented, key-sorted JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def torch_save_atomic(obj, path):
    """``torch.save`` of ``obj`` to ``path``, atomically.

    Example
    -------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "t.pt")
    >>> torch_save_atomic({"w": torch.ones(2)}, path)
    >>> torch.load(path, weights_only=True)["w"]
    tensor([1., 1.])
    """
    with atomic_write(path, "wb") as handle:
        torch.save(obj, handle)


def replace_folder(staging, destination):
    """Swaps the finished folder ``staging`` in as ``destination`` (a rename each).

    An existing ``destination`` is moved aside first and removed only once the
    new folder is in place, so readers never see a half-written folder.

    Arguments
    ---------
    staging : str or os.PathLike
        The complete new folder, on the same file system as ``destination``.
    destination : str or os.PathLike
        The folder to create or replace.

    Example
    -------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("old", "new"):
    ...     (root / name).mkdir()
    ...     _ = (root / name / f"{name}.txt").write_text(name)
    >>> replace_folder(root / "new", root / "old")
    >>> [p.name for p in root.iterdir()], [p.name for p in (root / "old").iterdir()]
    (['old'], ['new.txt'])
    """
    staging, destination = Path(staging), Path(destination)
    if destination.exists():
        old = destination.with_name(f".{destination.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(destination, old)
        os.replace(staging, destination)
        shutil.rmtree(old)
    else:
        os.replace(staging, destination)


@contextlib.contextmanager
def atomic_folder(destination):
    """Yields an empty folder to fill; it becomes ``destination`` once filled.

    The folder is a hidden sibling of ``destination``; when the ``with`` block
    ends normally it replaces ``destination`` (:func:`replace_folder`), when the
    block raises it is removed and ``destination`` is left as it was.

    Arguments
    ---------
    destination : str or os.PathLike
        The folder to create or replace; its parent is created when missing.

    Yields
    ------
    pathlib.Path
        The staging folder (mode ``0o777`` less the user's umask, as
        ``mkdir`` makes it).

    Example
    -------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_folder(root / "model") as staging:
    ...     _ = (staging / "model.ckpt").write_bytes(b"weights")
    >>> [p.name for p in root.iterdir()], [p.name for p in (root / "model").iterdir()]
    (['model'], ['model.ckpt'])
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = destination.with_name(f".{destination.name}.{secrets.token_hex(8)}")
    staging.mkdir()  # mode 0777 less the umask (mkdtemp's 0700 hid it from others)
    try:
        yield staging
        replace_folder(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
