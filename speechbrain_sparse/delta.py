"""A fine-tuned model as a sparse delta on its base: only the entries that changed.

One base model plus one small file per dialect. :func:`create_delta` compares a
fine-tuned state dict with the base it was fine-tuned from, bit by bit, and
stores per tensor one of three layouts:

* ``same``: every entry is bit-identical to the base's; nothing is stored;
* ``delta``: a bitmask of the changed entries (1 bit per entry, packed with
  :func:`~speechbrain_sparse.fileio.pack_bits`) and their new values in the
  tensor's own dtype;
* ``dense``: the whole tensor: a tensor the base lacks, one whose shape or
  dtype changed, or one where the bitmask and values would not be smaller.

The bitmasks of all tensors are stored as one byte string and the values of
each dtype as one tensor, so the overhead does not grow with the number of
tensors: an fp32 model with 20 % of its entries changed costs about
``1/32 + 0.2 ≈ 0.23`` of its dense checkpoint.

:func:`apply_delta` rebuilds the fine-tuned tensors bit-identically
(``torch.equal``, same dtype), on a state dict (a new one is returned) or on a
loaded ``torch.nn.Module`` (its parameters and buffers are overwritten in
place), so a decoder can run base + delta without writing a full model. The
delta records the base's tensor names and a SHA-256 of the base tensors it
reuses (those stored ``same`` or ``delta``); applying it to another base is
refused with one line naming both. The file is a
:mod:`speechbrain_sparse.fileio.records` record: versioned, written
atomically, its payload checksummed; a damaged file is refused naming it.

Example
-------
>>> import tempfile, os
>>> base = {"w": torch.zeros(4, 4), "b": torch.ones(4)}
>>> finetuned = {"w": base["w"].clone(), "b": torch.ones(4)}
>>> finetuned["w"][0, 1] = 0.5
>>> path = os.path.join(tempfile.mkdtemp(), "dialect.delta")
>>> summary = create_delta(base, finetuned, path)
>>> summary["changed"], summary["entries"], summary["layouts"]
(1, 20, {'same': 1, 'delta': 1, 'dense': 0})
>>> rebuilt = apply_delta(base, path)
>>> all(torch.equal(rebuilt[k], finetuned[k]) for k in finetuned)
True
>>> model = torch.nn.Linear(4, 4)
>>> apply_delta(model, path)
Traceback (most recent call last):
...
speechbrain_sparse.errors.UserInputError: ...dialect.delta: made for base 'base', ...

Authors
 * speechbrain_sparse contributors 2026
"""

import collections
import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.fileio import (
    check_sha256,
    dtype_from_name,
    dtype_name,
    load_record,
    pack_bits,
    save_record,
    sha256_of,
    unpack_bits,
)
from speechbrain_sparse.parameter_names import canonical_parameter_name

FORMAT_NAME = "speechbrain_sparse.SparseDelta"
FORMAT_VERSION = 1
LAYOUTS = ("same", "delta", "dense")
_REUSED = ("same", "delta")  # layouts that take the base's tensor
_INTEGER_OF_SIZE = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def changed_entries(base, finetuned):
    """Returns a flat bool tensor: True where the two tensors' entries differ in bits.

    Bits, not values: ``-0.0`` vs ``0.0`` is a change and a NaN equal to itself
    is not, so applying the changes reproduces ``finetuned`` exactly.

    Arguments
    ---------
    base, finetuned : torch.Tensor
        Two tensors of the same shape and dtype.

    Returns
    -------
    torch.BoolTensor
        One entry per element, row-major.

    Example
    -------
    >>> changed_entries(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([-0.0, 1.0, 3.0]))
    tensor([ True, False,  True])
    """
    base = base.detach().contiguous().reshape(-1)
    finetuned = finetuned.detach().contiguous().reshape(-1)
    size = base.element_size()
    if size in _INTEGER_OF_SIZE:
        integer = _INTEGER_OF_SIZE[size]
        return base.view(integer) != finetuned.view(integer)
    as_bytes = (base.view(torch.uint8).reshape(base.numel(), size),
                finetuned.view(torch.uint8).reshape(finetuned.numel(), size))
    return (as_bytes[0] != as_bytes[1]).any(dim=1)


