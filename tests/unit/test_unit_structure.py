"""Tests of speechbrain_sparse.pruning.unit_structure: blocks, groups, hand counts."""

import pytest
import torch

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.pruning.unit_structure import model_structure
from tests.unit.pruning_models import tiny_hf_model, tiny_transformer_asr

# Tiny TransformerASR: d = 16, 2 heads of 8, d_ffn = 32; 2 encoder layers, 1 decoder.
ASR_ATTENTION = 4 * 16 * 16 + 4 * 16  # q, k, v, o weights and biases: 1088
ASR_FFN = 2 * 16 * 32 + 32 + 16  # 1072
# Tiny HF: d = 32, 2 heads of 16, d_ffn = 64, convs 16 x (1 x 10), 16 x (16 x 8).
HF_ATTENTION = 4 * 32 * 32 + 4 * 32  # 4224
HF_FFN = 2 * 32 * 64 + 64 + 32  # 4192


@pytest.fixture(scope="module")
def asr():
    return tiny_transformer_asr()["model"]


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("hf")


def test_transformer_asr_blocks_and_names(asr):
    structure = model_structure(asr)
    assert structure.family == "transformer_asr" and structure.conv is None
    assert [b.name for b in structure.attention] == [
        "1.encoder.layers.0.self_att", "1.encoder.layers.1.self_att",
        "1.decoder.layers.0.self_attn", "1.decoder.layers.0.multihead_attn"]
    assert {b.kind for b in structure.attention} == {"torch_packed"}
    assert [b.name for b in structure.ffn] == [
        "1.encoder.layers.0.pos_ffn", "1.encoder.layers.1.pos_ffn",
        "1.decoder.layers.0.pos_ffn"]
    block = structure.attention[3]
    assert (block.embed_dim, block.num_heads, block.head_dim) == (16, 2, 8)
    wq, bq, wk, bk, wv, bv, wo, bo = block.q_k_v_out()
    packed = asr[1].decoder.layers[0].multihead_attn.att.in_proj_weight
    assert torch.equal(wk, packed[16:32]) and wk.data_ptr() == packed[16:32].data_ptr()
    assert wq.shape == wv.shape == wo.shape == (16, 16) and bo.shape == (16,)
    # The Transformer alone gives the same blocks without the ModuleList prefix.
    alone = model_structure(asr[1])
    assert alone.attention[0].name == "encoder.layers.0.self_att"


def test_transformer_asr_groups_and_hand_counts(asr):
    structure = model_structure(asr)
    groups = structure.groups(["head_qk_dim", "mha", "ffn_unit"])
    assert groups["1.encoder.layers.0.self_att:head_qk_dim"] == ("head_qk_dim", 16)
    assert groups["1.decoder.layers.0.multihead_attn:mha"] == ("mha", 1)
    assert groups["1.decoder.layers.0.pos_ffn:ffn_unit"] == ("ffn_unit", 32)
    assert len(groups) == 4 + 4 + 3
    per_unit = structure.params_per_unit
    assert per_unit("1.encoder.layers.0.self_att:head_qk_dim") == 2 * (16 + 1)
    assert per_unit("1.encoder.layers.0.self_att:head_vo_dim") == 16 + 1 + 16
    assert per_unit("1.encoder.layers.0.self_att:head") == 4 * 16 * 8 + 3 * 8
    assert per_unit("1.decoder.layers.0.multihead_attn:mha") == ASR_ATTENTION
    assert per_unit("1.encoder.layers.1.pos_ffn:ffn_unit") == 16 + 1 + 16
    assert per_unit("1.encoder.layers.1.pos_ffn:ffn") == ASR_FFN
    assert structure.num_params() == 4 * ASR_ATTENTION + 3 * ASR_FFN == 7568
    # Without the block levels the output biases are not removable.
    assert structure.num_params(["head", "ffn_unit"]) == 7568 - 4 * 16 - 3 * 16
    # ... and the total equals the attention + FFN parameters of the model.
    counted = sum(p.numel() for n, p in asr.named_parameters()
                  if ".att." in n or ".pos_ffn." in n)
    assert counted == 7568


@pytest.mark.parametrize("kind, overrides", [
    ("wav2vec2", {}), ("wav2vec2", {"do_stable_layer_norm": True}),
    ("hubert", {}), ("wavlm", {})])
