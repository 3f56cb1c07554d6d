"""A compact checkpoint for pruned models: a bitmask plus the surviving values.

:func:`save_sparse_checkpoint` stores each sufficiently sparse tensor of a state
dict as its keep-bitmask (8 entries per byte, numpy ``packbits`` row-major as in
:meth:`speechbrain_sparse.masks.ParameterMask.save`) and the kept values in
row-major order; other tensors are stored as they are. An fp32 matrix at 80 %
sparsity costs ``0.2 + 1/32 ≈ 0.23`` of its dense size. :func:`load_sparse_checkpoint`
gives back a state dict whose tensors are ``torch.equal`` to the pruned dense ones,
so ``model.load_state_dict`` reproduces the pruned model's outputs exactly.

The file is a :mod:`speechbrain_sparse.fileio.records` record (a ``torch.save``
dict, loadable with ``weights_only=True``, written atomically) holding a format
name and version, one entry per tensor (name, shape, dtype, layout) and a sha256
over every payload byte.

Example
-------
>>> import tempfile, os
>>> linear = torch.nn.Linear(64, 64)
>>> with torch.no_grad():
...     _ = linear.weight.masked_fill_(linear.weight.abs() < 0.1, 0.0)
>>> path = os.path.join(tempfile.mkdtemp(), "pruned.ckpt")
>>> save_sparse_checkpoint(linear.state_dict(), path)
>>> loaded = load_sparse_checkpoint(path)
>>> all(torch.equal(loaded[k], v) for k, v in linear.state_dict().items())
True

Authors
 * speechbrain_sparse contributors 2026
"""

import collections
import os
from collections.abc import Mapping

import numpy as np
import torch

from speechbrain_sparse.fileio import (
    check_finite,
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

FORMAT_NAME = "speechbrain_sparse.SparseCheckpoint"
FORMAT_VERSION = 1
LAYOUTS = ("dense", "bitmask")


def save_sparse_checkpoint(state_dict, path, masks=None, min_sparsity=None):
    """Writes ``state_dict`` to ``path`` with sparse tensors as bitmask + values.

    Arguments
    ---------
    state_dict : Mapping[str, torch.Tensor]
        The pruned model's state dict (pruned entries already zero).
    path : str or os.PathLike
        Destination; written atomically.
    masks : Mapping[str, torch.BoolTensor], optional
        Keep-masks (True = kept), e.g. a ``ParameterMask``; looked up by the
        state-dict name, then by its canonical name. A masked tensor must be zero
        wherever its mask is False (ValueError otherwise). Tensors without a
        mask use their nonzero pattern.
    min_sparsity : float, optional
        A tensor is stored as bitmask + values when its sparsity (the fraction
        of entries outside its mask) is at least this. Default: whenever that
        is smaller than the dense tensor, i.e. sparsity > 1 / (8 · itemsize)
        (3.1 % for fp32).

    Raises
    ------
    speechbrain_sparse.fileio.NonFiniteTensorError
        A tensor holds NaN or inf (a failed run); nothing is written.

    Example
    -------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.ckpt")
    >>> save_sparse_checkpoint({"w": torch.tensor([[0.0, 2.0], [0.0, 0.0]])}, path)
    >>> load_sparse_checkpoint(path)["w"]
    tensor([[0., 2.],
            [0., 0.]])
    """
    check_finite(state_dict, os.fspath(path))  # nothing is written from a failed run
    records, payload = [], {}
    for name, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"state dict entry '{name}' is a {type(tensor).__name__}, "
                            "not a tensor")
        tensor = tensor.detach().cpu().contiguous()
        keep = _keep_mask(name, tensor, masks)
        record = {"name": name, "shape": list(tensor.shape),
                  "dtype": dtype_name(tensor.dtype)}
        if keep is not None and _worth_it(tensor, keep, min_sparsity):
            values = tensor.reshape(-1)[keep.reshape(-1)]
            record.update(layout="bitmask", kept=int(values.numel()))
            payload[f"{name}:bitmask"] = pack_bits(keep)
            payload[f"{name}:values"] = values
        else:
            record["layout"] = "dense"
            payload[f"{name}:dense"] = tensor
        records.append(record)
    save_record(path, FORMAT_NAME, FORMAT_VERSION, {
        "tensors": records,
        "payload": payload,
        "sha256": sha256_of(_payload_tensors(records, payload)),
    })

