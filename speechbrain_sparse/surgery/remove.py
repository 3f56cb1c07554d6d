"""Remove the units a unit mask prunes, for real: smaller matrices, fewer heads.

:func:`remove_units` turns a binary unit mask
(:class:`~speechbrain_sparse.pruning.unit_masks.UnitMask`: group -> bool per
unit, True = kept) into a smaller model, in place, that computes what the
model computes with the mask applied as fixed gates
(:mod:`speechbrain_sparse.pruning.unit_gates`):

* an FFN block keeps the rows of ``up`` and the columns of ``down`` of its
  kept units; with none kept it becomes a :class:`ConstantOutput` of its
  ``down`` bias, or of zero when its ``:ffn`` gate is closed;
* an attention block keeps, per head, the query/key dims and value/output
  dims the mask keeps (a closed ``:head`` or ``:mha`` removes them all). A
  head without value dims contributes nothing and goes; a head without
  query/key dims stays (its scores are zero: uniform attention). When every
  kept head keeps all its dims, a ``transformers`` Wav2Vec2/HuBERT module is
  sliced in place (it reshapes with ``-1`` heads); otherwise, and always for
  torch's ``nn.MultiheadAttention`` and WavLM, it is replaced by a
  :class:`PrunedSelfAttention`. No head left: :class:`ConstantOutput` of the
  out bias (zero when ``:mha`` is closed); WavLM keeps a head-less
  :class:`PrunedSelfAttention` so layer 0 still builds the position bias;
* conv channel ``c`` of conv ``i`` (group-normalised or unnormalised stacks
  only) removes its filter, bias, GroupNorm entries and conv ``i+1``'s input
  column. A conv layer with no channel left is an error.

LayerNorms are never touched: post-LN layers keep them after a removed block.

Authors
 * speechbrain_sparse contributors 2026

Example
-------
>>> from transformers import Wav2Vec2Config, Wav2Vec2Model
>>> config = Wav2Vec2Config(hidden_size=8, num_hidden_layers=1,
...     num_attention_heads=2, intermediate_size=16, conv_dim=(4, 4),
...     conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=8,
...     num_conv_pos_embedding_groups=2)
>>> model = Wav2Vec2Model(config).eval()
>>> mask = {"encoder.layers.0.attention:head": torch.tensor([True, False]),
...         "encoder.layers.0.feed_forward:ffn_unit": torch.arange(16) < 5}
>>> _ = remove_units(model, mask)
>>> layer = model.encoder.layers[0]
>>> layer.attention.q_proj.weight.shape, layer.feed_forward.output_dense.weight.shape
(torch.Size([4, 8]), torch.Size([8, 5]))
"""

import torch
from torch.nn.utils import parametrize

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.pruning.unit_structure import (
    AttentionBlock,
    FFNBlock,
    ModelStructure,
    model_structure,
)
from speechbrain_sparse.surgery.modules import ConstantOutput, PrunedSelfAttention

#: Attribute of the root model holding what :func:`remove_units` did.
RECORD_ATTRIBUTE = "surgery_record"
CALLS = {"torch_packed": "torch", "hf_modules": "hf", "hf_raw": "wavlm"}


def remove_units(model, unit_mask, structure=None):
    """Removes the units ``unit_mask`` prunes from ``model``, in place.

    Arguments
    ---------
    model : torch.nn.Module
        A SpeechBrain ``TransformerASR`` (or a module holding one) or a
        ``transformers`` Wav2Vec2 / HuBERT / WavLM model, without gates.
    unit_mask : Mapping
        Group name -> bool tensor ``[count]`` (True = kept), e.g. a
        ``UnitMask``; groups not in it keep all their units.
    structure : ModelStructure, optional
        ``model_structure(model)`` (computed when not given).

    Returns
    -------
    ModelStructure
        The surgered model's blocks: attention blocks with heads left (kind
        ``"pruned"`` for a :class:`PrunedSelfAttention`), FFN blocks with units
        left, the conv stack. What was done is recorded on ``model`` as
        ``model.surgery_record`` (for :func:`~.io.save_structured`).

    Raises
    ------
    UserInputError
        Gates still attached (parametrized weights), a model already
        surgered, a mask for another model, a conv layer with no channel
        left or conv channels over a LayerNorm-normalised stack. Nothing is
        changed then.
    """
    if getattr(model, RECORD_ATTRIBUTE, None) is not None:
        raise UserInputError("model: already surgered (surgery_record set); apply "
                             "one unit mask to the original model instead")
    structure = structure if structure is not None else model_structure(model)
    _refuse_gated(structure)
    keep = _checked_groups(unit_mask, structure)
    _check_conv(structure, keep)  # before anything changes
    fingerprint = structure.fingerprint()
    summary = {"attention": [], "ffn": [], "conv": None}
    new_attention, new_ffn = [], []
    for block in structure.attention:
        entry, replacement = _attention(model, block, keep)
        summary["attention"].append(entry)
        if replacement is not None:
            new_attention.append(replacement)
    for block in structure.ffn:
        entry, replacement = _ffn(model, block, keep)
        summary["ffn"].append(entry)
        if replacement is not None:
            new_ffn.append(replacement)
    if structure.conv is not None:
        summary["conv"] = _conv(structure.conv, keep)
    setattr(model, RECORD_ATTRIBUTE, {
        "family": structure.family, "fingerprint": fingerprint,
        "mask": {group: bits.clone() for group, bits in keep.items()},
        "summary": summary,
    })
    return ModelStructure(structure.family, new_attention, new_ffn, structure.conv)