def test_hugging_face_blocks_and_hand_counts(hf_folder, kind, overrides):
    model, _ = tiny_hf_model(kind, hf_folder / str(len(overrides)), **overrides)
    structure = model_structure(model)
    prefix = {"wav2vec2": "wav2vec2", "hubert": "hubert", "wavlm": "wavlm"}[kind]
    assert structure.family == kind
    assert structure.attention[1].name == f"{prefix}.encoder.layers.1.attention"
    expected = "hf_raw" if kind == "wavlm" else "hf_modules"
    assert structure.attention[0].kind == expected
    assert structure.ffn[0].name == f"{prefix}.encoder.layers.0.feed_forward"
    assert structure.ffn[0].d_ffn == 64
    assert structure.num_params() == 2 * (HF_ATTENTION + HF_FFN) == 16832
    # conv 0 (16 x 1 x 10, GroupNorm(16, 16)) feeds conv 1 (16 x 16 x 8); no biases.
    conv_group = f"{prefix}.feature_extractor.conv_layers.0:conv_channel"
    assert structure.groups(["conv_channel"]) == {conv_group: ("conv_channel", 16)}
    assert structure.conv.norm_kind == "group"
    assert structure.params_per_unit(conv_group) == 10 + 2 + 16 * 8
    assert structure.num_params(["conv_channel"]) == 160 + 32 + 2048
    counted = sum(p.numel() for n, p in model.named_parameters()
                  if "feature_extractor" in n)
    assert counted == 160 + 32 + 2048
    if kind == "wavlm":  # the relative-position parameters belong to no unit
        extra = sum(p.numel() for n, p in model.named_parameters() if "rel_" in n)
        attention = sum(p.numel() for n, p in model.named_parameters()
                        if ".attention." in n)
        assert extra > 0 and attention - extra == 2 * HF_ATTENTION


def test_base_model_names_have_no_prefix(hf_folder):
    model, _ = tiny_hf_model("wav2vec2", hf_folder / "base", ctc=False)
    structure = model_structure(model)
    assert structure.attention[0].name == "encoder.layers.0.attention"
    assert structure.conv.name == "feature_extractor.conv_layers"
    wrapped = torch.nn.ModuleDict({"upstream": model})
    names = [block.name for block in model_structure(wrapped).ffn]
    assert names[1] == "upstream.encoder.layers.1.feed_forward"


def test_bad_levels_and_models(asr, hf_folder):
    structure = model_structure(asr)
    with pytest.raises(UserInputError, match="unknown unit level 'heads'"):
        structure.groups(["heads"])
    with pytest.raises(UserInputError, match="'conv_channel' is not available"):
        structure.groups(["conv_channel"])
    with pytest.raises(UserInputError, match="not in this transformer_asr model"):
        structure.params_per_unit("1.encoder.layers.9.self_att:head")
    layer_norm, _ = tiny_hf_model("wav2vec2", hf_folder / "ln",
                                  feat_extract_norm="layer")
    ln_structure = model_structure(layer_norm)
    assert ln_structure.conv.norm_kind == "layer"
    with pytest.raises(UserInputError, match="LayerNorm over channels"):
        ln_structure.groups(["conv_channel", "head"])
    assert "conv_channel" not in {k for k, _ in ln_structure.all_groups().values()}
    with pytest.raises(UserInputError, match="contains none of them"):
        model_structure(torch.nn.Linear(2, 2))


def test_relative_position_attention_is_a_named_error():
    from speechbrain.lobes.models.transformer.TransformerASR import TransformerASR

    model = TransformerASR(input_size=8, tgt_vocab=5, d_model=16, nhead=2,
                           num_encoder_layers=1, num_decoder_layers=1, d_ffn=16,
                           attention_type="RelPosMHAXL")
    with pytest.raises(UserInputError, match="attention type RelPosMHAXL"):
        model_structure(model)


def test_fingerprint_tells_sizes_apart():
    a = model_structure(tiny_transformer_asr()["model"])
    b = model_structure(tiny_transformer_asr(seed=1)["model"])
    assert a.fingerprint() == b.fingerprint()  # the same sizes, other weights
    a.ffn[0].d_ffn = 31
    assert a.fingerprint() != b.fingerprint()
