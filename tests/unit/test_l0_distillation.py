"""The L0 + distillation stage: gates, Lagrangian and removal wired together."""

import torch

from speechbrain_sparse.asr.probing import HuggingFaceUpstream
from speechbrain_sparse.pruning.l0_distillation import HEAD_LEVELS, L0Distillation
from speechbrain_sparse.pruning.unit_structure import model_structure
from speechbrain_sparse.surgery import count_parameters
from tests.unit.pruning_models import tiny_hf_model


def pair(tmp_path):
    model, folder = tiny_hf_model("wav2vec2", tmp_path, ctc=False,
                                  feat_extract_norm="group")
    return (HuggingFaceUpstream.from_pretrained(folder),
            HuggingFaceUpstream.from_pretrained(folder).unfreeze())


def test_one_step_moves_gates_and_lambda_and_leaves_the_teacher(tmp_path):
    teacher, student = pair(tmp_path)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    l0 = L0Distillation(target=0.5, distill_layers=[0, 2], warmup_steps=0)
    l0.prepare(student)
    wavs, lens = torch.randn(2, 4000), torch.tensor([1.0, 0.8])
    with torch.no_grad():
        target, _ = teacher(wavs, lens)
    states, frame_lens = student(wavs, lens)
    loss, distill = l0.objective(states, target, frame_lens, step=0)
    loss.backward()
    l0.controller.step()
    assert l0.controller.lambda_1.item() < 0  # p̂ ≈ 0 below p = 0.5: ascent lowers λ1
    assert all(g.log_alpha.grad is not None for g in l0.gates.values())
    assert student.model.encoder.layers[0].feed_forward.output_dense.parametrizations \
        .weight.original.grad is not None
    for name, tensor in teacher.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_finish_removes_the_closed_units_and_reports_the_sparsity(tmp_path):
    _, student = pair(tmp_path)
    l0 = L0Distillation(target=0.5, levels=HEAD_LEVELS, distill_layers=[0])
    l0.prepare(student)
    n_gated = model_structure(student.model).num_params(HEAD_LEVELS)
    with torch.no_grad():  # all open; then close layer 0's FFN and a head of layer 1
        for gate in l0.gates.values():
            gate.log_alpha.fill_(10.0)
        l0.gates["encoder.layers.0.feed_forward:ffn"].log_alpha.fill_(-10.0)
        l0.gates["encoder.layers.1.attention:head"].log_alpha[1] = -10.0
    total = count_parameters(student.model)
    report = l0.finish(student)
    removed = total - count_parameters(student.model)
    # FFN block: 64 units x (32 + 1 + 32) + b_down 32; a head: 4 d d_h + 3 d_h
    assert removed == report["pruned_params"] == 64 * 65 + 32 + 2096
    assert report["achieved_sparsity"] == removed / n_gated
    assert report["target_sparsity"] == 0.5 and report["kept_units"] == (
        report["units"] - 64 - 1 - 1)
