"""Surgery: the surgered model computes what the gated model computes.

For SpeechBrain's TransformerASR (encoder self, decoder self and cross
attention) and transformers wav2vec2 (pre-/post-LN), HuBERT and WavLM: random
binary unit masks at every level, gated (fixed gates, eval) vs surgered, in
float64 with padded batches; whole-block removal bit for bit; parameter counts.
"""

import copy

import pytest
import torch

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.pruning.unit_masks import UnitMask
from speechbrain_sparse.pruning.unit_structure import model_structure
from speechbrain_sparse.surgery.modules import ConstantOutput, PrunedSelfAttention
from speechbrain_sparse.surgery.remove import remove_units
from tests.unit.surgery_models import (
    LEVELS,
    asr_inputs,
    asr_model,
    asr_run,
    bit_identical,
    count,
    gated_copy,
    hf_inputs,
    hf_model,
    hf_run,
    random_mask,
    relative_error,
    whole_blocks_mask,
    zeroed_copy,
)

HF_CASES = {
    "wav2vec2_post_ln": ("wav2vec2", {}),
    "wav2vec2_pre_ln": ("wav2vec2", {"do_stable_layer_norm": True}),
    "hubert": ("hubert", {}),
    "wavlm": ("wavlm", {}),
}
LEVEL_SETS = [("head", "ffn_unit"), ("head_qk_dim", "head_vo_dim", "ffn_unit"),
              LEVELS, ("head", "head_qk_dim", "head_vo_dim", "conv_channel")]


def surgered_and_gated(model, mask, zeroed=False):
    """(reference, surgered): the reference is gated (or zeroed: bit checks)."""
    reference = (zeroed_copy if zeroed else gated_copy)(model, model_structure, mask)
    surgered = copy.deepcopy(model)
    remove_units(surgered, mask)
    return reference, surgered


def check_whole_blocks(model, mask, run, inputs):
    """Bit for bit against the zeroed weights, to 1e-12 against the gates."""
    zeroed, surgered = surgered_and_gated(model, mask, zeroed=True)
    assert bit_identical(run(zeroed, inputs), run(surgered, inputs))
    gated = gated_copy(model, model_structure, mask)
    assert relative_error(run(gated, inputs), run(surgered, inputs)) <= 1e-12
    return surgered


def expected_count(model, mask):
    """Parameters left: the original minus what the kept units do not own."""
    structure = model_structure(model)
    total = count(model)
    for block in structure.attention:
        g = {k: mask.get(f"{block.name}:{k}") for k in ("mha", "head", "head_qk_dim",
                                                          "head_vo_dim")}
        heads, dim = block.num_heads, block.head_dim
        head = g["head"]
        head = torch.ones(heads, dtype=torch.bool) if head is None else head
        mha = g["mha"] is None or bool(g["mha"][0])
        qk = (g["head_qk_dim"] if g["head_qk_dim"] is not None
              else torch.ones(heads * dim, dtype=torch.bool)).view(heads, dim)
        vo = (g["head_vo_dim"] if g["head_vo_dim"] is not None
              else torch.ones(heads * dim, dtype=torch.bool)).view(heads, dim)
        qk, vo = qk & head[:, None] & mha, vo & head[:, None] & mha
        alive = vo.any(1)  # a head without vo dims goes with its qk dims
        qk = qk & alive[:, None]
        per_qk = structure.params_per_unit(f"{block.name}:head_qk_dim")
        per_vo = structure.params_per_unit(f"{block.name}:head_vo_dim")
        total -= int((~qk).sum()) * per_qk + int((~vo).sum()) * per_vo
        total -= 0 if mha else block.slot_numel("bo")
    for block in structure.ffn:
        gate = mask.get(f"{block.name}:ffn")
        units = mask.get(f"{block.name}:ffn_unit")
        units = torch.ones(block.d_ffn, dtype=torch.bool) if units is None else units
        if gate is not None and not gate[0]:
            units = units & False
            total -= block.down.bias.numel()
        per_unit = structure.params_per_unit(f"{block.name}:ffn_unit")
        total -= int((~units).sum()) * per_unit
    if structure.conv is not None:
        for group in structure.groups(["conv_channel"]):
            if group in mask:
                total -= int((~mask[group]).sum()) * structure.params_per_unit(group)
    return total


@pytest.mark.parametrize("case", sorted(HF_CASES))
@pytest.mark.parametrize("levels", range(len(LEVEL_SETS)))
def test_hf_random_masks_match_gated(case, levels):
    kind, overrides = HF_CASES[case]
    model = hf_model(kind, **overrides)
    structure = model_structure(model)
    mask = random_mask(structure, LEVEL_SETS[levels], seed=levels)
    gated, surgered = surgered_and_gated(model, mask)
    inputs = hf_inputs()
    assert relative_error(hf_run(gated, inputs), hf_run(surgered, inputs)) <= 1e-6
    assert count(surgered) == expected_count(model, mask)
    unit_mask = UnitMask(mask, structure.fingerprint())
    assert count(surgered) == count(model) - structure.num_params(unit_mask.levels) \
        + unit_mask.num_kept_params(structure)
    entries = unit_mask.to_parameter_mask(model, structure)  # the same entries
    assert entries.numel() - entries.num_selected() == count(model) - count(surgered)


