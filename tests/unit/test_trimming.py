"""Trimming (paper 003): frozen encoder, the sparsity loss, removal, baselines."""

import math

import pytest
import speechbrain as sb
import torch

from speechbrain_sparse.asr.probing import (
    HuggingFaceUpstream,
    ProbingModel,
    TransformerASRUpstream,
    trainable_parameters,
)
from speechbrain_sparse.asr.probing_heads import BiLSTMCTCHead, MLPClassifierHead
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.pruning.trimming import SSF, Scratch, Trimming, sparsity_loss
from speechbrain_sparse.surgery import count_parameters
from tests.unit.pruning_models import tiny_hf_model, tiny_transformer_asr

HEADS = "encoder.layers.{}.attention:head"
FFN = "encoder.layers.{}.feed_forward:ffn_unit"
CONV0 = "feature_extractor.conv_layers.0:conv_channel"


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def group_norm_upstream(tmp_path, **overrides):
    model, _ = tiny_hf_model("wav2vec2", tmp_path, feat_extract_norm="group",
                             hidden_dropout=0.3, **overrides)
    return HuggingFaceUpstream(model)


def audio(lengths, seed=0):
    generator = torch.Generator().manual_seed(seed)
    wavs = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        wavs[i, :n] = torch.randn(n, generator=generator)
    return wavs, torch.tensor(lengths, dtype=torch.float) / max(lengths)


def ctc_probe(upstream):
    head = BiLSTMCTCHead(upstream.hidden_size, vocab_size=6, hidden_size=8)
    return ProbingModel(upstream, head, layers="last")


def train(model, objective, steps=4, lr=0.5):
    """AdamW with weight decay over the trainable parameters, CTC on fixed data."""
    wavs, wav_lens = audio([4000, 3200])
    tokens, token_lens = torch.tensor([[1, 2, 3], [4, 5, 0]]), torch.tensor([1, 2 / 3])
    optimizer = torch.optim.AdamW(trainable_parameters(model), lr=lr,
                                  weight_decay=0.1)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        log_probs, frame_lens = model(wavs, wav_lens)
        loss = sb.nnet.losses.ctc_loss(log_probs, tokens, frame_lens, token_lens,
                                       blank_index=0)
        objective(loss).backward()
        optimizer.step()
    return optimizer


def test_sparsity_loss_is_the_papers_formula_on_hand_values():
    logits = [torch.tensor([1.0, -1.0]), torch.tensor([0.0, 2.0, 3.0])]
    t = 0.5
    first = math.sqrt(sigmoid(0.5) ** 2 + sigmoid(-1.5) ** 2)
    second = math.sqrt(sigmoid(-0.5) ** 2 + sigmoid(1.5) ** 2 + sigmoid(2.5) ** 2)
    assert sparsity_loss(logits, t).item() == pytest.approx((first + second) / 5,
                                                             rel=1e-6)
    per_unit = sum(sigmoid(m - t) for m in (1.0, -1.0, 0.0, 2.0, 3.0)) / 5
    assert sparsity_loss(logits, t, "unit").item() == pytest.approx(per_unit, rel=1e-6)
    # not squared: doubling every sigmoid is impossible, so compare with the square
    squared = (first ** 2 + second ** 2) / 5
    assert sparsity_loss(logits, t).item() != pytest.approx(squared, rel=1e-3)


def test_lambda_is_matched_on_the_first_batch_then_kept(tmp_path):
    trimming = Trimming(threshold=0.4)
    upstream = trimming.prepare(group_norm_upstream(tmp_path))
    penalty = trimming.sparsity_loss().item()
    total = trimming.objective(torch.tensor(3.0))
    assert trimming.sparsity_weight.item() == pytest.approx(3.0 / penalty, rel=1e-6)
    assert total.item() == pytest.approx(6.0, rel=1e-6)  # L_C + (L_C / L_S) L_S
    trimming.objective(torch.tensor(10.0))
    assert trimming.sparsity_weight.item() == pytest.approx(3.0 / penalty, rel=1e-6)
    assert "trainable.0.sparsity_weight" in upstream.state_dict()
    fixed = Trimming(sparsity_weight=2.0)
    fixed.prepare(group_norm_upstream(tmp_path / "b"))
    assert fixed.objective(torch.tensor(1.0)).item() == pytest.approx(
        1.0 + 2.0 * fixed.sparsity_loss().item())


def test_encoder_is_bit_identical_after_trimming_with_adamw(tmp_path):
    upstream = group_norm_upstream(tmp_path)
    before = {k: v.clone() for k, v in upstream.model.state_dict().items()}
    trimming = Trimming(threshold=0.5)
    model = ctc_probe(trimming.prepare(upstream))
    optimizer = train(model, trimming.objective)
    optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert not optimized & {id(p) for p in upstream.model.parameters()}
    assert {id(g.logits) for g in trimming.gates} <= optimized
    assert any(bool((g.logits != 1.0).any()) for g in trimming.gates)
    assert not upstream.model.training
    trimming.handle.remove()
    after = upstream.model.state_dict()
    assert before.keys() == after.keys()
    for name, tensor in before.items():
        assert torch.equal(tensor, after[name]), name


def close_units(trimming):
    """Closes a known set of units: conv 0 channels 0-5, all heads of layer 0,
    head 1 of layer 1, FFN units 0-39 of layer 1."""
    closed = {CONV0: slice(0, 6), HEADS.format(0): slice(None),
              HEADS.format(1): slice(1, 2), FFN.format(1): slice(0, 40)}
    with torch.no_grad():
        for name, gate in zip(trimming.group_names, trimming.gates):
            if name in closed:
                gate.logits[closed[name]] = -1.0


