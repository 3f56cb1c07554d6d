"""Probing a frozen upstream: frozen is bit-identical, lengths are real frames."""

import pytest
import speechbrain as sb
import torch

from speechbrain_sparse.asr.probing import (
    HuggingFaceUpstream,
    ProbingModel,
    TransformerASRUpstream,
    WeightedLayerSum,
    trainable_parameters,
)
from speechbrain_sparse.asr.probing_heads import (
    BiLSTMCTCHead,
    LinearCTCHead,
    MLPClassifierHead,
)
from speechbrain_sparse.errors import UserInputError
from tests.unit.pruning_models import tiny_hf_model, tiny_transformer_asr


def snapshot(module):
    return {name: tensor.clone() for name, tensor in module.state_dict().items()}


def audio(lengths, seed=0):
    generator = torch.Generator().manual_seed(seed)
    wavs = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        wavs[i, :n] = torch.randn(n, generator=generator)
    return wavs, torch.tensor(lengths, dtype=torch.float) / max(lengths)


def train_steps(model, loss_fn, steps=3):
    optimizer = torch.optim.AdamW(trainable_parameters(model), lr=1e-2,
                                  weight_decay=0.1)
    model.train()
    for step in range(steps):
        optimizer.zero_grad()
        loss_fn(step).backward()
        optimizer.step()
    return optimizer


@pytest.fixture(params=["wav2vec2", "wavlm"])
def hf_upstream(request, tmp_path):
    model, _ = tiny_hf_model(request.param, tmp_path, hidden_dropout=0.5,
                             mask_time_prob=0.5, mask_time_length=2)
    return HuggingFaceUpstream(model)


def ctc_loss(model, wavs, wav_lens, tokens, token_lens):
    log_probs, frame_lens = model(wavs, wav_lens)
    return sb.nnet.losses.ctc_loss(log_probs, tokens, frame_lens, token_lens,
                                   blank_index=0)


def test_hf_upstream_is_bit_identical_after_adamw_with_weight_decay(hf_upstream):
    before = snapshot(hf_upstream)
    head = BiLSTMCTCHead(hf_upstream.hidden_size, vocab_size=6, hidden_size=8)
    model = ProbingModel(hf_upstream, head)
    wavs, wav_lens = audio([4000, 3000])
    tokens = torch.tensor([[1, 2, 3], [4, 5, 0]])
    token_lens = torch.tensor([1.0, 2 / 3])
    optimizer = train_steps(
        model, lambda step: ctc_loss(model, wavs, wav_lens, tokens, token_lens))
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert not in_optimizer & {id(p) for p in hf_upstream.parameters()}
    assert in_optimizer == {id(p) for p in [*head.parameters(), model.mix.weights]}
    after = hf_upstream.state_dict()
    assert before.keys() == after.keys()
    for name, tensor in before.items():
        assert torch.equal(tensor, after[name]), name
    assert not hf_upstream.model.training and model.training
    # and the head did learn something
    assert not torch.equal(model.mix.weights, torch.zeros_like(model.mix.weights))


def test_hf_upstream_gives_every_layer_and_the_real_frames(hf_upstream):
    wavs, wav_lens = audio([4000, 2400])
    states, frame_lens = hf_upstream(wavs, wav_lens)
    assert len(states) == hf_upstream.model.config.num_hidden_layers + 1
    frames = hf_upstream.model._get_feat_extract_output_lengths(torch.tensor([4000,
                                                                               2400]))
    assert states[0].shape[1] == frames[0]
    expected = frames.float() / frames[0]
    assert torch.equal(frame_lens, expected)
    # the last collected state is what the model itself returns (post-LN)
    batch = type("Batch", (), {"sig": (wavs, wav_lens)})()
    final = hf_upstream.family.forward(hf_upstream.model, batch).last_hidden_state
    assert torch.equal(states[-1], final)


def test_padding_does_not_change_the_ctc_head_output():
    torch.manual_seed(0)
    head = BiLSTMCTCHead(4, 5, hidden_size=3).eval()
    feats = torch.randn(1, 6, 4)
    padded = torch.cat([feats, torch.randn(1, 4, 4)], dim=1)
    alone = head(feats, torch.tensor([1.0]))
    in_batch = head(torch.cat([padded, torch.randn(1, 10, 4)]),
                    torch.tensor([0.6, 1.0]))
    assert torch.allclose(alone[0], in_batch[0, :6], atol=1e-6)


def test_bilstm_head_has_two_layers_of_256_each_way():
    head = BiLSTMCTCHead(32, 10)
    assert head.lstm.num_layers == 2
    assert head.lstm.hidden_size == 256 and head.lstm.bidirectional
    assert head.output.in_features == 512 and head.output.out_features == 10


def test_mlp_head_is_two_linear_layers_of_1024_with_relu():
    head = MLPClassifierHead(32, 3)
    linears = [m for m in head.mlp if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(32, 1024),
                                                                  (1024, 3)]
    assert isinstance(head.mlp[1], torch.nn.ReLU)


def test_weighted_layer_sum_is_a_softmax_mix():
    mix = WeightedLayerSum(3)
    with torch.no_grad():
        mix.weights.copy_(torch.tensor([0.0, 1.0, 2.0]))
    states = [torch.full((1, 2, 2), float(v)) for v in (1, 2, 3)]
    weights = torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0)
    assert torch.allclose(mix(states), torch.full((1, 2, 2), float(
        (weights * torch.tensor([1.0, 2.0, 3.0])).sum())))


def test_transformer_encoder_upstream_is_frozen_and_classifies():
    hparams = tiny_transformer_asr()
    upstream = TransformerASRUpstream(hparams["Transformer"], hparams["CNN"],
                                      hparams["compute_features"],
                                      hparams["normalize"])
    before = snapshot(upstream)
    model = ProbingModel(upstream, MLPClassifierHead(upstream.hidden_size, 3,
                                                     hidden_size=8), layers="last")
    wavs, wav_lens = audio([3200, 2000])
    labels = torch.tensor([0, 2])
    train_steps(model, lambda step: torch.nn.functional.cross_entropy(
        model(wavs, wav_lens)[0], labels))
    after = upstream.state_dict()
    for name, tensor in before.items():
        assert torch.equal(tensor, after[name]), name
    states, frame_lens = upstream(wavs, wav_lens)
    assert len(states) == len(hparams["Transformer"].encoder.layers) + 1
    assert torch.equal(frame_lens, wav_lens)
    assert upstream.num_parameters() < sum(
        p.numel() for p in hparams["Transformer"].parameters()) + sum(
        p.numel() for p in hparams["CNN"].parameters())


def test_linear_probe_and_bad_layer_choice(hf_upstream):
    with pytest.raises(UserInputError, match="layers: must be one of"):
        ProbingModel(hf_upstream, LinearCTCHead(32, 5), layers="middle")
    model = ProbingModel(hf_upstream, LinearCTCHead(hf_upstream.hidden_size, 5),
                         layers="last")
    log_probs, _ = model(*audio([3000]))
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(1, log_probs.shape[1]))
