"""Tiny models, random unit masks and fixed-gate references for the surgery tests.

The reference for "surgered" is the same model with the unit mask applied as
fixed gates in eval mode (:func:`gated_copy`): the unit gates of
``speechbrain_sparse.pruning.unit_gates`` with ``FixedGate``. Bit-for-bit
checks use :func:`zeroed_copy` (the same products written into plain
parameters): a parametrized weight is a new tensor whose matmuls may round
differently from the parameter's (1e-15 in float64 here, open gates too).
"""

import copy

import torch

from tests.unit.pruning_models import HF_TINY, hf_classes, tiny_transformer_asr

LEVELS = ("head", "head_qk_dim", "head_vo_dim", "mha", "ffn_unit", "ffn")


def hf_model(kind, seed=0, **overrides):
    """A 2-layer, 32-wide float64 base model (no save / load round trip)."""
    config_class, base_class, _ = hf_classes(kind)
    extra = {"num_buckets": 32, "max_bucket_distance": 64} if kind == "wavlm" else {}
    torch.manual_seed(seed)
    settings = {**HF_TINY, **extra, "feat_extract_norm": "group", **overrides}
    return base_class(config_class(**settings)).double().eval()


def asr_model(seed=0):
    """The recipe's tiny TransformerASR hparams, model in float64."""
    hparams = tiny_transformer_asr(seed)
    hparams["model"].double().eval()
    return hparams


def hf_inputs(lengths=(3200, 2400), seed=0):
    """Padded float64 waveforms and their 0/1 attention mask."""
    generator = torch.Generator().manual_seed(seed)
    wavs = torch.zeros(len(lengths), max(lengths), dtype=torch.float64)
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for i, n in enumerate(lengths):
        wavs[i, :n] = torch.randn(n, generator=generator, dtype=torch.float64)
        mask[i, :n] = 1
    return wavs, mask


def hf_run(model, inputs):
    """``last_hidden_state`` over the real frames only (padded ones zeroed)."""
    wavs, mask = inputs
    with torch.no_grad():
        out = model(wavs, attention_mask=mask).last_hidden_state
    frames = model._get_feature_vector_attention_mask(out.shape[1], mask)
    return out * frames[..., None]


def asr_inputs(seed=0, lengths=(1.0, 0.6), tokens=(5, 3)):
    """Random CNN-output features, tokens with padding and relative lengths."""
    generator = torch.Generator().manual_seed(seed)
    src = torch.randn(len(lengths), 12, 160, generator=generator, dtype=torch.float64)
    tgt = torch.zeros(len(tokens), max(tokens), dtype=torch.long)
    for i, n in enumerate(tokens):
        tgt[i, :n] = torch.randint(3, 20, (n,), generator=generator)
    return src, tgt, torch.tensor(lengths, dtype=torch.float64)


def asr_run(model, inputs):
    """Encoder and decoder outputs of the ModuleList's Transformer, real steps only."""
    src, tgt, lengths = inputs
    with torch.no_grad():
        encoded, decoded = model[1](src, tgt, lengths, pad_idx=0)
    real_frames = torch.arange(encoded.shape[1])[None] < torch.round(
        lengths * encoded.shape[1])[:, None]
    return encoded * real_frames[..., None], decoded * (tgt != 0)[..., None]


def random_mask(structure, levels, seed=0, keep=0.6):
    """Group -> random bool per unit (every conv layer keeps a channel)."""
    generator = torch.Generator().manual_seed(seed)
    mask = {}
    for group, (kind, count) in structure.groups(levels).items():
        bits = torch.rand(count, generator=generator) < keep
        if kind == "conv_channel":
            bits[0] = True
        mask[group] = bits
    return mask


def gated_copy(model, structure_of, mask):
    """A deep copy with ``mask`` attached as fixed unit gates (eval mode)."""
    from speechbrain_sparse.pruning.unit_gates import FixedGate, attach_unit_gates

    gated = copy.deepcopy(model)
    structure = structure_of(gated)
    attach_unit_gates(gated, structure, {g: FixedGate(b) for g, b in mask.items()})
    return gated.eval()


def zeroed_copy(model, structure_of, mask):
    """A deep copy whose weights are multiplied by the gates' values in place."""
    zeroed = copy.deepcopy(model)
    _multiply_weights(structure_of(zeroed), mask)
    return zeroed.eval()


def _multiply_weights(structure, mask):
    """Scales the consuming weights by the mask, as the unit gates do."""
    with torch.no_grad():
        for block in structure.attention:
            wq, bq, wk, bk, wv, bv, wo, bo = block.q_k_v_out()
            ones = torch.ones(block.num_heads * block.head_dim, dtype=torch.bool)
            head = mask.get(f"{block.name}:head",
                            torch.ones(block.num_heads, dtype=torch.bool))
            head = head.repeat_interleave(block.head_dim)
            qk = (mask.get(f"{block.name}:head_qk_dim", ones) & head).double()
            vo = (mask.get(f"{block.name}:head_vo_dim", ones) & head).double()
            mha = mask.get(f"{block.name}:mha", torch.ones(1, dtype=torch.bool))
            mha = mha.double()
            for tensor, z in ((wq, qk[:, None]), (bq, qk), (wv, vo[:, None]), (bv, vo),
                              (wo, mha), (bo, mha)):
                tensor.mul_(z.to(tensor.dtype))
        for block in structure.ffn:
            units = mask.get(f"{block.name}:ffn_unit",
                             torch.ones(block.d_ffn, dtype=torch.bool)).double()
            gate = mask.get(f"{block.name}:ffn", torch.ones(1, dtype=torch.bool))
            gate = gate.double()
            block.down.weight.mul_(units[None, :] * gate)
            block.down.bias.mul_(gate)
        if structure.conv is not None:
            for i, following in enumerate(structure.conv.convs[1:]):
                bits = mask.get(f"{structure.conv.name}.{i}:conv_channel")
                if bits is not None:
                    following.weight.mul_(bits.double()[None, :, None])


def relative_error(reference, other):
    """max |a - b| / max |a| over tensors (pairs of tuples allowed)."""
    if isinstance(reference, (tuple, list)):
        return max(relative_error(a, b) for a, b in zip(reference, other))
    return float((reference - other).abs().max() / reference.abs().max())


def bit_identical(reference, other):
    if isinstance(reference, (tuple, list)):
        return all(bit_identical(a, b) for a, b in zip(reference, other))
    return torch.equal(reference, other)


def count(model):
    """Parameters without the zero rows that pad heads (see count_parameters)."""
    from speechbrain_sparse.surgery.remove import count_parameters

    return count_parameters(model)


def whole_blocks_mask(structure, closed_mha=(), closed_ffn=(), no_heads=(),
                      no_units=()):
    """Closes whole blocks by index: gates, or all heads / FFN units."""
    mask = {}
    for i, block in enumerate(structure.attention):
        mask[f"{block.name}:mha"] = torch.tensor([i not in closed_mha])
        mask[f"{block.name}:head"] = torch.full((block.num_heads,), i not in no_heads)
    for i, block in enumerate(structure.ffn):
        mask[f"{block.name}:ffn"] = torch.tensor([i not in closed_ffn])
        mask[f"{block.name}:ffn_unit"] = torch.full((block.d_ffn,), i not in no_units)
    return mask
