"""One-shot OBS pruning of whole models: sparsity, propagation, padding."""

import pytest
import torch

from speechbrain_sparse.pruning import oneshot
from speechbrain_sparse.pruning.calibration import capture_stage_entry, capturing_inputs
from speechbrain_sparse.pruning.mixed_sparsity import MixedSparsity
from speechbrain_sparse.pruning.model_families import HuggingFaceSSLFamily
from speechbrain_sparse.pruning.obs import pruned_count
from speechbrain_sparse.pruning.oneshot import OneShotPruner, prune_model
from speechbrain_sparse.training import MaskEnforcer
from tests.unit.pruning_models import (
    asr_batch,
    asr_family,
    audio_batch,
    tiny_hf_model,
    tiny_transformer_asr,
)

LENGTHS = (4000, 3000, 2500)


def _check_exact(model, mask, per_matrix=True):
    """Pruned entries are zero; each matrix has round(target * numel) zeros."""
    params = dict(model.named_parameters())
    for name, keep in mask.items():
        weight = params[name].detach()
        assert torch.equal(weight[~keep], torch.zeros_like(weight[~keep])), name
    for name, entry in mask.options["report"]["matrices"].items():
        if per_matrix:
            expected = pruned_count(entry["numel"], entry["target"])
            assert entry["pruned"] == expected, name
        assert entry["sparsity"] == entry["pruned"] / entry["numel"]


LARGE_STYLE = {"do_stable_layer_norm": True, "feat_extract_norm": "layer"}


@pytest.mark.parametrize("kind, config", [("wav2vec2", {}), ("hubert", {}),
                                          ("wavlm", {}), ("wav2vec2", LARGE_STYLE)])
def test_prune_model_exact_per_matrix_sparsity(kind, config, tmp_path):
    model, _ = tiny_hf_model(kind, tmp_path, **config)
    mask = prune_model(model, HuggingFaceSSLFamily(), [audio_batch(LENGTHS)],
                       sparsity=0.75, progress=False)
    assert len(mask) == 12 and mask.density() == 0.25
    for name, keep in mask.items():
        assert int((~keep).sum()) == pruned_count(keep.numel(), 0.75), name
    _check_exact(model, mask)
    MaskEnforcer(model, mask, mode="prune")  # attaches as a prune-mode mask


def test_packed_in_proj_slices_are_pruned_separately():
    hparams = tiny_transformer_asr()
    model = hparams["model"]
    batch = asr_batch([3200, 2400, 2000], [5, 3, 4])
    mask = prune_model(model, asr_family(hparams), [batch], sparsity=0.6,
                       progress=False)
    keep = mask["1.encoder.layers.0.self_att.att.in_proj_weight"]
    assert keep.shape == (48, 16)
    for rows in (slice(0, 16), slice(16, 32), slice(32, 48)):
        assert int((~keep[rows]).sum()) == pruned_count(256, 0.6)
    report = mask.options["report"]["matrices"]
    assert {n.rsplit("[", 1)[-1] for n in report if n.endswith("]")} == {"q]", "k]",
                                                                          "v]"}
    assert len(report) == 2 * 6 + 10  # two encoder layers, one decoder layer
    assert all(entry["frames"] > 0 for entry in report.values())
    _check_exact(model, mask)


def _recorded_hessians(monkeypatch):
    """Records the Hessians prune_model accumulates, per block and stream."""
    recorded = {}
    original = oneshot.accumulate_hessians

    def spy(block, calls, *args, **kwargs):
        hessians = original(block, calls, *args, **kwargs)
        recorded[block.name] = {n: a.hessian() for n, a in hessians.items()}
        return hessians

    monkeypatch.setattr(oneshot, "accumulate_hessians", spy)
    return recorded


def _layer_input_hessian(model, family, batch, block_index):
    """H of the attention input of one layer, from a plain forward of ``model``."""
    stage = family.stages(model)[0]
    call = capture_stage_entry(model, family, stage, batch)
    frames, total = call.padding["frames"], []

    def receive(name, tensor):
        if name == "attention_input":
            total.append(tensor[frames])

    with torch.no_grad(), capturing_inputs(stage.blocks[block_index], receive):
        family.forward(model, batch)
    inputs = torch.cat(total).double()
    return 2 * inputs.T @ inputs / inputs.shape[0]


