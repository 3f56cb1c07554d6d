"""Model families: which matrices, how their inputs are captured, padding."""

import pytest
import torch
import torch.nn.functional as F

from speechbrain_sparse.pruning.calibration import (
    accumulate_hessians,
    capture_stage_entry,
    capturing_inputs,
)
from speechbrain_sparse.pruning.model_families import (
    HuggingFaceSSLFamily,
    family_for,
)
from tests.unit.pruning_models import (
    asr_batch,
    asr_family,
    audio_batch,
    tiny_hf_model,
    tiny_transformer_asr,
)

LENGTHS = (4000, 3000, 2500)  # samples -> 198, 148, 123 frames


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert", "wavlm"])
@pytest.mark.parametrize("ctc", [True, False])
def test_hf_families_list_six_matrices_per_layer(kind, ctc, tmp_path):
    model, _ = tiny_hf_model(kind, tmp_path, ctc=ctc)
    stages = family_for(model).stages(model)
    assert [s.name for s in stages] == ["encoder"]
    blocks = stages[0].blocks
    prefix = f"{kind}." if ctc else ""
    assert [b.name for b in blocks] == [f"{prefix}encoder.layers.{i}" for i in (0, 1)]
    names = [m.name.split("layers.0.")[1] for m in blocks[0].matrices]
    assert names == [f"attention.{p}_proj.weight" for p in "qkv"] + [
        "attention.out_proj.weight", "feed_forward.intermediate_dense.weight",
        "feed_forward.output_dense.weight"]
    raw = {s.kind for s in blocks[0].streams.values()}
    assert raw == ({"argument", "context", "linear"} if kind == "wavlm" else {"linear"})
    params = dict(model.named_parameters())
    for matrix in blocks[0].matrices:
        assert params[matrix.parameter_name] is matrix.parameter


def test_family_for_rejects_other_models():
    with pytest.raises(ValueError, match="model_type"):
        family_for(torch.nn.Linear(2, 2))


def _record(block):
    seen = {}

    def receive(name, tensor):
        seen.setdefault(name, []).append(tensor.detach().clone())

    return seen, capturing_inputs(block, receive)


def test_wavlm_capture_sees_the_real_q_k_v_and_out_proj_inputs(tmp_path, monkeypatch):
    """WavLM calls F.multi_head_attention_forward with raw weights: no hook on
    q_proj/out_proj fires, so the inputs are taken at the attention module."""
    model, _ = tiny_hf_model("wavlm", tmp_path)
    batch = audio_batch(LENGTHS)
    family = HuggingFaceSSLFamily()
    block = family.stages(model)[0].blocks[0]
    calls = []
    original = F.multi_head_attention_forward

    def spy(query, key, value, *args, **kwargs):
        output = original(query, key, value, *args, **kwargs)
        calls.append((query.detach().clone(), output[0].detach().clone()))
        return output

    monkeypatch.setattr(F, "multi_head_attention_forward", spy)
    with torch.no_grad():
        reference = family.forward(model, batch).logits
    _, real_output = calls[0]  # layer 0 with the real out_proj, [time, batch, ...]
    seen, capture = _record(block)
    with torch.no_grad(), capture:
        logits = family.forward(model, batch).logits
    assert torch.equal(logits, reference)  # the capture changes nothing
    query, _ = calls[2]  # layer 0 again, now captured
    assert torch.equal(seen["attention_input"][0], query.transpose(0, 1))
    attention = model.wavlm.encoder.layers[0].attention
    assert not torch.equal(attention.out_proj.weight, torch.eye(32))  # restored
    with torch.no_grad():
        projected = attention.out_proj(seen["attention_context"][0])
    assert torch.allclose(projected, real_output.transpose(0, 1), atol=1e-6)
    assert set(seen) == {"attention_input", "attention_context", "ffn_input",
                         "ffn_hidden"}