def test_trimmed_fraction_equals_the_parameter_difference_after_surgery(tmp_path):
    upstream = group_norm_upstream(tmp_path)
    trimming = Trimming(threshold=0.5)
    model = ctc_probe(trimming.prepare(upstream)).eval()
    assert set(trimming.group_names) == {CONV0, *(HEADS.format(i) for i in (0, 1)),
                                         *(FFN.format(i) for i in (0, 1))}
    close_units(trimming)
    wavs, wav_lens = audio([4000, 3200])
    gated, _ = model(wavs, wav_lens)
    total = count_parameters(upstream.model)
    report = trimming.finish(upstream)
    removed = total - count_parameters(upstream.model)
    # by hand: 6 conv-0 channels (filter 1 x 10, no bias, GroupNorm weight and bias,
    # conv-1 column 16 x 8) = 6 x 140; 3 heads of 16 dims (4 d d_h + 3 d_h =
    # 4*32*16 + 48) = 3 x 2096; 40 FFN units (32 + 1 + 32) = 40 x 65
    assert removed == report["trimmed_params"] == report["mask_trimmed_params"] \
        == 6 * 140 + 3 * 2096 + 40 * 65
    assert report["encoder_params"] == total
    assert report["trimmed_fraction"] == removed / total
    assert report["kept_units"] == report["units"] - 6 - 2 - 1 - 40
    surgered, _ = model(wavs, wav_lens)
    assert torch.allclose(gated, surgered, atol=1e-5)


def test_a_conv_layer_with_every_channel_closed_keeps_its_most_open_one(tmp_path):
    upstream = group_norm_upstream(tmp_path)
    trimming = Trimming()
    trimming.prepare(upstream)
    conv = trimming.gates[trimming.group_names.index(CONV0)]
    with torch.no_grad():
        conv.logits.copy_(-torch.arange(1.0, 17.0))
        conv.logits[5] = -0.5
    mask = trimming.unit_mask()
    assert mask[CONV0].nonzero().flatten().tolist() == [5]
    assert trimming.forced_channels == [CONV0]
    report = trimming.finish(upstream)
    assert report["forced_channels"] == [CONV0]
    assert upstream.model.feature_extractor.conv_layers[0].conv.out_channels == 1


def test_named_errors_for_bad_settings(tmp_path):
    for bad in (float("nan"), float("inf"), "0.5", None):
        with pytest.raises(UserInputError, match="threshold: must be a finite number"):
            Trimming(threshold=bad)
    with pytest.raises(UserInputError, match="sparsity_weight: must be a number >= 0"):
        Trimming(sparsity_weight=-1.0)
    with pytest.raises(UserInputError, match="grouping: must be one of"):
        Trimming(grouping="layer")
    model, _ = tiny_hf_model("wav2vec2", tmp_path, feat_extract_norm="layer")
    with pytest.raises(UserInputError, match="conv_channel"):
        Trimming().prepare(HuggingFaceUpstream(model))


def test_transformer_encoder_trimming_gates_the_encoder_only():
    hparams = tiny_transformer_asr()
    upstream = TransformerASRUpstream(hparams["Transformer"], hparams["CNN"],
                                      hparams["compute_features"], hparams["normalize"])
    trimming = Trimming(levels=["head", "ffn_unit"])
    trimming.prepare(upstream)
    assert trimming.group_names and all(
        name.startswith("encoder.") for name in trimming.group_names)
    head = MLPClassifierHead(upstream.hidden_size, 2, hidden_size=4)
    model = ProbingModel(upstream, head)
    logits, _ = model(*audio([3200, 2400]))
    trimming.objective(torch.nn.functional.cross_entropy(
        logits, torch.tensor([0, 1]))).backward()
    assert all(gate.logits.grad is not None for gate in trimming.gates)


def test_ssf_starts_as_identity_and_leaves_the_encoder_frozen(tmp_path):
    upstream = group_norm_upstream(tmp_path)
    before = {k: v.clone() for k, v in upstream.model.state_dict().items()}
    wavs, wav_lens = audio([4000, 3200])
    plain = upstream(wavs, wav_lens)[0][-1]
    ssf = SSF()
    model = ctc_probe(ssf.prepare(upstream)).eval()
    assert torch.equal(upstream(wavs, wav_lens)[0][-1], plain)
    assert len(ssf.modulations) == 2 + 2 + 2  # 2 convs, 2 attention, 2 FFN
    train(model, ssf.objective, lr=0.05)
    assert not torch.equal(upstream(wavs, wav_lens)[0][-1], plain)
    for name, tensor in upstream.model.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    assert ssf.finish(upstream)["trimmed_params"] == 0


def test_scratch_is_the_trimmed_architecture_reinitialised(tmp_path):
    upstream = group_norm_upstream(tmp_path)
    trimming = Trimming()
    ctc_probe(trimming.prepare(upstream))
    close_units(trimming)
    report = trimming.finish(upstream)
    trimming.trimmed_mask.save(tmp_path / "unit_mask.pt")
    fresh = Scratch(tmp_path / "unit_mask.pt", seed=3).prepare(
        group_norm_upstream(tmp_path / "again"))
    assert fresh.num_parameters() == report["encoder_params"] - report["trimmed_params"]
    assert all(p.requires_grad for p in fresh.parameters())
    fresh.train()
    assert fresh.model.training
    original = dict(upstream.model.named_parameters())
    differs = [name for name, p in fresh.model.named_parameters()
               if name in original and original[name].shape == p.shape
               and not torch.equal(original[name], p)]
    assert "encoder.layers.0.feed_forward.intermediate_dense.weight" in differs
    with pytest.raises(FileNotFoundError):
        Scratch(tmp_path / "missing.pt").prepare(group_norm_upstream(tmp_path / "c"))