def _keep_mask(name, tensor, masks):
    """Returns the bool keep-mask of ``tensor`` (None: store it dense)."""
    mask = None
    if isinstance(masks, Mapping):
        mask = masks.get(name)
        if mask is None:
            mask = masks.get(canonical_parameter_name(name))
    if mask is None:
        if not (tensor.is_floating_point() or tensor.is_complex()) or tensor.dim() == 0:
            return None
        return tensor != 0
    mask = torch.as_tensor(mask).detach().cpu()
    if mask.dtype != torch.bool or mask.shape != tensor.shape:
        raise ValueError(f"mask for '{name}' must be a bool tensor of shape "
                         f"{tuple(tensor.shape)}, got {mask.dtype} {tuple(mask.shape)}")
    if bool((tensor[~mask] != 0).any()):
        raise ValueError(f"'{name}' has nonzero entries outside its mask; "
                         "prune (zero) them before exporting")
    return mask


def _worth_it(tensor, keep, min_sparsity):
    sparsity = 1.0 - int(keep.sum()) / max(keep.numel(), 1)
    if min_sparsity is None:
        return sparsity > 1.0 / (8 * tensor.element_size())
    return sparsity >= float(min_sparsity)


def _payload_tensors(records, payload):
    """The payload tensors in record order: what the checksum covers."""
    for entry in records:
        parts = ("dense",) if entry["layout"] == "dense" else ("bitmask", "values")
        for part in parts:
            yield payload[f"{entry['name']}:{part}"]


def load_sparse_checkpoint(path, map_location="cpu"):
    """Reads a checkpoint written by :func:`save_sparse_checkpoint`.

    Arguments
    ---------
    path : str or os.PathLike
        The checkpoint file.
    map_location : str or torch.device
        Where the returned tensors live.

    Returns
    -------
    collections.OrderedDict
        Name -> dense tensor (pruned entries zero), in the saved order.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is truncated, corrupted (checksum, shapes, sizes) or not a
        sparse checkpoint; the message names the file.
    """
    state = load_record(path, FORMAT_NAME, FORMAT_VERSION, _rebuild,
                        "sparse checkpoint")
    return collections.OrderedDict(
        (name, tensor.to(map_location)) for name, tensor in state.items()
    )

def _rebuild(record):
    """Returns the dense tensors of a loaded record, after checking it."""
    payload = record["payload"]
    check_sha256(_payload_tensors(record["tensors"], payload), record["sha256"])
    state = collections.OrderedDict()
    for entry in record["tensors"]:
        name, shape = entry["name"], tuple(entry["shape"])
        dtype = dtype_from_name(entry["dtype"])
        numel = int(np.prod(shape, dtype=np.int64))
        if entry["layout"] == "dense":
            tensor = payload[f"{name}:dense"]
        elif entry["layout"] == "bitmask":
            keep = unpack_bits(payload[f"{name}:bitmask"], numel)
            values = payload[f"{name}:values"]
            if int(keep.sum()) != values.numel():
                raise ValueError(f"'{name}': bitmask and values disagree")
            tensor = torch.zeros(numel, dtype=values.dtype)
            tensor[keep] = values
        else:
            raise ValueError(f"'{name}': unknown layout {entry['layout']!r}")
        if tensor.dtype != dtype or tensor.numel() != numel:
            raise ValueError(f"'{name}': stored {tensor.dtype} with {tensor.numel()} "
                             f"entries, expected {dtype} {list(shape)}")
        state[name] = tensor.reshape(shape)
    return state