def test_wavlm_hessians_nonempty_and_padding_excluded(tmp_path):
    model, _ = tiny_hf_model("wavlm", tmp_path)
    family = HuggingFaceSSLFamily()
    stage = family.stages(model)[0]
    call = capture_stage_entry(model, family, stage, audio_batch(LENGTHS))
    assert call.padding["frames"].sum(1).tolist() == [198, 148, 123]
    hessians = accumulate_hessians(stage.blocks[0], [call])
    for name, accumulator in hessians.items():
        assert accumulator.num_frames == 198 + 148 + 123, name
        assert accumulator.hessian().abs().sum() > 0, name


def test_block_by_block_reproduces_the_encoder(tmp_path):
    """Layer 0 makes WavLM's relative position bias; next_call hands it on."""
    model, _ = tiny_hf_model("wavlm", tmp_path)
    family = HuggingFaceSSLFamily()
    stage = family.stages(model)[0]
    batch = audio_batch(LENGTHS)
    call = capture_stage_entry(model, family, stage, batch)
    with torch.no_grad():
        output = call.run(stage.blocks[0].module)
        args, kwargs = family.next_call(stage, 1, call.args, call.kwargs, output)
        assert kwargs["position_bias"] is output[1] and kwargs["index"] == 1
        last = stage.blocks[1].module(*args, **kwargs)[0]
        encoded = []
        handle = model.wavlm.encoder.register_forward_hook(
            lambda module, inputs, out: encoded.append(out.last_hidden_state))
        family.forward(model, batch)
        handle.remove()
    assert torch.allclose(last, encoded[0], atol=1e-5)


def test_transformer_asr_packed_projection_is_three_slices():
    hparams = tiny_transformer_asr()
    stages = asr_family(hparams).stages(hparams["model"])
    assert [s.name for s in stages] == ["encoder", "decoder"]
    encoder, decoder = stages[0].blocks[0], stages[1].blocks[0]
    q, k, v = encoder.matrices[:3]
    assert q.parameter is k.parameter is v.parameter
    assert (q.rows, k.rows, v.rows) == (slice(0, 16), slice(16, 32), slice(32, 48))
    assert q.stream == k.stream == v.stream == "self_attention_query"
    cross = [m for m in decoder.matrices if "multihead_attn" in m.name]
    assert [m.stream for m in cross] == ["cross_attention_query",
                                         "cross_attention_memory",
                                         "cross_attention_memory",
                                         "cross_attention_context"]
    streams = decoder.streams
    assert streams["cross_attention_memory"].padding == "memory"
    assert streams["cross_attention_query"].padding == "tokens"


def test_transformer_asr_capture_matches_the_layer_inputs():
    hparams = tiny_transformer_asr()
    family = asr_family(hparams)
    batch = asr_batch([3200, 2400], [5, 3])
    encoder, decoder = family.stages(hparams["model"])
    with torch.no_grad():
        reference = family.forward(hparams["model"], batch)
    call = capture_stage_entry(hparams["model"], family, encoder, batch)
    layer = encoder.blocks[0].module
    seen, capture = _record(encoder.blocks[0])
    with torch.no_grad(), capture:
        call.run(layer)
        after = family.forward(hparams["model"], batch)
    assert all(torch.equal(a, b) for a, b in zip(after, reference))
    src = call.args[0]
    assert torch.equal(seen["self_attention_query"][0].transpose(0, 1),
                       layer.norm1(src))
    assert call.padding["frames"].sum(1).tolist() == [6, 4]
    decoder_call = capture_stage_entry(hparams["model"], family, decoder, batch)
    assert decoder_call.padding["tokens"].sum(1).tolist() == [6, 4]
    assert decoder_call.padding["memory"].sum(1).tolist() == [6, 4]
    hessians = accumulate_hessians(decoder.blocks[0], [decoder_call])
    assert hessians["cross_attention_memory"].num_frames == 10
    assert hessians["cross_attention_query"].num_frames == 10
