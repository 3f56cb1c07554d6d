"""The unit mask: which heads, head dims, FFN units, blocks and conv channels are kept.

A :class:`UnitMask` maps a unit group of a
:class:`~speechbrain_sparse.pruning.unit_structure.ModelStructure` (``"<block>:
<kind>"``) to a bool tensor, one entry per unit (True = kept). Units nest: a
closed ``:mha`` removes all its heads and head dims, a closed head its dims, a
head whose value/output dims are all gone contributes nothing (its query/key
dims go too), a closed ``:ffn`` all its units (:meth:`UnitMask.hierarchical`).
A block whose heads (FFN units) are all gone but whose ``:mha`` (``:ffn``) is
kept still adds its output bias.

:meth:`UnitMask.to_parameter_mask` expands it into the
:class:`~speechbrain_sparse.masks.ParameterMask` of the entries the removed
units own, so ``sb-sparse inspect``, the mask algebra and the plots work on it:

* qk dim ``j`` of head ``h``: row ``h*head_dim + j`` of W_Q and of W_K, and
  those entries of their biases;
* vo dim: that row of W_V (and bias) and that column of W_O;
* head: all its qk and vo dims; mha: every q, k, v, o weight and bias (b_O too);
* FFN unit ``u``: row ``u`` of W_up, ``b_up[u]``, column ``u`` of W_down;
  ffn: both Linears, b_down too;
* channel ``c`` of conv ``i``: output filter ``c`` of conv ``i`` (its bias and
  its GroupNorm's affine entries) and input channel ``c`` of conv ``i+1``.

Files use the checksummed atomic record format of
:mod:`speechbrain_sparse.fileio.records`, as parameter masks do.

Example
-------
>>> from transformers import Wav2Vec2Config, Wav2Vec2Model
>>> from speechbrain_sparse.pruning.unit_structure import model_structure
>>> config = Wav2Vec2Config(hidden_size=8, num_hidden_layers=1,
...     num_attention_heads=2, intermediate_size=16, conv_dim=(4, 4),
...     conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=8,
...     num_conv_pos_embedding_groups=2)
>>> model = Wav2Vec2Model(config)
>>> structure = model_structure(model)
>>> mask = UnitMask.full(structure, ["mha", "head", "ffn_unit"])
>>> mask = mask.replace({"encoder.layers.0.attention:mha": torch.tensor([False])})
>>> closed = mask.hierarchical()
>>> closed["encoder.layers.0.attention:head"]
tensor([False, False])
>>> structure.num_params(closed.levels) - closed.num_kept_params(structure)
288
>>> (~closed.to_parameter_mask(model, structure)).num_selected()
288
"""

import re
from collections.abc import Mapping

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
from speechbrain_sparse.masks import Coverage, ParameterMask
from speechbrain_sparse.parameter_names import canonical_parameter_name
from speechbrain_sparse.pruning.unit_structure import (
    ATTENTION_KINDS,
    FFN_KINDS,
    UNIT_KINDS,
    raw_parameter,
)

FORMAT_NAME = "speechbrain_sparse.UnitMask"
FORMAT_VERSION = 1


def kind_of(group):
    """Returns the unit kind of a group name (what follows the last ``:``).

    Example
    -------
    >>> kind_of("encoder.layers.0.self_att:head_qk_dim")
    'head_qk_dim'
    """
    kind = group.rpartition(":")[2]
    if kind not in UNIT_KINDS:
        raise UserInputError(f"unit group {group!r}: unknown unit kind {kind!r}")
    return kind


