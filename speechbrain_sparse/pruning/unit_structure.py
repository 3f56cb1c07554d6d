"""The prunable units of a model: attention heads and dims, FFN units, conv channels.

Structured pruning removes *units*: an attention head, one query/key or
value/output dimension of a head, a whole attention block, an FFN unit, a whole
FFN block, a channel of the conv feature encoder. :func:`model_structure` finds,
per model family, the weights each unit owns: a :class:`ModelStructure` lists the
:class:`AttentionBlock`, :class:`FFNBlock` and :class:`ConvStack` of the model,
names the unit *groups* that gates and unit masks act on
(:meth:`ModelStructure.groups`) and counts their parameters.

Attention kinds: ``"torch_packed"`` (SpeechBrain ``TransformerASR`` with
``regularMHA``: ``nn.MultiheadAttention`` with q/k/v packed in ``in_proj_weight``;
encoder self-, decoder self- and cross-attention), ``"hf_modules"`` (Wav2Vec2 and
HuBERT ``q_proj`` ... ``out_proj``), ``"hf_raw"`` (WavLM: the same weights used
raw by ``F.multi_head_attention_forward``; its relative-position parameters
belong to no unit). Conv channels are exact to remove only without a LayerNorm
over channels: ``feat_extract_norm="group"`` (conv 0 GroupNorm, one group per
channel) is, ``"layer"`` is refused. The last conv's channels are never a group.

Example
-------
>>> from transformers import Wav2Vec2Config, Wav2Vec2Model
>>> config = Wav2Vec2Config(hidden_size=8, num_hidden_layers=1,
...     num_attention_heads=2, intermediate_size=16, conv_dim=(4, 4),
...     conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=8,
...     num_conv_pos_embedding_groups=2)
>>> structure = model_structure(Wav2Vec2Model(config))
>>> structure.groups(["head", "ffn_unit"])["encoder.layers.0.attention:head"]
('head', 2)
>>> structure.params_per_unit("encoder.layers.0.attention:head")  # 4 d d_h + 3 d_h
140
"""

import hashlib
import json
from dataclasses import dataclass, field

import torch

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.parameter_names import canonical_parameter_name

UNIT_KINDS = ("conv_channel", "head", "head_qk_dim", "head_vo_dim", "mha", "ffn_unit",
              "ffn")
ATTENTION_KINDS = ("head", "head_qk_dim", "head_vo_dim", "mha")
FFN_KINDS = ("ffn_unit", "ffn")
HF_MODEL_TYPES = ("wav2vec2", "hubert", "wavlm")
SLOT_NAMES = ("Wq", "bq", "Wk", "bk", "Wv", "bv", "Wo", "bo")


def raw_parameter(module, attribute):
    """Returns ``module.<attribute>`` as stored, the original if it is parametrized.

    Example
    -------
    >>> raw_parameter(torch.nn.Linear(2, 3), "weight").shape
    torch.Size([3, 2])
    """
    parametrizations = getattr(module, "parametrizations", None)
    if parametrizations is not None and attribute in parametrizations:
        return parametrizations[attribute].original
    return getattr(module, attribute)


@dataclass
class AttentionBlock:
    """One multi-head attention block: where its q, k, v and out weights live.

    ``slots`` maps ``"Wq"``, ``"bq"``, ... ``"bo"`` to ``(module, attribute,
    rows)``: the tensor ``module.<attribute>`` (``rows``: a slice of it, for
    the packed ``in_proj_weight``; None: all of it; a missing bias: no slot).
    """

    name: str
    kind: str
    module: torch.nn.Module
    embed_dim: int
    num_heads: int
    head_dim: int
    slots: dict = field(default_factory=dict, repr=False)

    def q_k_v_out(self):
        """Returns ``(Wq, bq, Wk, bk, Wv, bv, Wo, bo)``, weights ``[out, in]``:
        views of the parameters (None for a bias that does not exist)."""
        return tuple(self.slot(name) for name in SLOT_NAMES)

    def slot(self, name):
        """Returns the tensor of slot ``name`` (``"Wq"``, ...), None if absent."""
        if name not in self.slots:
            return None
        module, attribute, rows = self.slots[name]
        tensor = raw_parameter(module, attribute)
        return tensor if rows is None else tensor[rows]

    def slot_numel(self, name):
        """Returns the number of entries of slot ``name`` (0 when it is absent)."""
        tensor = self.slot(name)
        return 0 if tensor is None else tensor.numel()


