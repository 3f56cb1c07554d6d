"""The parameter mask: which entries of which weights take part.

A :class:`ParameterMask` maps a canonical parameter name to a bool tensor of that
parameter's shape, over a :class:`Coverage` (the parameters a method may select
from). It behaves as a read-only ``Mapping[str, BoolTensor]``, supports the set
algebra of the paper's Table IV (``|``, ``&``, ``-``, ``~``), overlap statistics
and a self-describing, checksummed file format.

Names are *canonical*: the wrappers added by DDP (``module.``) and
``torch.compile`` (``_orig_mod.``) are removed
(:mod:`speechbrain_sparse.parameter_names`, whose functions are importable from
here too), so a mask computed on one process layout applies to any other.

Example
-------
>>> model = torch.nn.Linear(4, 2)
>>> mask = ParameterMask.full(model)
>>> sorted(mask), mask.density()
(['bias', 'weight'], 1.0)
>>> (~mask).density()
0.0
"""

import fnmatch
import hashlib
import os
from collections.abc import Mapping

import numpy as np
import torch

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.fileio import (
    check_sha256,
    load_record,
    pack_bits,
    save_record,
    sha256_of,
    unpack_bits,
)
from speechbrain_sparse.parameter_names import (
    canonical_named_parameters,
    canonical_parameter_name,
    layer_of,
)

FORMAT_NAME = "speechbrain_sparse.ParameterMask"
FORMAT_VERSION = 1


class Coverage:
    """The parameters a mask is defined over: fnmatch include/exclude patterns.

    Patterns match canonical names. The default covers *all* parameters (weight
    matrices, biases, LayerNorm, embeddings, CTC and output heads): the paper
    selects over the full model and lets the score (diff, fisher, ...) decide
    which entries matter, so nothing is ruled out before scoring.

    Arguments
    ---------
    include : list of str
        A name is covered if it matches one of these (default ``["*"]``).
    exclude : list of str
        ... and none of these (default ``[]``).

    Example
    -------
    >>> cov = Coverage(include=["encoder.*"], exclude=["*norm*"])
    >>> cov.covers("encoder.layers.0.w.weight"), cov.covers("encoder.norm.weight")
    (True, False)
    >>> Coverage().covers("module.ctc_lin.w.bias")
    True
    """

    def __init__(self, include=None, exclude=None):
        self.include = list(include) if include else ["*"]
        self.exclude = list(exclude) if exclude else []

    def covers(self, name):
        """Returns whether the canonical form of ``name`` is covered."""
        name = canonical_parameter_name(name)
        included = any(fnmatch.fnmatchcase(name, p) for p in self.include)
        return included and not any(fnmatch.fnmatchcase(name, p) for p in self.exclude)

    def shapes(self, model):
        """Returns ``{canonical name: shape}`` of ``model``'s covered parameters."""
        params = canonical_named_parameters(model).items()
        return {n: tuple(p.shape) for n, p in params if self.covers(n)}

    def to_dict(self):
        """Returns the patterns as a plain dict (for files and metadata)."""
        return {"include": list(self.include), "exclude": list(self.exclude)}

    def __eq__(self, other):
        return isinstance(other, Coverage) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return f"Coverage(include={self.include}, exclude={self.exclude})"


def shapes_fingerprint(shapes):
    """Returns the sha256 of the sorted ``name:shape`` list of ``shapes``.

    Example
    -------
    >>> shapes_fingerprint({"b": (2,), "a": (2, 3)})[:12]
    'db996e672043'
    """
    lines = sorted(f"{name}:{list(shape)}" for name, shape in shapes.items())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