@pytest.mark.parametrize("levels", range(len(LEVEL_SETS) - 1))
def test_transformer_asr_random_masks_match_gated(levels):
    hparams = asr_model()
    model = hparams["model"]
    mask = random_mask(model_structure(model), LEVEL_SETS[levels], seed=levels)
    gated, surgered = surgered_and_gated(model, mask)
    inputs = asr_inputs()
    assert relative_error(asr_run(gated, inputs), asr_run(surgered, inputs)) <= 1e-6
    assert count(surgered) == expected_count(model, mask)
    structure = model_structure(model)
    unit_mask = UnitMask(mask, structure.fingerprint())
    assert count(surgered) == count(model) - structure.num_params(unit_mask.levels) \
        + unit_mask.num_kept_params(structure)
    entries = unit_mask.to_parameter_mask(model, structure)  # the same entries
    assert entries.numel() - entries.num_selected() == count(model) - count(surgered)
    cross = surgered[1].decoder.layers[0].multihead_attn.att
    assert isinstance(cross, (PrunedSelfAttention, ConstantOutput))


def test_transformer_asr_padding_respected():
    """Changing padded frames / tokens changes nothing at the real steps."""
    model = asr_model()["model"]
    mask = random_mask(model_structure(model), LEVEL_SETS[1], seed=3)
    remove_units(model, mask)
    src, tgt, lengths = asr_inputs()
    reference = asr_run(model, (src, tgt, lengths))
    src = src.clone()
    src[1, 8:] = 1e3  # frames past 0.6 * 12 are padding
    tgt = tgt.clone()
    assert bit_identical(reference[1][0], asr_run(model, (src, tgt, lengths))[1][0])


def test_hf_padding_respected():
    """(A group-norm conv stack normalises over padding too: a layer-norm one.)"""
    model = hf_model("wavlm", feat_extract_norm="layer", do_stable_layer_norm=True)
    mask = random_mask(model_structure(model), LEVEL_SETS[1], seed=1)
    remove_units(model, mask)
    wavs, attention = hf_inputs()
    short = hf_run(model, (wavs[1:, :2400], attention[1:, :2400]))
    padded = hf_run(model, (wavs, attention))[1:, :short.shape[1]]
    assert relative_error(short, padded) <= 1e-6


@pytest.mark.parametrize("case", ["wav2vec2_post_ln", "wav2vec2_pre_ln", "wavlm"])
def test_whole_blocks_bit_identical(case):
    kind, overrides = HF_CASES[case]
    model = hf_model(kind, **overrides)
    structure = model_structure(model)
    mask = whole_blocks_mask(structure, closed_mha=(0,), closed_ffn=(1,),
                             no_heads=(1,), no_units=(0,))
    surgered = check_whole_blocks(model, mask, hf_run, hf_inputs())
    layers = surgered.encoder.layers
    assert isinstance(layers[0].feed_forward, ConstantOutput)
    assert layers[0].feed_forward.value is not None  # open gate, all units gone
    assert layers[1].feed_forward.value is None  # closed gate: zero
    assert count(surgered) == expected_count(model, mask)


def test_transformer_asr_whole_blocks_bit_identical():
    model = asr_model()["model"]
    structure = model_structure(model)
    mask = whole_blocks_mask(structure, closed_mha=(0, 3), no_heads=(2, 4),
                             closed_ffn=(1,), no_units=(2,))
    surgered = check_whole_blocks(model, mask, asr_run, asr_inputs())
    assert count(surgered) == expected_count(model, mask)


def test_all_heads_gone_keeps_out_bias():
    model = hf_model("hubert")
    structure = model_structure(model)
    mask = whole_blocks_mask(structure, no_heads=(1,))
    bias = model.encoder.layers[1].attention.out_proj.bias.detach().clone()
    remove_units(model, mask)
    constant = model.encoder.layers[1].attention
    assert isinstance(constant, ConstantOutput)
    assert torch.equal(constant.value.detach(), bias)
    output, weights = constant(torch.zeros(2, 3, 32, dtype=torch.float64))
    assert torch.equal(output[1, 2], bias) and weights is None