def _refuse_gated(structure):
    """Unit gates are parametrizations of the blocks' weights: none may be left."""
    modules = [(b.name, slot[0]) for b in structure.attention
               for slot in b.slots.values()]
    modules += [(b.name, m) for b in structure.ffn for m in (b.up, b.down)]
    if structure.conv is not None:
        modules += [(structure.conv.name, m) for m in structure.conv.convs]
    for name, module in modules:
        if parametrize.is_parametrized(module):
            raise UserInputError(
                f"model: {name} still has gates attached (parametrized "
                "weights): take the deterministic mask (deterministic_mask() of each "
                "gate -> UnitMask), call the gate handle's remove(), then remove_units")


def _checked_groups(unit_mask, structure):
    """Group -> bool tensor, every group checked against the structure."""
    fingerprint = getattr(unit_mask, "fingerprint", None)
    if isinstance(fingerprint, str) and fingerprint != structure.fingerprint():
        raise UserInputError("unit mask: made for another model (structure "
                             "fingerprint differs)")
    keep = {}
    for group, bits in unit_mask.items():
        _, kind = structure.block_of(group)  # UserInputError: not in the model
        expected = structure.groups([kind])[group][1]  # refuses LayerNorm conv stacks
        bits = torch.as_tensor(bits)
        if bits.dtype != torch.bool or bits.shape != (expected,):
            raise UserInputError(f"unit mask group {group!r}: expected a bool tensor "
                                 f"of shape ({expected},), got {bits.dtype} "
                                 f"{tuple(bits.shape)}")
        keep[group] = bits.cpu()
    return keep


def _check_conv(structure, keep):
    for group, bits in keep.items():
        if group.endswith(":conv_channel") and not bits.any():
            raise UserInputError(f"unit mask group {group!r}: all {bits.numel()} "
                                 "channels of this conv layer are pruned; a conv layer "
                                 "cannot be removed (keep at least one channel)")


def _replace(model, old, new):
    """Puts ``new`` where ``old`` is a child, everywhere in ``model``."""
    found = False
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if child is old:
                setattr(parent, name, new)
                found = True
    if not found:
        raise RuntimeError(f"module {type(old).__name__} not found in the model")


def _attention_keep(block, keep):
    heads, dim = block.num_heads, block.head_dim
    mha = bool(keep.get(f"{block.name}:mha", torch.ones(1, dtype=torch.bool))[0])
    head = keep.get(f"{block.name}:head", torch.ones(heads, dtype=torch.bool))
    full = torch.ones(heads * dim, dtype=torch.bool)
    qk = keep.get(f"{block.name}:head_qk_dim", full).view(heads, dim) & head[:, None]
    vo = keep.get(f"{block.name}:head_vo_dim", full).view(heads, dim) & head[:, None]
    return mha, qk & mha, vo & mha