class UnitMask(Mapping):
    """A mapping unit group -> bool tensor ``[count]`` (True = kept).

    Arguments
    ---------
    tensors : dict
        Group name -> bool tensor of one entry per unit.
    fingerprint : str, optional
        :meth:`ModelStructure.fingerprint` of the model it was made for.
    method : str
        How it was made (saved in the file).
    options : dict
        The method's options (saved in the file).

    Example
    -------
    >>> mask = UnitMask({"enc.0.ffn:ffn_unit": torch.tensor([True, False, True])})
    >>> mask.kinds, mask.num_kept(), mask.levels
    ({'enc.0.ffn:ffn_unit': 'ffn_unit'}, 2, ('ffn_unit',))
    """

    def __init__(self, tensors, fingerprint=None, method="manual", options=None):
        self._tensors = {}
        for group, tensor in tensors.items():
            tensor = torch.as_tensor(tensor).detach().cpu()
            if tensor.dtype != torch.bool or tensor.dim() != 1:
                raise ValueError(f"unit mask of {group!r} must be a 1-D bool tensor, "
                                 f"got {tensor.dtype} {tuple(tensor.shape)}")
            self._tensors[group] = tensor
        self.kinds = {group: kind_of(group) for group in self._tensors}
        self.fingerprint = fingerprint
        self.method = method
        self.options = dict(options or {})

    def __getitem__(self, group):
        return self._tensors[group]

    def __iter__(self):
        return iter(self._tensors)

    def __len__(self):
        return len(self._tensors)

    def __eq__(self, other):
        return isinstance(other, UnitMask) and list(self) == list(other) and all(
            torch.equal(self[g], other[g]) for g in self)

    __hash__ = None

    def __repr__(self):
        return (f"UnitMask(method={self.method!r}, groups={len(self)}, "
                f"kept={self.num_kept()}/{self.num_units()})")

    @classmethod
    def full(cls, structure, levels, value=True, **metadata):
        """Returns the mask of ``structure.groups(levels)``, every unit ``value``."""
        tensors = {g: torch.full((count,), value, dtype=torch.bool)
                   for g, (_, count) in structure.groups(levels).items()}
        metadata.setdefault("method", "full" if value else "empty")
        return cls(tensors, structure.fingerprint(), **metadata)

    def replace(self, tensors, method=None):
        """Returns a copy with the groups in ``tensors`` replaced (or added)."""
        return UnitMask({**self._tensors, **tensors}, self.fingerprint,
                        method or self.method, self.options)

    @property
    def levels(self):
        """The unit kinds present, in :data:`UNIT_KINDS` order."""
        return tuple(k for k in UNIT_KINDS if k in self.kinds.values())

    def num_units(self):
        """Returns the number of units of all groups."""
        return sum(t.numel() for t in self._tensors.values())

    def num_kept(self):
        """Returns the number of kept units."""
        return sum(int(t.count_nonzero()) for t in self._tensors.values())

    def check_matches(self, structure, source="unit mask"):
        """Raises UserInputError naming the first group ``structure`` lacks or
        whose unit count differs."""
        for group, tensor in self._tensors.items():
            try:
                expected = structure.groups([self.kinds[group]]).get(group)
            except UserInputError as error:
                raise UserInputError(f"{source}: group {group!r}: {error}") from None
            if expected is None:
                raise UserInputError(
                    f"{source}: group {group!r} (shape {tuple(tensor.shape)}) is not "
                    f"in this {structure.family} model")
            if expected[1] != tensor.numel():
                raise UserInputError(
                    f"{source}: group {group!r} has shape {tuple(tensor.shape)} in the "
                    f"mask but {(expected[1],)} in the {structure.family} model")

    def hierarchical(self, structure=None):
        """Returns the mask with nested units closed (see the module docstring).

        A head whose vo dims are all removed is closed when the head count is
        known: from the ``:head`` group or from ``structure``.
        """
        tensors = dict(self._tensors)
        heads = {b.name: b.num_heads for b in structure.attention} if structure else {}
        for block in dict.fromkeys(g.rpartition(":")[0] for g in self):
            _close_attention(tensors, block, heads.get(block))
            ffn, units = tensors.get(f"{block}:ffn"), tensors.get(f"{block}:ffn_unit")
            if ffn is not None and units is not None:
                tensors[f"{block}:ffn_unit"] = units & ffn
        return UnitMask(tensors, self.fingerprint, self.method, self.options)

    def kept_entries(self, structure):
        """Returns ``{id(parameter): (parameter, kept)}`` for every parameter the
        levels of this mask touch; ``kept`` is False where a removed unit owns
        the entry (parametrized weights: their original parameter)."""
        self.check_matches(structure)
        levels = ATTENTION_KINDS + FFN_KINDS + (
            ("conv_channel",) if "conv_channel" in self.levels else ())
        closed = UnitMask.full(structure, levels).replace(self._tensors)
        closed = closed.hierarchical(structure)
        kept = {}

        def entries(module, attribute, rows=None):
            parameter = raw_parameter(module, attribute)
            if id(parameter) not in kept:
                ones = torch.ones(parameter.shape, dtype=torch.bool)
                kept[id(parameter)] = (parameter, ones)
            tensor = kept[id(parameter)][1]
            return tensor if rows is None else tensor[rows]

        for block in structure.attention:
            qk = ~closed[f"{block.name}:head_qk_dim"]
            vo = ~closed[f"{block.name}:head_vo_dim"]
            for slot, removed in (("Wq", qk), ("bq", qk), ("Wk", qk), ("bk", qk),
                                  ("Wv", vo), ("bv", vo)):
                if slot in block.slots:
                    entries(*block.slots[slot])[removed] = False
            entries(*block.slots["Wo"])[:, vo] = False
            if "bo" in block.slots and not closed[f"{block.name}:mha"].item():
                entries(*block.slots["bo"])[:] = False
        for block in structure.ffn:
            units = ~closed[f"{block.name}:ffn_unit"]
            entries(block.up, "weight")[units] = False
            if block.up.bias is not None:
                entries(block.up, "bias")[units] = False
            entries(block.down, "weight")[:, units] = False
            if block.down.bias is not None and not closed[f"{block.name}:ffn"].item():
                entries(block.down, "bias")[:] = False
        for group, channels in closed.items():
            if closed.kinds[group] == "conv_channel":
                index = structure.block_of(group)[0]
                _conv_entries(structure.conv, index, ~channels, entries)
        return kept

    def num_kept_params(self, structure):
        """Returns the parameters kept of ``structure.num_params(self.levels)``."""
        removed = sum(int((~k).sum()) for _, k in self.kept_entries(structure).values())
        return structure.num_params(self.levels) - removed

    def to_parameter_mask(self, model, structure):
        """Returns the :class:`ParameterMask` over all parameters of ``model``,
        False exactly at the entries the removed units own.

        ``model`` is the model ``structure`` was made from (gated or not:
        parametrized weights are named as the plain parameters).
        """
        kept = self.kept_entries(structure)
        tensors = {}
        for name, parameter in model.named_parameters():
            name = canonical_parameter_name(
                re.sub(r"parametrizations\.(\w+)\.original$", r"\1", name))
            entry = kept.get(id(parameter))
            tensors[name] = entry[1].clone() if entry is not None else torch.ones(
                parameter.shape, dtype=torch.bool)
        return ParameterMask(tensors, Coverage(), "unit_mask",
                             {"unit_mask": self.method, "levels": list(self.levels)})

    def save(self, path):
        """Writes the mask to ``path`` atomically, as a checksummed record."""
        flat = [t for t in self._tensors.values()]
        bits = torch.cat(flat) if flat else torch.zeros(0, dtype=torch.bool)
        packed = pack_bits(bits)
        save_record(path, FORMAT_NAME, FORMAT_VERSION, {
            "method": self.method, "options": self.options,
            "fingerprint": self.fingerprint,
            "groups": [{"name": g, "count": t.numel(), "kept": int(t.count_nonzero())}
                       for g, t in self._tensors.items()],
            "numel": int(bits.numel()), "payload": packed,
            "payload_sha256": sha256_of([packed]),
        })

    @classmethod
    def load(cls, path, structure=None):
        """Reads a mask written by :meth:`save`; checks it against ``structure``.

        Raises
        ------
        MissingInputError
            If there is no such file.
        UserInputError
            If it is truncated, corrupted or of another format, or does not fit
            ``structure`` (the message names the file and the group).
        """
        mask = load_record(path, FORMAT_NAME, FORMAT_VERSION, cls._from_record,
                           "unit mask file")
        if structure is not None:
            mask.check_matches(structure, source=str(path))
        return mask

    @classmethod
    def _from_record(cls, record):
        check_sha256([record["payload"]], record["payload_sha256"])
        flat = unpack_bits(record["payload"], record["numel"])
        sizes = [int(g["count"]) for g in record["groups"]]
        if sum(sizes) != record["numel"]:
            raise ValueError("group list does not match the payload size")
        tensors = {g["name"]: part.clone()
                   for g, part in zip(record["groups"], flat.split(sizes))}
        return cls(tensors, record["fingerprint"], record["method"], record["options"])