@dataclass
class FFNBlock:
    """One feed-forward block ``down(act(up(x)))``."""

    name: str
    module: torch.nn.Module
    up: torch.nn.Linear
    down: torch.nn.Linear
    d_ffn: int


@dataclass
class ConvStack:
    """The convolutional feature encoder: its Conv1d layers and normalisation.

    ``norms[i]`` is conv ``i``'s channel norm (a GroupNorm with one group per
    channel) or None; conv ``i`` is the module ``f"{name}.{i}.conv"``.
    """

    convs: list
    norm_kind: str
    name: str
    norms: list = field(default_factory=list)


@dataclass
class ModelStructure:
    """The attention, FFN and conv blocks of a model and the unit groups they hold."""

    family: str
    attention: list
    ffn: list
    conv: ConvStack = None

    def check_levels(self, levels):
        """Returns ``levels`` as a tuple; UserInputError for an unknown kind, or
        ``conv_channel`` without a conv stack or over a LayerNorm over channels."""
        levels = (levels,) if isinstance(levels, str) else tuple(levels)
        for level in levels:
            if level not in UNIT_KINDS:
                raise UserInputError(f"unknown unit level {level!r}; "
                                     f"choose from {UNIT_KINDS}")
            if level == "conv_channel" and self.conv is None:
                raise UserInputError(
                    f"unit level 'conv_channel' is not available for family "
                    f"{self.family!r} (no conv feature encoder)")
            if level == "conv_channel" and self.conv.norm_kind == "layer":
                raise UserInputError(
                    f"unit level 'conv_channel': {self.conv.name} is normalised by "
                    "a LayerNorm over channels (feat_extract_norm='layer'), so "
                    "removing a channel changes the others; only group norm is exact")
        return levels

    def groups(self, levels):
        """Returns ``{group name: (unit kind, unit count)}`` for ``levels``: names
        ``"<block name>:<kind>"``, ``"<conv stack>.<i>:conv_channel"`` for the
        output channels of conv ``i`` (every conv but the last)."""
        levels = self.check_levels(levels)
        groups = {}
        if "conv_channel" in levels:
            for i, conv in enumerate(self.conv.convs[:-1]):
                groups[f"{self.conv.name}.{i}:conv_channel"] = ("conv_channel",
                                                                conv.out_channels)
        for block in self.attention:
            dims = block.num_heads * block.head_dim
            counts = {"head": block.num_heads, "head_qk_dim": dims, "head_vo_dim": dims}
            for kind in (k for k in ATTENTION_KINDS if k in levels):
                groups[f"{block.name}:{kind}"] = (kind, counts.get(kind, 1))
        for block in self.ffn:
            for kind, count in (("ffn_unit", block.d_ffn), ("ffn", 1)):
                if kind in levels:
                    groups[f"{block.name}:{kind}"] = (kind, count)
        return groups

    def all_groups(self):
        """Returns :meth:`groups` of every level the structure can gate."""
        conv = self.conv is not None and self.conv.norm_kind != "layer"
        return self.groups([k for k in UNIT_KINDS if k != "conv_channel" or conv])

    def block_of(self, group):
        """Returns ``(block, kind)`` of a group (conv: ``(index, kind)``);
        UserInputError if the structure has no such group."""
        name, _, kind = group.rpartition(":")
        if kind == "conv_channel" and self.conv is not None:
            prefix, _, index = name.rpartition(".")
            if prefix == self.conv.name and index.isdigit() \
                    and int(index) < len(self.conv.convs) - 1:
                return int(index), kind
        blocks = self.attention if kind in ATTENTION_KINDS else (
            self.ffn if kind in FFN_KINDS else [])
        for block in blocks:
            if block.name == name:
                return block, kind
        raise UserInputError(f"unit group {group!r} is not in this {self.family} model")

    def params_per_unit(self, group):
        """Returns the parameters (weights + biases) one unit of ``group`` owns.

        qk dim: rows of W_Q, W_K and biases; vo dim: a row of W_V, its bias and
        a column of W_O; head: ``head_dim`` of both; mha: all q/k/v/o; FFN unit:
        a row of W_up, its bias, a column of W_down; ffn: both Linears; conv
        channel: its filter, bias, norm affine entries, the next conv's column.
        """
        block, kind = self.block_of(group)
        if kind == "conv_channel":
            return _conv_channel_params(self.conv, block)
        if kind in FFN_KINDS:
            unit = block.up.in_features + _bias_numel(block.up) // block.d_ffn \
                + block.down.out_features
            if kind == "ffn_unit":
                return unit
            return unit * block.d_ffn + _bias_numel(block.down)
        qk, vo = _dim_params(block)
        if kind == "head_qk_dim":
            return qk
        if kind == "head_vo_dim":
            return vo
        if kind == "head":
            return block.head_dim * (qk + vo)
        return sum(block.slot_numel(slot) for slot in SLOT_NAMES)

    def num_params(self, levels=ATTENTION_KINDS + FFN_KINDS):
        """Returns the number of parameters the units of ``levels`` can remove
        (``N_gated``); the default is every q/k/v/o and FFN weight and bias.

        Conv parameters count only with ``"conv_channel"``, output biases
        (b_O, b_down) only with ``"mha"`` / ``"ffn"``: no finer unit removes them.
        """
        levels = self.check_levels(levels)
        total = 0
        if "conv_channel" in levels:
            for i, conv in enumerate(self.conv.convs):
                total += conv.weight.numel()
                if i < len(self.conv.convs) - 1:
                    total += _bias_numel(conv) + _norm_numel(self.conv, i)
        if set(levels) & set(ATTENTION_KINDS):
            for block in self.attention:
                qk, vo = _dim_params(block)
                total += block.num_heads * block.head_dim * (qk + vo)
                total += block.slot_numel("bo") if "mha" in levels else 0
        if set(levels) & set(FFN_KINDS):
            for block in self.ffn:
                total += self.params_per_unit(f"{block.name}:ffn_unit") * block.d_ffn
                total += _bias_numel(block.down) if "ffn" in levels else 0
        return total

    def describe(self):
        """Returns the sizes that identify the structure, as plain data."""
        conv = self.conv and [self.conv.name, self.conv.norm_kind,
                              [c.out_channels for c in self.conv.convs]]
        attention = [[b.name, b.kind, b.embed_dim, b.num_heads, b.head_dim]
                     for b in self.attention]
        ffn = [[b.name, b.up.in_features, b.d_ffn] for b in self.ffn]
        return {"family": self.family, "conv": conv, "attention": attention, "ffn": ffn}

    def fingerprint(self):
        """Returns the sha256 of :meth:`describe` (which model a unit mask is for)."""
        text = json.dumps(self.describe(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def _bias_numel(module):
    bias = getattr(module, "bias", None)
    return 0 if bias is None else bias.numel()


def _norm_numel(conv, index):
    """Affine entries per channel of conv ``index``'s norm, times its channels."""
    norm = conv.norms[index] if index < len(conv.norms) else None
    if norm is None:
        return 0
    return sum(p.numel() for p in (norm.weight, norm.bias) if p is not None)


def _conv_channel_params(conv, index):
    own = conv.convs[index]
    following = conv.convs[index + 1]
    row = own.weight[0].numel() + _bias_numel(own) // own.out_channels
    norm = _norm_numel(conv, index) // own.out_channels
    return row + norm + following.weight[:, 0].numel()


def _slots(projections):
    """``[(p, module, weight, bias, rows)]`` in q, k, v, o order -> slots."""
    slots = {}
    for p, module, weight, bias, rows in projections:
        slots[f"W{p}"] = (module, weight, rows)
        if getattr(module, bias) is not None:
            slots[f"b{p}"] = (module, bias, rows)
    return slots


def _dim_params(block):
    """Parameters of one qk dim and of one vo dim of an attention block."""
    width = block.num_heads * block.head_dim
    qk = sum(block.slot_numel(s) for s in ("Wq", "bq", "Wk", "bk")) // width
    vo = sum(block.slot_numel(s) for s in ("Wv", "bv")) // width
    return qk, vo + block.slot_numel("Wo") // width


def model_structure(model):
    """Returns the :class:`ModelStructure` of a supported model (also when wrapped).

    Arguments
    ---------
    model : torch.nn.Module
        A SpeechBrain ``TransformerASR``, a ``transformers`` Wav2Vec2 / HuBERT /
        WavLM (base or ``*ForCTC``), or a module containing one (the first
        found). Block names are canonical module paths in ``model``.

    Raises
    ------
    UserInputError
        For another model, or attention other than ``regularMHA`` (named).
    """
    from speechbrain.lobes.models.transformer.TransformerASR import TransformerASR

    for path, module in model.named_modules():
        prefix = canonical_parameter_name(path)
        prefix = prefix + "." if prefix else ""
        if isinstance(module, TransformerASR):
            return _transformer_asr(module, prefix)
        model_type = getattr(getattr(module, "config", None), "model_type", None)
        if model_type in HF_MODEL_TYPES and hasattr(module, "base_model"):
            return _hugging_face(module, prefix, model_type)
    raise UserInputError(
        f"structured pruning supports SpeechBrain TransformerASR and transformers "
        f"{HF_MODEL_TYPES} models; {type(model).__name__} contains none of them")


def _torch_attention(wrapper, name):
    from speechbrain.nnet.attention import MultiheadAttention

    if not isinstance(wrapper, MultiheadAttention):
        raise UserInputError(
            f"{name}: attention type {type(wrapper).__name__} is not supported by "
            "structured pruning; use attention_type='regularMHA'")
    att = wrapper.att
    if att.in_proj_weight is None or att.bias_k is not None:
        raise UserInputError(f"{name}: nn.MultiheadAttention without a packed "
                             "in_proj_weight, or with add_bias_kv, is not supported")
    d = att.embed_dim
    slots = _slots([(p, att, "in_proj_weight", "in_proj_bias", slice(i * d, i * d + d))
                    for i, p in enumerate("qkv")] + [("o", att.out_proj, "weight",
                                                       "bias", None)])
    return AttentionBlock(name, "torch_packed", att, d, att.num_heads, att.head_dim,
                          slots)


def _transformer_asr(transformer, prefix):
    from speechbrain.lobes.models.transformer.Transformer import (
        TransformerDecoder,
        TransformerEncoder,
    )

    attention, ffn = [], []
    parts = [("encoder", TransformerEncoder, ("self_att",)),
             ("decoder", TransformerDecoder, ("self_attn", "multihead_attn"))]
    for part, expected, attributes in parts:
        stack = getattr(transformer, part, None)
        if stack is None:
            continue
        if not isinstance(stack, expected):
            raise UserInputError(f"{prefix}{part}: {type(stack).__name__} is not "
                                 "supported by structured pruning (only "
                                 f"{expected.__name__})")
        for i, layer in enumerate(stack.layers):
            base = f"{prefix}{part}.layers.{i}"
            for attribute in attributes:
                attention.append(_torch_attention(getattr(layer, attribute),
                                                  f"{base}.{attribute}"))
            up, down = layer.pos_ffn.ffn[0], layer.pos_ffn.ffn[-1]
            ffn.append(FFNBlock(f"{base}.pos_ffn", layer.pos_ffn, up, down,
                                up.out_features))
    return ModelStructure("transformer_asr", attention, ffn, None)


def _hugging_face(model, prefix, model_type):
    base = model.base_model
    base_prefix = prefix + next(
        (f"{n}." for n, m in model.named_children() if m is base), "")
    attention, ffn = [], []
    kind = "hf_raw" if model_type == "wavlm" else "hf_modules"
    for i, layer in enumerate(base.encoder.layers):
        name = f"{base_prefix}encoder.layers.{i}"
        att = layer.attention
        slots = _slots([(p[0], getattr(att, f"{p}_proj"), "weight", "bias", None)
                        for p in ("q", "k", "v", "out")])
        attention.append(AttentionBlock(f"{name}.attention", kind, att, att.embed_dim,
                                        att.num_heads, att.head_dim, slots))
        forward = layer.feed_forward
        up, down = forward.intermediate_dense, forward.output_dense
        ffn.append(FFNBlock(f"{name}.feed_forward", forward, up, down, up.out_features))
    layers = base.feature_extractor.conv_layers
    norm_kind = {"group": "group", "layer": "layer"}.get(base.config.feat_extract_norm,
                                                         "none")
    norms = [layer.layer_norm if isinstance(getattr(layer, "layer_norm", None),
                                            torch.nn.GroupNorm) else None
             for layer in layers]
    conv = ConvStack([layer.conv for layer in layers], norm_kind,
                     f"{base_prefix}feature_extractor.conv_layers", norms)
    return ModelStructure(model_type, attention, ffn, conv)
