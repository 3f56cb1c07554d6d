"""Unit gates: scale the weights that consume a unit by its gate value z.

:func:`attach_unit_gates` puts a ``torch.nn.utils.parametrize``
parametrization on every weight that *consumes* a gated unit, so the model
computes with ``W * z`` and works unchanged, whichever way it reads its
weights (WavLM and ``nn.MultiheadAttention`` pass them raw to
``F.multi_head_attention_forward``; hooks would never fire there):

* qk dims and heads: rows of W_Q and b_Q (a zero query dim removes the key
  dim's contribution too); for the packed ``in_proj_weight`` the rows
  ``0..d``, the value rows ``2d..3d``;
* vo dims and heads: rows of W_V and b_V, so the W_O columns see zero;
* ``:mha``: W_O and b_O, the whole block output is ``z_mha * out``;
* FFN units: columns of W_down; ``:ffn``: W_down and b_down;
* channel ``c`` of conv ``i``: input channel ``c`` of conv ``i+1``.

With 0/1 values (:class:`FixedGate`) the gated model computes what the model
with the removed units' entries set to zero computes (the surgered model).
Each gate is evaluated once per forward of the model (a forward pre-hook on
the model clears the values; :meth:`GateHandle.resample` does it by hand) and
each gated weight once per gate evaluation. :meth:`GateHandle.remove` puts the
plain parameters back, the same objects, bit-identical.

Example
-------
>>> from speechbrain_sparse.pruning.unit_structure import model_structure
>>> from transformers import Wav2Vec2Config, Wav2Vec2Model
>>> config = Wav2Vec2Config(hidden_size=8, num_hidden_layers=1,
...     num_attention_heads=2, intermediate_size=16, conv_dim=(4, 4),
...     conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=8,
...     num_conv_pos_embedding_groups=2)
>>> model = Wav2Vec2Model(config).eval()
>>> structure = model_structure(model)
>>> gate = FixedGate(torch.tensor([True, False]))
>>> handle = attach_unit_gates(model, structure,
...                            {"encoder.layers.0.attention:head": gate})
>>> model.encoder.layers[0].attention.v_proj.weight[4:].abs().sum().item()
0.0
>>> handle.remove()
>>> model.encoder.layers[0].attention.v_proj.weight[4:].abs().sum().item() > 0
True
"""

import torch
from torch.nn.utils import parametrize

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.parameter_names import canonical_parameter_name
from speechbrain_sparse.pruning.unit_masks import kind_of
from speechbrain_sparse.pruning.unit_structure import raw_parameter

CONTAINERS = (torch.nn.ModuleList, torch.nn.ModuleDict)


class FixedGate(torch.nn.Module):
    """A gate whose value is a fixed 0/1 mask (no parameters).

    Arguments
    ---------
    mask : torch.Tensor
        Bool ``[count]``, True = the unit is kept.

    Example
    -------
    >>> FixedGate(torch.tensor([True, False]))()
    tensor([1., 0.])
    """

    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", torch.as_tensor(mask, dtype=torch.bool).clone())

    def forward(self):
        """Returns the mask as float ``[count]``."""
        return self.mask.float()