class ParameterMask(Mapping):
    """A mapping canonical parameter name -> bool tensor, over a coverage.

    Arguments
    ---------
    tensors : dict
        Name -> bool tensor (names are canonicalised; tensors kept on CPU).
    coverage : Coverage
        The patterns the names were chosen with (default: everything).
    method : str
        How the mask was made, e.g. ``"diff"`` (saved in the file).
    options : dict
        The method's options (saved in the file).
    target_density : float, optional
        The requested density, if any.

    Example
    -------
    >>> a = ParameterMask({"w": torch.tensor([True, False, True, False])})
    >>> b = ParameterMask({"w": torch.tensor([True, True, False, False])})
    >>> (a | b).num_selected(), (a & b).num_selected(), (a - b).num_selected()
    (3, 1, 1)
    >>> a.jaccard(b)
    0.3333333333333333
    """

    def __init__(self, tensors, coverage=None, method="manual", options=None,
                 target_density=None):
        self._tensors = {}
        for name, tensor in tensors.items():
            tensor = torch.as_tensor(tensor)
            if tensor.dtype != torch.bool:
                raise ValueError(f"mask for '{name}' must be bool, got {tensor.dtype}")
            self._tensors[canonical_parameter_name(name)] = tensor.detach().cpu()
        self.coverage = coverage if coverage is not None else Coverage()
        self.method = method
        self.options = dict(options or {})
        self.target_density = target_density

    # Mapping protocol ---------------------------------------------------------
    def __getitem__(self, name):
        return self._tensors[canonical_parameter_name(name)]

    def __iter__(self):
        return iter(self._tensors)

    def __len__(self):
        return len(self._tensors)

    def __eq__(self, other):
        if not isinstance(other, ParameterMask) or list(self) != list(other):
            return False
        return all(torch.equal(self[n], other[n]) for n in self)

    __hash__ = None

    def __repr__(self):
        return (f"ParameterMask(method={self.method!r}, tensors={len(self)}, "
                f"density={self.density():.4f})")

    # Construction -------------------------------------------------------------
    @classmethod
    def full(cls, model_or_shapes, coverage=None, value=True, **metadata):
        """Returns a mask selecting all (``value=True``) or no covered entries.

        Arguments
        ---------
        model_or_shapes : torch.nn.Module or dict
            A model, or ``{name: shape}``.
        coverage : Coverage
            Which parameters of a model to cover (default: all).
        value : bool
            The value of every entry.
        **metadata
            ``method``, ``options``, ``target_density`` for the constructor.

        Returns
        -------
        ParameterMask
        """
        coverage = coverage if coverage is not None else Coverage()
        if isinstance(model_or_shapes, torch.nn.Module):
            shapes = coverage.shapes(model_or_shapes)
        else:
            shapes = {n: s for n, s in model_or_shapes.items() if coverage.covers(n)}
        tensors = {n: torch.full(tuple(s), value, dtype=torch.bool)
                   for n, s in shapes.items()}
        metadata.setdefault("method", "full" if value else "empty")
        return cls(tensors, coverage=coverage, **metadata)

    @property
    def shapes(self):
        """``{name: shape}`` of the covered parameters."""
        return {name: tuple(t.shape) for name, t in self._tensors.items()}

    # Density ------------------------------------------------------------------
    def numel(self):
        """Returns the number of covered entries."""
        return sum(t.numel() for t in self._tensors.values())

    def num_selected(self):
        """Returns the number of selected entries."""
        return sum(int(t.count_nonzero()) for t in self._tensors.values())

    def density(self):
        """Returns the fraction of covered entries that are selected (0 if empty)."""
        total = self.numel()
        return self.num_selected() / total if total else 0.0

    def densities(self):
        """Returns ``{name: density}`` per tensor."""
        return {n: int(t.count_nonzero()) / max(t.numel(), 1)
                for n, t in self._tensors.items()}

    def layer_table(self):
        """Returns per-layer rows ``{"layer", "selected", "total", "density"}``.

        Layers are named by :func:`layer_of`, in first-seen order.
        """
        counts = {}
        for name, tensor in self._tensors.items():
            row = counts.setdefault(layer_of(name), [0, 0])
            row[0] += int(tensor.count_nonzero())
            row[1] += tensor.numel()
        return [{"layer": k, "selected": s, "total": t, "density": s / max(t, 1)}
                for k, (s, t) in counts.items()]

    # Algebra ------------------------------------------------------------------
    def _check_compatible(self, other):
        if not isinstance(other, ParameterMask):
            raise TypeError(f"expected a ParameterMask, got {type(other).__name__}")
        for name in list(self) + [n for n in other if n not in self._tensors]:
            mine, theirs = self._tensors.get(name), other._tensors.get(name)
            if mine is None or theirs is None:
                raise UserInputError(f"masks cover different parameters: '{name}'")
            if mine.shape != theirs.shape:
                raise UserInputError(
                    f"masks disagree on the shape of '{name}': "
                    f"{tuple(mine.shape)} vs {tuple(theirs.shape)}"
                )

    def _combine(self, other, op, method):
        self._check_compatible(other)
        tensors = {n: op(t, other[n]) for n, t in self._tensors.items()}
        options = {"a": self.describe(), "b": other.describe()}
        return ParameterMask(tensors, self.coverage, method, options)

    def __or__(self, other):
        return self._combine(other, torch.logical_or, "union")

    def __and__(self, other):
        return self._combine(other, torch.logical_and, "intersection")

    def __sub__(self, other):
        return self._combine(other, lambda a, b: a & ~b, "difference")

    def __invert__(self):
        tensors = {n: ~t for n, t in self._tensors.items()}
        options = {"a": self.describe()}
        return ParameterMask(tensors, self.coverage, "complement", options)

    # Overlap ------------------------------------------------------------------
    def jaccard(self, other):
        """Returns |A & B| / |A | B| over the coverage (1.0 when both are empty)."""
        return _jaccard(self._pairs(other))

    def jaccard_per_layer(self, other):
        """Returns ``{layer: Jaccard}`` (layers as in :meth:`layer_table`)."""
        by_layer = {}
        for name, pair in zip(self, self._pairs(other)):
            by_layer.setdefault(layer_of(name), []).append(pair)
        return {layer: _jaccard(pairs) for layer, pairs in by_layer.items()}

    def _pairs(self, other):
        self._check_compatible(other)
        return [
            (int((t & other[n]).count_nonzero()), int((t | other[n]).count_nonzero()))
            for n, t in self._tensors.items()
        ]

    # Files --------------------------------------------------------------------
    def describe(self):
        """Returns the metadata (method, options, densities, coverage) as a dict."""
        return {
            "method": self.method,
            "options": self.options,
            "target_density": self.target_density,
            "achieved_density": self.density(),
            "coverage": self.coverage.to_dict(),
        }

    def save(self, path):
        """Writes the mask to ``path`` atomically (temp file + ``os.replace``).

        The file is a :mod:`speechbrain_sparse.fileio.records` record: format
        name and version, the :meth:`describe` metadata, each parameter's
        name, shape and count, the fingerprint of the shapes, and the bools
        packed 8 per byte (parameter order, row-major; a uint8 tensor) with
        their sha256.
        """
        flat = [t.reshape(-1) for t in self._tensors.values()]
        bits = torch.cat(flat) if flat else torch.zeros(0, dtype=torch.bool)
        packed = pack_bits(bits)
        save_record(path, FORMAT_NAME, FORMAT_VERSION, {
            **self.describe(),
            "parameters": [
                {"name": n, "shape": list(t.shape), "selected": int(t.count_nonzero())}
                for n, t in self._tensors.items()
            ],
            "fingerprint": shapes_fingerprint(self.shapes),
            "numel": int(bits.numel()),
            "payload": packed,
            "payload_sha256": sha256_of([packed]),
        })

    @classmethod
    def load(cls, path, model=None):
        """Reads a mask written by :meth:`save`; checks it against ``model``.

        Arguments
        ---------
        path : str or os.PathLike
            The mask file.
        model : torch.nn.Module, optional
            If given, every covered parameter of ``model`` must be in the mask
            with the same shape, and vice versa.

        Returns
        -------
        ParameterMask

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If the file is truncated, corrupted, of another format, or does not
            match ``model``; the message names the file (and the parameter).
        """
        mask = load_record(path, FORMAT_NAME, FORMAT_VERSION, cls._from_record,
                           "mask file")
        if model is not None:
            mask.check_matches(mask.coverage.shapes(model), source=os.fspath(path))
        return mask

    @classmethod
    def _from_record(cls, record):
        check_sha256([record["payload"]], record["payload_sha256"])
        flat = unpack_bits(record["payload"], record["numel"])
        sizes = [int(np.prod(e["shape"], dtype=np.int64)) for e in record["parameters"]]
        if sum(sizes) != record["numel"]:
            raise ValueError("parameter list does not match the payload size")
        tensors = {
            e["name"]: part.view(e["shape"])
            for e, part in zip(record["parameters"], flat.split(sizes))
        }
        mask = cls(tensors, Coverage(**record["coverage"]), record["method"],
                   record["options"], record["target_density"])
        if shapes_fingerprint(mask.shapes) != record["fingerprint"]:
            raise ValueError("shape fingerprint mismatch")
        return mask

    def check_matches(self, shapes, source="mask"):
        """Raises ValueError naming the first parameter whose shape differs.

        Arguments
        ---------
        shapes : dict
            ``{name: shape}`` of the covered parameters of a model.
        source : str
            What to call the mask in the message (e.g. its file).
        """
        own = self.shapes
        if shapes_fingerprint(shapes) == shapes_fingerprint(own):
            return
        for name in list(own) + [n for n in shapes if n not in own]:
            mine, theirs = own.get(name), shapes.get(name)
            if mine is None or theirs is None or tuple(theirs) != mine:
                raise UserInputError(
                    f"{source}: parameter '{name}' has shape {mine} in the mask "
                    f"but {None if theirs is None else tuple(theirs)} in the model"
                )


def _jaccard(pairs):
    intersection = sum(i for i, _ in pairs)
    union = sum(u for _, u in pairs)
    return intersection / union if union else 1.0

