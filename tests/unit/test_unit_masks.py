"""Tests of speechbrain_sparse.pruning.unit_masks: closure, entries, counts, files."""

import pytest
import torch

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.masks import Coverage, ParameterMask
from speechbrain_sparse.pruning.unit_masks import UnitMask
from speechbrain_sparse.pruning.unit_structure import UNIT_KINDS, model_structure
from tests.unit.pruning_models import tiny_hf_model, tiny_transformer_asr

ENC0 = "1.encoder.layers.0.self_att"
ATT0 = "1.encoder.layers.0.self_att.att"
FFN0 = "1.encoder.layers.0.pos_ffn"
ALL_BUT_CONV = [k for k in UNIT_KINDS if k != "conv_channel"]


@pytest.fixture(scope="module")
def asr():
    model = tiny_transformer_asr()["model"]
    return model, model_structure(model)


@pytest.fixture(scope="module")
def w2v2(tmp_path_factory):
    model, _ = tiny_hf_model("wav2vec2", tmp_path_factory.mktemp("hf"))
    return model, model_structure(model)


def removed(mask, model, structure):
    """``{name: indices of removed entries}`` of the expanded parameter mask."""
    pmask = mask.to_parameter_mask(model, structure)
    return {n: (~t).nonzero().tolist() for n, t in pmask.items() if not t.all()}


def one_off(structure, group, index, levels=ALL_BUT_CONV):
    mask = UnitMask.full(structure, levels)
    tensor = mask[group].clone()
    tensor[index] = False
    return mask.replace({group: tensor})


def test_qk_dim_owns_rows_of_wq_and_wk(asr):
    model, structure = asr
    mask = one_off(structure, f"{ENC0}:head_qk_dim", 8 + 3)  # head 1, dim 3
    assert removed(mask, model, structure) == {
        f"{ATT0}.in_proj_weight": [[11, c] for c in range(16)] + [[27, c] for c in
                                                                    range(16)],
        f"{ATT0}.in_proj_bias": [[11], [27]]}
    assert mask.num_kept_params(structure) == structure.num_params() - 2 * (16 + 1)


def test_vo_dim_owns_a_row_of_wv_and_a_column_of_wo(asr):
    model, structure = asr
    mask = one_off(structure, f"{ENC0}:head_vo_dim", 5)
    assert removed(mask, model, structure) == {
        f"{ATT0}.in_proj_weight": [[37, c] for c in range(16)],
        f"{ATT0}.in_proj_bias": [[37]],
        f"{ATT0}.out_proj.weight": [[r, 5] for r in range(16)]}


def test_ffn_unit_owns_a_row_a_bias_and_a_column(asr):
    model, structure = asr
    mask = one_off(structure, f"{FFN0}:ffn_unit", 7)
    assert removed(mask, model, structure) == {
        f"{FFN0}.ffn.0.weight": [[7, c] for c in range(16)],
        f"{FFN0}.ffn.0.bias": [[7]],
        f"{FFN0}.ffn.3.weight": [[r, 7] for r in range(16)]}


@pytest.mark.parametrize("group, count", [
    (f"{ENC0}:head", 4 * 16 * 8 + 3 * 8), (f"{ENC0}:mha", 4 * 16 * 16 + 4 * 16),
    (f"{FFN0}:ffn", 2 * 16 * 32 + 32 + 16),
    ("1.decoder.layers.0.multihead_attn:mha", 4 * 16 * 16 + 4 * 16)])
def test_whole_units_remove_their_hand_counted_entries(asr, group, count):
    model, structure = asr
    mask = one_off(structure, group, 0)
    pmask = mask.to_parameter_mask(model, structure)
    assert pmask.numel() - pmask.num_selected() == count
    assert mask.num_kept_params(structure) == structure.num_params() - count
    assert structure.params_per_unit(group) == count


def test_closure_of_blocks_heads_and_vo_dims(asr):
    model, structure = asr
    mask = UnitMask.full(structure, ALL_BUT_CONV)
    vo = mask[f"{ENC0}:head_vo_dim"].clone()
    vo[8:] = False  # every vo dim of head 1: the head is gone, its qk dims too
    closed = mask.replace({f"{ENC0}:head_vo_dim": vo,
                           f"{FFN0}:ffn": torch.tensor([False])}).hierarchical()
    assert closed[f"{ENC0}:head"].tolist() == [True, False]
    assert closed[f"{ENC0}:head_qk_dim"].tolist() == [True] * 8 + [False] * 8
    assert not closed[f"{FFN0}:ffn_unit"].any()
    mha = mask.replace({f"{ENC0}:mha": torch.tensor([False])}).hierarchical()
    for kind in ("head", "head_qk_dim", "head_vo_dim"):
        assert not mha[f"{ENC0}:{kind}"].any()
    # Without a head group the head count comes from the structure.
    dims = UnitMask({f"{ENC0}:head_qk_dim": torch.ones(16, dtype=torch.bool),
                     f"{ENC0}:head_vo_dim": vo})
    assert dims.hierarchical()[f"{ENC0}:head_qk_dim"].all()
    assert dims.hierarchical(structure)[f"{ENC0}:head_qk_dim"].sum() == 8