def _close_attention(tensors, block, num_heads):
    """Closes the head, qk and vo groups of one attention block in place."""
    groups = {k: tensors.get(f"{block}:{k}") for k in ATTENTION_KINDS}
    if all(t is None for t in groups.values()):
        return
    mha = groups["mha"] if groups["mha"] is not None else torch.ones(1, dtype=bool)
    head, qk, vo = groups["head"], groups["head_qk_dim"], groups["head_vo_dim"]
    num_heads = head.numel() if head is not None else num_heads
    if num_heads is None:  # unknown head count: only the block gate closes dims
        for kind, dims in (("head_qk_dim", qk), ("head_vo_dim", vo)):
            if dims is not None:
                tensors[f"{block}:{kind}"] = dims & mha
        return
    head = (head if head is not None else torch.ones(num_heads, dtype=bool)) & mha
    if vo is not None:
        vo = vo & head.repeat_interleave(vo.numel() // num_heads)
        head = head & vo.view(num_heads, -1).any(1)
        tensors[f"{block}:head_vo_dim"] = vo
    if qk is not None:
        tensors[f"{block}:head_qk_dim"] = qk & head.repeat_interleave(
            qk.numel() // num_heads)
    if groups["head"] is not None:
        tensors[f"{block}:head"] = head


def _conv_entries(conv, index, removed, entries):
    """Marks the entries of the removed channels of conv ``index``."""
    own, following = conv.convs[index], conv.convs[index + 1]
    entries(own, "weight")[removed] = False
    norm = conv.norms[index] if index < len(conv.norms) else None
    for module in (own, norm):
        if module is not None and getattr(module, "bias", None) is not None:
            entries(module, "bias")[removed] = False
    if norm is not None and norm.weight is not None:
        entries(norm, "weight")[removed] = False
    entries(following, "weight")[:, removed] = False