def _attention(model, block, keep):
    mha, qk, vo = _attention_keep(block, keep)
    kept = [h for h in range(block.num_heads) if vo[h].any()]
    weights = block.q_k_v_out()
    bo = weights[7]
    entry = {"name": block.name, "heads": kept,
             "qk_dims": [int(qk[h].sum()) for h in kept],
             "vo_dims": [int(vo[h].sum()) for h in kept]}
    old = block.module
    if mha and len(kept) == block.num_heads and bool(qk.all()) and bool(vo.all()):
        entry["state"] = "unchanged"
        return entry, block
    if not kept and block.kind != "hf_raw":
        value = bo if (mha and bo is not None) else None
        entry["state"] = "bias" if value is not None else "zero"
        _replace(model, old,
                 ConstantOutput(value, size=block.embed_dim, returns="pair"))
        return entry, None
    if block.kind == "hf_modules" and all(qk[h].all() and vo[h].all() for h in kept):
        entry["state"] = "sliced"
        _slice_hf_heads(old, kept, block.head_dim)
        return entry, AttentionBlock(block.name, block.kind, old, block.embed_dim,
                                     len(kept), block.head_dim, block.slots)
    reference = weights[0]
    new = PrunedSelfAttention(
        block.embed_dim, entry["qk_dims"], entry["vo_dims"], block.head_dim,
        call=CALLS[block.kind], bias=weights[1] is not None,
        out_bias=bo is not None and mha, kept_heads=kept, num_heads=block.num_heads,
        dtype=reference.dtype, device=reference.device,
        dropout=float(getattr(old, "dropout", 0.0) or 0.0))
    rows = torch.arange(block.num_heads * block.head_dim).view(block.num_heads, -1)
    new.load_head_weights(weights, [rows[h][qk[h]] for h in kept],
                          [rows[h][vo[h]] for h in kept])
    if block.kind == "hf_raw":
        new.keep_relative_position(old)
    new.train(old.training)
    _replace(model, old, new)
    constant = "bias" if getattr(new, "out_bias", None) is not None else "zero"
    entry["state"] = "pruned" if kept else constant
    if not kept:
        return entry, None
    return entry, AttentionBlock(block.name, "pruned", new, block.embed_dim, len(kept),
                                 block.head_dim)


def _keep_rows(linear, rows):
    linear.weight = torch.nn.Parameter(linear.weight.detach()[rows],
                                       linear.weight.requires_grad)
    if linear.bias is not None:
        linear.bias = torch.nn.Parameter(linear.bias.detach()[rows],
                                         linear.bias.requires_grad)
    linear.out_features = len(rows)


def _keep_columns(linear, columns):
    linear.weight = torch.nn.Parameter(linear.weight.detach()[:, columns],
                                       linear.weight.requires_grad)
    linear.in_features = len(columns)


def _slice_hf_heads(attention, kept, head_dim):
    rows = torch.cat([torch.arange(h * head_dim, (h + 1) * head_dim) for h in kept])
    for linear in (attention.q_proj, attention.k_proj, attention.v_proj):
        _keep_rows(linear, rows)
    _keep_columns(attention.out_proj, rows)
    attention.num_heads = len(kept)


def _ffn(model, block, keep):
    gate = bool(keep.get(f"{block.name}:ffn", torch.ones(1, dtype=torch.bool))[0])
    units = keep.get(f"{block.name}:ffn_unit")
    units = torch.ones(block.d_ffn, dtype=torch.bool) if units is None else units
    units = units & gate
    entry = {"name": block.name, "units": int(units.sum())}
    if not units.any():
        bias = block.down.bias if gate else None
        entry["state"] = "bias" if bias is not None else "zero"
        constant = ConstantOutput(bias, size=block.down.out_features)
        _replace(model, block.module, constant)
        return entry, None
    entry["state"] = "sliced"
    rows = units.nonzero().squeeze(1)
    _keep_rows(block.up, rows)
    _keep_columns(block.down, rows)
    return entry, FFNBlock(block.name, block.module, block.up, block.down, len(rows))


def _conv(stack, keep):
    channels = []
    for i, conv in enumerate(stack.convs):
        bits = keep.get(f"{stack.name}.{i}:conv_channel")
        if bits is None or i == len(stack.convs) - 1:
            channels.append(conv.out_channels)
            continue
        rows = bits.nonzero().squeeze(1)
        _keep_rows_conv(conv, rows)
        norm = stack.norms[i] if i < len(stack.norms) else None
        if norm is not None:
            norm.weight = torch.nn.Parameter(norm.weight.detach()[rows])
            norm.bias = torch.nn.Parameter(norm.bias.detach()[rows])
            norm.num_groups = norm.num_channels = len(rows)
        following = stack.convs[i + 1]
        following.weight = torch.nn.Parameter(
            following.weight.detach()[:, rows])
        following.in_channels = len(rows)
        channels.append(len(rows))
    return {"name": stack.name, "channels": channels}


def _keep_rows_conv(conv, rows):
    conv.weight = torch.nn.Parameter(conv.weight.detach()[rows])
    if conv.bias is not None:
        conv.bias = torch.nn.Parameter(conv.bias.detach()[rows])
    conv.out_channels = len(rows)


def count_parameters(model, padding=False):
    """Returns the number of parameters of ``model`` (shared ones once).

    Arguments
    ---------
    model : torch.nn.Module
        The model.
    padding : bool
        Count the zero rows that pad a :class:`PrunedSelfAttention`'s heads
        to the largest kept head (default: no, so the count is the one a
        unit mask predicts).

    Example
    -------
    >>> count_parameters(torch.nn.Linear(3, 2))
    8
    """
    total = sum(p.numel() for p in model.parameters())
    if not padding:
        total -= sum(m.num_padding_params() for m in model.modules()
                     if isinstance(m, PrunedSelfAttention))
    return total