def test_each_block_is_calibrated_on_the_pruned_previous_blocks(tmp_path,
                                                                 monkeypatch):
    model, _ = tiny_hf_model("wav2vec2", tmp_path)
    dense = {k: v.clone() for k, v in model.state_dict().items()}
    family, batch = HuggingFaceSSLFamily(), audio_batch(LENGTHS)
    recorded = _recorded_hessians(monkeypatch)
    prune_model(model, family, [batch], sparsity=0.8, progress=False)
    used = recorded["wav2vec2.encoder.layers.1"]["attention_input"].double()
    pruned_input = _layer_input_hessian(model, family, batch, 1)
    model.load_state_dict(dense)
    dense_input = _layer_input_hessian(model, family, batch, 1)
    assert torch.allclose(used, pruned_input, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(used, dense_input, rtol=1e-2, atol=1e-4)


def test_padded_frames_do_not_enter_the_hessians(tmp_path, monkeypatch):
    """One padded batch gives the Hessians of the same utterances unpadded."""
    model, _ = tiny_hf_model("wavlm", tmp_path, feat_extract_norm="layer")
    dense = {k: v.clone() for k, v in model.state_dict().items()}
    family = HuggingFaceSSLFamily()
    padded = audio_batch(LENGTHS)
    alone = [audio_batch([n]) for n in LENGTHS]
    for batch, length in zip(alone, LENGTHS):  # same waveforms as in `padded`
        batch.sig.data[0] = padded.sig.data[LENGTHS.index(length), :length]
    recorded = _recorded_hessians(monkeypatch)
    prune_model(model, family, [padded], sparsity=0.5, progress=False)
    with_padding = recorded.pop("wavlm.encoder.layers.0")
    model.load_state_dict(dense)
    prune_model(model, family, alone, sparsity=0.5, progress=False)
    without = recorded["wavlm.encoder.layers.0"]
    for stream, hessian in with_padding.items():
        assert torch.allclose(hessian, without[stream], rtol=1e-4, atol=1e-5), stream


def test_mixed_sparsity_hits_the_weighted_target_exactly():
    hparams = tiny_transformer_asr()
    model = hparams["model"]
    batch = asr_batch([3200, 2400, 2000], [5, 3, 4])
    pruner = OneShotPruner(saliency="obs",
                           mixed_sparsity=MixedSparsity(alpha=0.1, num_probes=2))
    mask = pruner.prune(model, asr_family(hparams), [batch], 0.7, progress=False)
    report = mask.options["report"]["matrices"]
    total = sum(keep.numel() for keep in mask.values())
    assert mask.numel() - mask.num_selected() == pruned_count(total, 0.7)
    targets = {entry["target"] for entry in report.values()}
    assert min(targets) < 0.65 and max(targets) > 0.75  # spread over 0.7 ± 0.1
    slices = [report[f"1.encoder.layers.0.self_att.att.in_proj_weight[{p}]"]
              for p in "qkv"]
    assert len({entry["sensitivity"] for entry in slices}) == 3  # one per slice
    assert mask.options["mixed_sparsity"]["alpha"] == 0.1
    _check_exact(model, mask, per_matrix=False)


def test_mixed_sparsity_on_ctc_models_uses_distillation(tmp_path):
    model, _ = tiny_hf_model("wavlm", tmp_path)
    attention = model.config._attn_implementation
    mask = prune_model(model, HuggingFaceSSLFamily(), [audio_batch(LENGTHS)],
                       sparsity=0.5, mixed_sparsity=MixedSparsity(num_probes=1),
                       progress=False)
    assert mask.numel() - mask.num_selected() == pruned_count(mask.numel(), 0.5)
    assert model.config._attn_implementation == attention  # restored


def test_per_matrix_sparsities_and_errors(tmp_path):
    model, _ = tiny_hf_model("hubert", tmp_path)
    family, batches = HuggingFaceSSLFamily(), [audio_batch(LENGTHS)]
    names = [m.name for s in family.stages(model) for b in s.blocks
             for m in b.matrices]
    sparsities = {name: 0.1 * (i % 5) for i, name in enumerate(names)}
    mask = prune_model(model, family, batches, sparsities=sparsities, progress=False)
    _check_exact(model, mask)
    report = mask.options["report"]["matrices"]
    assert all(report[n]["target"] == s for n, s in sparsities.items())
    assert mask.target_density is None
    with pytest.raises(ValueError, match="missing"):
        prune_model(model, family, batches, sparsities={names[0]: 0.5})
    with pytest.raises(ValueError, match="needs sparsity"):
        prune_model(model, family, batches)
    with pytest.raises(ValueError, match="calibration batch"):
        prune_model(model, family, [], sparsity=0.5)


def test_pruner_and_families_build_from_yaml():
    from hyperpyyaml import load_hyperpyyaml

    hparams = load_hyperpyyaml("""
tiny: !new:torch.nn.Linear [2, 2]
family: !new:speechbrain_sparse.pruning.model_families.HuggingFaceSSLFamily
    normalize_audio: False
asr_family: !new:speechbrain_sparse.pruning.model_families.TransformerASRFamily
    transformer: !ref <tiny>
    frontend: !ref <tiny>
    compute_features: !new:speechbrain.lobes.features.Fbank
pruner: !new:speechbrain_sparse.pruning.oneshot.OneShotPruner
    saliency: obs
    hessian_dtype: float64
    mixed_sparsity: !new:speechbrain_sparse.pruning.mixed_sparsity.MixedSparsity
        alpha: 0.05
        distribution: gaussian
""")
    assert hparams["pruner"].hessian_dtype == torch.float64
    assert hparams["pruner"].mixed_sparsity.alpha == 0.05
    assert hparams["family"].normalize_audio is False
    assert hparams["asr_family"].pad_index == 0