class _GateValues:
    """The gates' values z of one forward of the model, computed on first use."""

    def __init__(self, gates, counts):
        self.gates = gates
        self.counts = counts
        self.values = {}
        self.generation = 0

    def clear(self, *_):
        self.values = {}
        self.generation += 1

    def scale(self, spec, weight):
        """The scale tensor of a :class:`UnitScale` spec, broadcastable to
        ``weight`` (its row vector is shared by a weight and its bias)."""
        rows, columns, whole = spec
        grad = torch.is_grad_enabled()
        key = (spec, weight.dim(), weight.dtype, grad)
        if key in self.values:
            return self.values[key]
        scale = None
        if rows:
            vector = self._vector(("rows", rows, weight.dtype, grad), weight)
            scale = vector.view(-1, *[1] * (weight.dim() - 1))
        if columns:
            vector = self._vector(("columns", columns, weight.dtype, grad), weight)
            vector = vector.view(1, -1, *[1] * (weight.dim() - 2))
            scale = vector if scale is None else scale * vector
        for group in whole:
            z = self(group).to(device=weight.device, dtype=weight.dtype)
            scale = z if scale is None else scale * z
        self.values[key] = scale
        return scale

    def _vector(self, key, like):
        """The product of gates along rows (segments) or columns, memoised."""
        if key not in self.values:
            kind, spec = key[:2]
            if kind == "rows":
                parts = [self._product(f, n, like) for n, f in spec]
                self.values[key] = parts[0] if len(parts) == 1 else torch.cat(parts)
            else:
                self.values[key] = self._product(spec, like.shape[1], like)
        return self.values[key]

    def _product(self, factors, length, like):
        scale = None
        for group, repeat in factors:
            z = self(group).to(device=like.device, dtype=like.dtype)
            z = z.repeat_interleave(repeat) if repeat > 1 else z
            scale = z if scale is None else scale * z
        return like.new_ones(length) if scale is None else scale

    def __call__(self, group):
        if group not in self.values:
            # With grad always: a reentrant checkpoint recomputes under grad.
            with torch.enable_grad():
                z = self.gates[group]()
            if tuple(z.shape) != (self.counts[group],):
                raise ValueError(f"gate of {group!r} returned shape {tuple(z.shape)}, "
                                 f"expected ({self.counts[group]},)")
            self.values[group] = z
        return self.values[group]


class UnitScale(torch.nn.Module):
    """Parametrization ``W -> W * rows * columns * whole`` from gate values.

    Arguments
    ---------
    values : _GateValues
        Where the gate values come from (not a sub-module: the gates'
        parameters stay out of the model's parameters).
    rows : list
        ``[(length, [(group, repeat), ...]), ...]``: consecutive row segments
        of the weight and the gates scaling them (each ``z.repeat_interleave
        (repeat)``); an empty list leaves the segment unscaled.
    columns : list
        ``[(group, repeat), ...]`` scaling dim 1.
    whole : list
        Groups of one unit scaling the whole tensor.
    """

    def __init__(self, values, rows=(), columns=(), whole=()):
        super().__init__()
        self.__dict__["values"] = values  # a plain attribute, not a sub-module
        self.__dict__["_memo"] = (None, None)
        self.spec = (tuple((n, tuple(f)) for n, f in rows), tuple(columns),
                     tuple(whole))

    def forward(self, weight):
        """Returns the gated weight (memoised while the gate values are the same)."""
        key = (self.values.generation, weight._version, torch.is_grad_enabled())
        memo = self.__dict__["_memo"]
        if memo[0] == key:
            return memo[1]
        gated = weight * self.values.scale(self.spec, weight)
        self.__dict__["_memo"] = (key, gated)
        return gated


class GateHandle:
    """What :func:`attach_unit_gates` attached: ``remove()`` takes it off.

    Attributes
    ----------
    gates : dict
        Group -> gate module (not registered in the model).
    """

    def __init__(self, gates, values, weights, hooks):
        self.gates = gates
        self._values = values
        self._weights = weights
        self._hooks = hooks

    def resample(self):
        """Forgets the gate values: the next use evaluates the gates again."""
        self._values.clear()

    def values(self):
        """Returns ``{group: z}`` of the current forward (evaluated if needed)."""
        return {group: self._values(group) for group in self.gates}

    def parameters(self):
        """Yields the gates' parameters (for their own optimizer)."""
        for gate in self.gates.values():
            yield from gate.parameters()

    def remove(self):
        """Restores the plain parameters (same objects, bit-identical) and hooks."""
        for module, attribute in self._weights:
            parametrize.remove_parametrizations(module, attribute,
                                                leave_parametrized=False)
        for hook in self._hooks:
            hook.remove()
        self._weights, self._hooks = [], []
        self._values.clear()