def create_delta(base_state, finetuned_state, path, base_name="base",
                 finetuned_name="fine-tuned", files=None, shared_files=None):
    """Writes the entries of ``finetuned_state`` that differ from ``base_state``.

    Arguments
    ---------
    base_state : Mapping[str, torch.Tensor]
        The base model's state dict (e.g. the pretrained ``model.ckpt``).
    finetuned_state : Mapping[str, torch.Tensor]
        The fine-tuned model's state dict; its order (and a state dict's
        ``_metadata``) is kept.
    path : str or os.PathLike
        The delta file; written atomically.
    base_name, finetuned_name : str
        What to call the two models in messages and in the file (their paths).
    files : Mapping[str, bytes], optional
        Other files of the fine-tuned model, stored whole (a model folder's
        files that differ from the base's, e.g. a normaliser fine-tuning
        updated); :attr:`SparseDelta.files` gives them back.
    shared_files : Mapping[str, bytes], optional
        The base's files that the fine-tuned model uses unchanged: their
        SHA-256 is recorded (:attr:`SparseDelta.shared_files`), so
        :func:`check_shared_files` refuses a base folder with other ones.

    Returns
    -------
    dict
        The summary :func:`describe_delta` gives of the written file.

    Raises
    ------
    UserInputError
        If an entry is not a tensor or a fine-tuned tensor holds NaN or
        infinity (naming the model and the tensor); nothing is written.
    """
    entries, masks, values, dense = [], [], collections.defaultdict(list), {}
    for name, tensor in finetuned_state.items():
        tensor = _checked_tensor(tensor, name, finetuned_name, finite=True)
        entry = {"name": name, "shape": list(tensor.shape),
                 "dtype": dtype_name(tensor.dtype), "changed": tensor.numel(),
                 "layout": "dense"}
        old = base_state.get(name)
        if old is not None:
            old = _checked_tensor(old, name, base_name)
        if old is not None and old.shape == tensor.shape and old.dtype == tensor.dtype:
            changed = changed_entries(old, tensor)
            entry["changed"] = int(changed.sum())
            if entry["changed"] == 0:
                entry["layout"] = "same"
            elif _delta_is_smaller(entry["changed"], tensor):
                entry["layout"] = "delta"
                masks.append(pack_bits(changed))
                values[entry["dtype"]].append(tensor.reshape(-1)[changed])
        if entry["layout"] == "dense":
            dense[name] = tensor
        entries.append(entry)
    for name, tensor in base_state.items():
        _checked_tensor(tensor, name, base_name)
    payload = {
        "bits": torch.cat(masks) if masks else torch.zeros(0, dtype=torch.uint8),
        "values": {dtype: torch.cat(parts) for dtype, parts in sorted(values.items())},
        "dense": dense,
        "files": {name: _as_tensor(data) for name, data in (files or {}).items()},
    }
    record = {
        "base": {"file": str(base_name), "names": list(base_state),
                 "sha256": sha256_of(_reused(entries, base_state))},
        "finetuned": {"file": str(finetuned_name),
                      "metadata": getattr(finetuned_state, "_metadata", None)},
        "tensors": entries,
        "shared_files": {name: sha256_of([_as_tensor(data)])
                         for name, data in (shared_files or {}).items()},
        "payload": payload,
        "sha256": sha256_of(_payload_tensors(entries, payload)),
    }
    save_record(path, FORMAT_NAME, FORMAT_VERSION, record)
    return _describe(entries, record["base"], record["finetuned"], path)


def _checked_tensor(tensor, name, model_name, finite=False):
    """Returns ``tensor`` on the CPU; raises UserInputError when it cannot be stored."""
    if not isinstance(tensor, torch.Tensor):
        raise UserInputError(f"{model_name}: state dict entry '{name}' is a "
                             f"{type(tensor).__name__}, not a tensor")
    tensor = tensor.detach().cpu().contiguous()
    if finite and (tensor.is_floating_point() or tensor.is_complex()):
        bad = int((~torch.isfinite(tensor)).sum())
        if bad:
            raise UserInputError(f"{model_name}: '{name}' has {bad} non-finite "
                                 "values (NaN or infinity); refusing to store it")
    return tensor