def test_wavlm_layer0_mha_removed_still_feeds_position_bias():
    model = hf_model("wavlm")
    structure = model_structure(model)
    mask = whole_blocks_mask(structure, closed_mha=(0,))
    inputs = hf_inputs()
    surgered = check_whole_blocks(model, mask, hf_run, inputs)
    gated = gated_copy(model, model_structure, mask)
    first = surgered.encoder.layers[0].attention
    assert isinstance(first, PrunedSelfAttention) and first.num_kept == 0
    assert first.rel_attn_embed is not None
    # the bias reaches layer 1: changing layer 0's embedding changes the output
    with torch.no_grad():
        first.rel_attn_embed.weight.mul_(-3.0)  # (a constant shift would cancel)
    assert not torch.allclose(hf_run(gated, inputs), hf_run(surgered, inputs))


def test_uniform_heads_keep_the_hf_module():
    model = hf_model("wav2vec2")
    structure = model_structure(model)
    mask = {f"{structure.attention[0].name}:head": torch.tensor([False, True])}
    remove_units(model, mask)
    attention = model.encoder.layers[0].attention
    assert type(attention).__name__ == "Wav2Vec2Attention"
    assert attention.q_proj.weight.shape == (16, 32)
    assert attention.out_proj.weight.shape == (32, 16)


def test_conv_channels_removed():
    model = hf_model("wav2vec2")
    structure = model_structure(model)
    group = f"{structure.conv.name}.0:conv_channel"
    mask = {group: torch.arange(16) % 3 != 0}
    gated, surgered = surgered_and_gated(model, mask)
    inputs = hf_inputs()
    assert relative_error(hf_run(gated, inputs), hf_run(surgered, inputs)) <= 1e-6
    conv = surgered.feature_extractor.conv_layers
    assert conv[0].conv.out_channels == 10 and conv[1].conv.in_channels == 10
    assert conv[0].layer_norm.weight.shape == (10,)


def test_refusals_are_named_and_change_nothing():
    model = hf_model("wav2vec2")
    structure = model_structure(model)
    group = f"{structure.conv.name}.0:conv_channel"
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ffn = f"{structure.ffn[0].name}:ffn_unit"
    cases = [
        ({group: torch.zeros(16, dtype=torch.bool),
          ffn: torch.zeros(64, dtype=torch.bool)}, "all 16 channels"),
        ({"encoder.layers.9.attention:head": torch.ones(2, dtype=torch.bool)},
         "not in this"),
        ({ffn: torch.ones(63, dtype=torch.bool)}, "expected a bool tensor of shape"),
    ]
    for mask, message in cases:
        with pytest.raises(UserInputError, match=message):
            remove_units(model, mask)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    layer_norm = hf_model("wav2vec2", feat_extract_norm="layer")
    with pytest.raises(UserInputError, match="LayerNorm"):
        remove_units(layer_norm, {group: torch.ones(16, dtype=torch.bool)})


def test_refuses_attached_gates_and_second_surgery():
    model = hf_model("wav2vec2")
    mask = random_mask(model_structure(model), ("head",))
    torch.nn.utils.parametrize.register_parametrization(
        model.encoder.layers[0].feed_forward.output_dense, "weight",
        torch.nn.Identity())
    with pytest.raises(UserInputError, match="gates attached"):
        remove_units(model, mask)
    model = hf_model("wav2vec2")
    remove_units(model, mask)
    with pytest.raises(UserInputError, match="already surgered"):
        remove_units(model, mask)


@pytest.mark.parametrize("kind", ["wav2vec2", "wavlm"])
def test_eager_attention_matches_sdpa(kind):
    """The countable path (eager HF attention, explicit matmuls) = the SDPA one."""
    model = hf_model(kind, feat_extract_norm="layer", do_stable_layer_norm=True)
    remove_units(model, random_mask(model_structure(model), LEVEL_SETS[1], seed=7))
    inputs = hf_inputs()
    fast = hf_run(model, inputs)
    model.set_attn_implementation("eager")
    for module in model.modules():
        if isinstance(module, PrunedSelfAttention):
            module.eager = True
    assert relative_error(fast, hf_run(model, inputs)) <= 1e-12


def test_integer_relu_ffn_bit_identical():
    """Integer weights and inputs: every sum is exact, so unit removal is too."""
    model = hf_model("wav2vec2", hidden_act="relu")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for block in model_structure(model).ffn:
            for linear in (block.up, block.down):
                for parameter in linear.parameters():
                    parameter.copy_(torch.randint(-3, 4, parameter.shape,
                                                  generator=generator))
    mask = random_mask(model_structure(model), ("ffn_unit",), seed=2)
    zeroed, surgered = surgered_and_gated(model, mask, zeroed=True)
    x = torch.randint(-5, 6, (2, 7, 32), generator=generator).double()
    for i in range(2):
        with torch.no_grad():
            reference = zeroed.encoder.layers[i].feed_forward(x)
            assert torch.equal(reference, surgered.encoder.layers[i].feed_forward(x))
        assert surgered.encoder.layers[i].feed_forward.output_dense.in_features < 64