def test_all_heads_or_units_gone_keeps_the_output_bias(asr):
    model, structure = asr
    mask = UnitMask.full(structure, ALL_BUT_CONV).replace({
        f"{ENC0}:head": torch.tensor([False, False]),
        f"{FFN0}:ffn_unit": torch.zeros(32, dtype=torch.bool)})
    pmask = mask.to_parameter_mask(model, structure)
    assert pmask[f"{ATT0}.out_proj.bias"].all()
    assert not pmask[f"{ATT0}.out_proj.weight"].any()
    assert pmask[f"{FFN0}.ffn.3.bias"].all() and not pmask[f"{FFN0}.ffn.3.weight"].any()
    assert mask.num_kept_params(structure) == structure.num_params() - (1088 - 16) - (
        1072 - 16)


def test_conv_channel_owns_filter_norm_and_next_column(w2v2):
    model, structure = w2v2
    group = "wav2vec2.feature_extractor.conv_layers.0:conv_channel"
    mask = one_off(structure, group, 6, levels=["conv_channel"])
    layers = "wav2vec2.feature_extractor.conv_layers"
    assert removed(mask, model, structure) == {
        f"{layers}.0.conv.weight": [[6, 0, k] for k in range(10)],
        f"{layers}.0.layer_norm.weight": [[6]], f"{layers}.0.layer_norm.bias": [[6]],
        f"{layers}.1.conv.weight": [[r, 6, k] for r in range(16) for k in range(8)]}
    assert mask.num_kept_params(structure) == 2240 - 140


def reference_kept(structure, mask):
    """The kept count by the A.5 formula, with binary gates (independent code)."""
    total = 0
    for block in structure.attention:
        d, hd = block.embed_dim, block.head_dim
        mha, head = mask[f"{block.name}:mha"], mask[f"{block.name}:head"]
        qk = mask[f"{block.name}:head_qk_dim"] & head.repeat_interleave(hd)
        vo = mask[f"{block.name}:head_vo_dim"] & head.repeat_interleave(hd)
        alive = vo.view(-1, hd).any(1).repeat_interleave(hd)
        total += int(mha) * (int((qk & alive).sum()) * 2 * (d + 1)
                             + int(vo.sum()) * (2 * d + 1) + d)
    for block in structure.ffn:
        units = mask[f"{block.name}:ffn_unit"]
        d = block.up.in_features
        total += int(mask[f"{block.name}:ffn"]) * (int(units.sum()) * (2 * d + 1) + d)
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_masks_count_as_the_formula(asr, seed):
    model, structure = asr
    generator = torch.Generator().manual_seed(seed)
    mask = UnitMask({g: torch.rand(n, generator=generator) < 0.6 for g, (_, n)
                     in structure.groups(ALL_BUT_CONV).items()})
    kept = mask.num_kept_params(structure)
    assert kept == reference_kept(structure, mask)
    pmask = mask.to_parameter_mask(model, structure)
    assert pmask.numel() - pmask.num_selected() == structure.num_params() - kept
    pmask.check_matches(Coverage().shapes(model))  # names and shapes of the model


def test_save_load_round_trip_and_parameter_mask_file(asr, tmp_path):
    model, structure = asr
    mask = one_off(structure, f"{ENC0}:head_qk_dim", 2)
    mask.save(tmp_path / "units.pt")
    loaded = UnitMask.load(tmp_path / "units.pt", structure)
    assert loaded == mask and loaded.fingerprint == structure.fingerprint()
    pmask = loaded.to_parameter_mask(model, structure)
    pmask.save(tmp_path / "mask.pt")
    assert ParameterMask.load(tmp_path / "mask.pt", model) == pmask


def test_mask_for_another_model_is_a_named_error(asr, w2v2, tmp_path):
    model, structure = asr
    hf_model, hf_structure = w2v2
    mask = UnitMask.full(hf_structure, ["head", "ffn_unit"])
    mask.save(tmp_path / "hf.pt")
    with pytest.raises(UserInputError, match="hf.pt: group 'wav2vec2.encoder.layers.0"):
        UnitMask.load(tmp_path / "hf.pt", structure)
    with pytest.raises(UserInputError, match="not in this transformer_asr model"):
        mask.to_parameter_mask(model, structure)
    wider = UnitMask({f"{FFN0}:ffn_unit": torch.ones(64, dtype=torch.bool)})
    with pytest.raises(UserInputError, match=r"has shape \(64,\) in the mask but "
                                             r"\(32,\) in the transformer_asr model"):
        wider.num_kept_params(structure)


def test_truncated_or_corrupted_file_is_a_named_error(asr, tmp_path):
    _, structure = asr
    path = tmp_path / "units.pt"
    UnitMask.full(structure, ["head"]).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserInputError, match="cannot read unit mask file"):
        UnitMask.load(path)
    other = tmp_path / "other.pt"
    ParameterMask.full(torch.nn.Linear(2, 2)).save(other)
    with pytest.raises(UserInputError, match="not a speechbrain_sparse.UnitMask"):
        UnitMask.load(other)


def test_bad_groups_are_named():
    with pytest.raises(UserInputError, match="unknown unit kind 'heads'"):
        UnitMask({"enc:heads": torch.ones(2, dtype=torch.bool)})
    with pytest.raises(ValueError, match="1-D bool tensor"):
        UnitMask({"enc:head": torch.ones(2)})