def _as_tensor(data):
    """The bytes ``data`` as a uint8 tensor (how the record stores a file)."""
    return torch.from_numpy(np.frombuffer(bytes(data), dtype=np.uint8).copy())


def _delta_is_smaller(changed, tensor):
    """Whether bitmask + changed values take fewer bytes than the dense tensor."""
    numel, size = tensor.numel(), tensor.element_size()
    return (numel + 7) // 8 + changed * size < numel * size


def _reused(entries, tensors):
    """The base tensors the delta reuses, in entry order; the fingerprint's input."""
    for entry in entries:
        if entry["layout"] in _REUSED:
            yield tensors[entry["name"]]


def _payload_tensors(entries, payload):
    """The payload tensors in a fixed order: what the checksum covers."""
    yield payload["bits"]
    yield from (payload["values"][dtype] for dtype in sorted(payload["values"]))
    for entry in entries:
        if entry["layout"] == "dense":
            yield payload["dense"][entry["name"]]
    yield from (payload["files"][name] for name in sorted(payload["files"]))


@dataclass
class SparseDelta:
    """A delta file read and checked by :func:`load_delta`.

    ``changes`` holds, per entry of ``entries`` (the fine-tuned state dict's
    order): None (``same``), ``(bool mask, values)`` (``delta``) or the whole
    tensor (``dense``). ``files`` maps the names of the files stored whole to
    their bytes, ``shared_files`` the base's files used unchanged to their
    SHA-256.
    """

    path: str
    base: dict
    finetuned: dict
    entries: list
    changes: list
    files: dict
    shared_files: dict


def load_delta(path):
    """Reads and checks a delta written by :func:`create_delta`.

    Every bitmask is unpacked and checked against its values here, so a damaged
    file is refused before anything is applied.

    Arguments
    ---------
    path : str or os.PathLike
        The delta file.

    Returns
    -------
    SparseDelta

    Raises
    ------
    MissingInputError
        If there is no such file.
    UserInputError
        If it is truncated, corrupted, not a delta or of a newer version; the
        message names the file.
    """
    path = os.fspath(path)
    return load_record(path, FORMAT_NAME, FORMAT_VERSION,
                       lambda record: _parse(record, path), "sparse delta")