def attach_unit_gates(model, structure, gates):
    """Gates the units of ``structure`` in ``model`` by ``gates`` (see module doc).

    Arguments
    ---------
    model : torch.nn.Module
        The model ``structure`` was made from; a forward pre-hook on it (and on
        the innermost module holding every gated block) refreshes the gates.
    structure : ModelStructure
        From :func:`~speechbrain_sparse.pruning.unit_structure.model_structure`.
    gates : dict
        Group name -> ``nn.Module`` whose ``forward()`` returns z, float
        ``[count]``.

    Returns
    -------
    GateHandle

    Raises
    ------
    UserInputError
        For a group the structure does not have (or a level it lacks).
    """
    counts = {}
    for group in gates:
        groups = structure.groups([kind_of(group)])
        if group not in groups:
            raise UserInputError(f"unit group {group!r} is not in this "
                                 f"{structure.family} model")
        counts[group] = groups[group][1]
    values = _GateValues(dict(gates), counts)
    plan = _plan(structure, set(gates))
    weights = []
    for (module, attribute), spec in plan.items():
        if parametrize.is_parametrized(module, attribute):
            raise ValueError(f"{type(module).__name__}.{attribute} is already "
                             "parametrized (gates attached twice?)")
        parametrize.register_parametrization(module, attribute,
                                             UnitScale(values, **spec), unsafe=True)
        weights.append((module, attribute))
    hooks = [m.register_forward_pre_hook(values.clear)
             for m in _refresh_modules(model, gates)]
    return GateHandle(values.gates, values, weights, hooks)


def _plan(structure, groups):
    """``{(module, attribute): UnitScale arguments}`` of every gated weight."""
    plan = {}

    def spec(module, attribute):
        return plan.setdefault((module, attribute), {"rows": [], "columns": [],
                                                     "whole": []})

    for block in structure.attention:
        present = {k for k in ("head", "head_qk_dim", "head_vo_dim", "mha")
                   if f"{block.name}:{k}" in groups}
        head = [(f"{block.name}:head", block.head_dim)] if "head" in present else []
        for kind, slots in (("head_qk_dim", ("Wq", "bq")),
                            ("head_vo_dim", ("Wv", "bv"))):
            factors = head + ([(f"{block.name}:{kind}", 1)] if kind in present else [])
            for slot in slots if factors else ():
                if slot not in block.slots:
                    continue
                module, attribute, rows = block.slots[slot]
                _add_rows(spec(module, attribute), raw_parameter(module, attribute),
                          rows, factors)
        if "mha" in present:
            for slot in ("Wo", "bo"):
                if slot in block.slots:
                    spec(*block.slots[slot][:2])["whole"].append(f"{block.name}:mha")
    for block in structure.ffn:
        if f"{block.name}:ffn_unit" in groups:
            spec(block.down, "weight")["columns"].append((f"{block.name}:ffn_unit", 1))
        if f"{block.name}:ffn" in groups:
            for attribute in ("weight", "bias"):
                if getattr(block.down, attribute) is not None:
                    spec(block.down, attribute)["whole"].append(f"{block.name}:ffn")
    for group in groups:
        if group.endswith(":conv_channel"):
            following = structure.conv.convs[structure.block_of(group)[0] + 1]
            spec(following, "weight")["columns"].append((group, 1))
    return plan


def _add_rows(spec, tensor, rows, factors):
    """Adds the row segments of ``rows`` (None: all) scaled by ``factors``."""
    rows = rows or slice(0, tensor.shape[0])
    segments = spec["rows"] or [(tensor.shape[0], [])]
    start, result = 0, []
    for length, existing in segments:  # split the segment holding ``rows``
        stop = start + length
        if start == rows.start and stop == rows.stop:
            result.append((length, existing + factors))
        elif start <= rows.start and rows.stop <= stop:
            result += [(n, f) for n, f in ((rows.start - start, existing),
                                           (rows.stop - rows.start, existing + factors),
                                           (stop - rows.stop, existing)) if n]
        else:
            result.append((length, existing))
        start = stop
    spec["rows"] = result


def _refresh_modules(model, gates):
    """The model and the innermost called module holding every gated block."""
    names = [group.rpartition(":")[0].split(".") for group in gates]
    common = names[0] if names else []
    for name in names[1:]:
        size = next((i for i, (a, b) in enumerate(zip(common, name)) if a != b),
                    min(len(common), len(name)))
        common = common[:size]
    by_name = {canonical_parameter_name(n): m for n, m in model.named_modules()}
    inner = by_name.get(".".join(common))
    while isinstance(inner, CONTAINERS) and common:  # never called themselves
        common = common[:-1]
        inner = by_name.get(".".join(common))
    modules = {id(model): model}
    if inner is not None:
        modules[id(inner)] = inner
    return list(modules.values())