def _parse(record, path):
    entries, payload = record["tensors"], record["payload"]
    check_sha256(_payload_tensors(entries, payload), record["sha256"])
    bits, values = payload["bits"], payload["values"]
    byte_offset, value_offset = 0, collections.Counter()
    changes = []
    for entry in entries:
        name, layout = entry["name"], entry["layout"]
        dtype, shape = dtype_from_name(entry["dtype"]), tuple(entry["shape"])
        numel = int(np.prod(shape, dtype=np.int64))
        if layout == "same":
            changes.append(None)
        elif layout == "delta":
            mask = unpack_bits(bits[byte_offset:byte_offset + (numel + 7) // 8], numel)
            byte_offset += (numel + 7) // 8
            start = value_offset[entry["dtype"]]
            value_offset[entry["dtype"]] += entry["changed"]
            new = values[entry["dtype"]][start:start + entry["changed"]]
            if (int(mask.sum()) != entry["changed"] or new.numel() != entry["changed"]
                    or new.dtype != dtype):
                raise ValueError(f"'{name}': bitmask and values disagree")
            changes.append((mask, new))
        elif layout == "dense":
            tensor = payload["dense"][name]
            if tensor.dtype != dtype or tuple(tensor.shape) != shape:
                raise ValueError(f"'{name}': stored {tensor.dtype} "
                                 f"{list(tensor.shape)}, expected {dtype} "
                                 f"{list(shape)}")
            changes.append(tensor)
        else:
            raise ValueError(f"'{name}': unknown layout {layout!r}")
    unused = [dtype for dtype, tensor in values.items()
              if tensor.numel() != value_offset[dtype]]
    if byte_offset != bits.numel() or unused:
        raise ValueError("payload sizes do not match the tensor list")
    files = {name: tensor.numpy().tobytes()
             for name, tensor in payload["files"].items()}
    return SparseDelta(path, record["base"], record["finetuned"], entries, changes,
                       files, dict(record["shared_files"]))


def describe_delta(path):
    """Returns what a delta holds: tensors, changed entries, bytes.

    Arguments
    ---------
    path : str or os.PathLike
        The delta file.

    Returns
    -------
    dict
        ``tensors``, ``entries`` (all fine-tuned entries), ``changed``
        (changed entries, every entry of a tensor stored whole), ``layouts``
        (tensors per layout), ``dense_bytes`` (the fine-tuned tensors' bytes),
        ``file_bytes``, ``base`` and ``finetuned`` (the names given at creation).
    """
    delta = load_delta(path)
    return _describe(delta.entries, delta.base, delta.finetuned, delta.path)


def _describe(tensors, base, finetuned, path):
    layouts = dict.fromkeys(LAYOUTS, 0)
    entries = changed = dense_bytes = 0
    for entry in tensors:
        layouts[entry["layout"]] += 1
        numel = int(np.prod(entry["shape"], dtype=np.int64))
        entries += numel
        changed += entry["changed"]
        dense_bytes += numel * dtype_from_name(entry["dtype"]).itemsize
    return {"tensors": len(tensors), "entries": entries, "changed": changed,
            "layouts": layouts, "dense_bytes": dense_bytes,
            "file_bytes": os.path.getsize(path),
            "base": base["file"], "finetuned": finetuned["file"]}


def apply_delta(state_or_model, delta_path, base_name=None):
    """Rebuilds the fine-tuned model from its base and a delta, bit-identically.

    Arguments
    ---------
    state_or_model : Mapping[str, torch.Tensor] or torch.nn.Module
        The base: a state dict (left unchanged; a new one is returned) or a
        loaded model whose ``state_dict()`` is the base's (DDP /
        ``torch.compile`` wrappers allowed), whose parameters and buffers are
        overwritten in place.
    delta_path : str, os.PathLike or SparseDelta
        A file written by :func:`create_delta` (or one read by :func:`load_delta`).
    base_name : str, optional
        What to call the given base in messages (e.g. its path).

    Returns
    -------
    collections.OrderedDict or torch.nn.Module
        For a state dict: the fine-tuned state dict (its order, dtypes and
        ``_metadata``; tensors the delta did not change are the base's own
        tensor objects). For a model: the model itself.

    Raises
    ------
    UserInputError
        If the delta is damaged, or was made for another base (one line naming
        the delta's base and ``base_name``), or, for a model, adds, removes or
        reshapes tensors (apply it to the state dict then). Nothing is changed.

    Example
    -------
    >>> import tempfile, os
    >>> base = torch.nn.Linear(3, 2)
    >>> finetuned = {k: v.clone() for k, v in base.state_dict().items()}
    >>> finetuned["bias"][0] += 1.0
    >>> path = os.path.join(tempfile.mkdtemp(), "d.delta")
    >>> _ = create_delta(base.state_dict(), finetuned, path)
    >>> apply_delta(base, path) is base, torch.equal(base.bias, finetuned["bias"])
    (True, True)
    """
    delta = delta_path
    if not isinstance(delta, SparseDelta):
        delta = load_delta(delta_path)
    if isinstance(state_or_model, torch.nn.Module):
        return _apply_to_model(state_or_model, delta, base_name or "the given model")
    if not isinstance(state_or_model, Mapping):
        raise TypeError("apply_delta needs a state dict or a torch.nn.Module, got "
                        f"{type(state_or_model).__name__}")
    base = state_or_model
    _check_base(delta, base, base_name or "the given state dict")
    state = collections.OrderedDict()
    for entry, change in zip(delta.entries, delta.changes):
        name = entry["name"]
        if change is None:
            state[name] = base[name]
        elif isinstance(change, tuple):
            tensor = base[name].detach().clone(memory_format=torch.contiguous_format)
            mask, new = change
            tensor.view(-1)[mask.to(tensor.device)] = new.to(tensor.device)
            state[name] = tensor
        else:
            state[name] = change
    if delta.finetuned.get("metadata") is not None:
        state._metadata = delta.finetuned["metadata"]
    return state


def _check_base(delta, tensors, base_name):
    """Raises UserInputError unless ``tensors`` is the base the delta was made for."""
    made_for = f"{delta.path}: made for base '{delta.base['file']}'"
    names = set(delta.base["names"])
    missing = [name for name in delta.base["names"] if name not in tensors]
    extra = [name for name in tensors if name not in names]
    if missing or extra:
        which = (f"lacks tensor '{missing[0]}'" if missing
                 else f"has tensor '{extra[0]}' that it did not")
        raise UserInputError(f"{made_for}, not {base_name}, which {which}")
    for entry in delta.entries:
        tensor = tensors[entry["name"]] if entry["layout"] in _REUSED else None
        if tensor is not None and (list(tensor.shape) != entry["shape"]
                                   or dtype_name(tensor.dtype) != entry["dtype"]):
            raise UserInputError(
                f"{made_for}, not {base_name}: '{entry['name']}' is "
                f"{dtype_name(tensor.dtype)} {list(tensor.shape)}, expected "
                f"{entry['dtype']} {entry['shape']}")
    fingerprint = sha256_of(_reused(delta.entries, tensors))
    if fingerprint != delta.base["sha256"]:
        raise UserInputError(
            f"{made_for} (sha256 {delta.base['sha256'][:12]}), not {base_name} "
            f"(sha256 {fingerprint[:12]}): apply it to the model it was made from")


def _apply_to_model(model, delta, base_name):
    """Overwrites the changed parameters and buffers of ``model`` in place."""
    targets = {canonical_parameter_name(name): tensor
               for name, tensor in model.state_dict(keep_vars=True).items()}
    _check_base(delta, targets, base_name)
    for entry, change in zip(delta.entries, delta.changes):
        target = targets.get(entry["name"])
        if change is None:
            continue
        if target is None or list(target.shape) != entry["shape"] or (
                dtype_name(target.dtype) != entry["dtype"]):
            raise UserInputError(
                f"{delta.path}: adds or reshapes tensor '{entry['name']}', which "
                f"{base_name} cannot take in place; apply the delta to its state dict")
    removed = set(targets) - {entry["name"] for entry in delta.entries}
    if removed:
        raise UserInputError(f"{delta.path}: removes tensor '{sorted(removed)[0]}', "
                             f"which {base_name} cannot drop in place; apply the "
                             "delta to its state dict")
    with torch.no_grad():
        for entry, change in zip(delta.entries, delta.changes):
            target = targets[entry["name"]]
            if isinstance(change, tuple):
                mask, new = change
                if target.is_contiguous():
                    target.view(-1)[mask.to(target.device)] = new.to(target.device)
                else:
                    rebuilt = target.contiguous()
                    rebuilt.view(-1)[mask.to(target.device)] = new.to(target.device)
                    target.copy_(rebuilt)
            elif change is not None:
                target.copy_(change)
    return model


def check_shared_files(delta, folder):
    """Raises UserInputError unless ``folder`` has the base files the delta shares.

    Arguments
    ---------
    delta : SparseDelta
        A delta read by :func:`load_delta`.
    folder : str or os.PathLike
        The base model folder.

    Example
    -------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "tokenizer.model").write_bytes(b"spm")
    >>> state = {"w": torch.zeros(2)}
    >>> path = folder / "d.delta"
    >>> _ = create_delta(state, state, path, shared_files={"tokenizer.model": b"spm"})
    >>> check_shared_files(load_delta(path), folder)
    >>> _ = (folder / "tokenizer.model").write_bytes(b"other")
    >>> check_shared_files(load_delta(path), folder)
    Traceback (most recent call last):
    ...
    speechbrain_sparse.errors.UserInputError: ...d.delta: made for base 'base' whose ...
    """
    for name, digest in delta.shared_files.items():
        path = os.path.join(os.fspath(folder), name)
        if not os.path.isfile(path):
            raise UserInputError(f"{delta.path}: made for base '{delta.base['file']}' "
                                 f"which has {name}; {path} is missing")
        with open(path, "rb") as handle:
            if sha256_of([_as_tensor(handle.read())]) != digest:
                raise UserInputError(
                    f"{delta.path}: made for base '{delta.base['file']}' whose "
                    f"{name} differs from {path}")
