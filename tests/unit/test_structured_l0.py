"""Expected parameter count, achieved sparsity and the Lagrangian controller."""

import math

import pytest
import torch
from speechbrain.nnet.schedulers import NoamScheduler
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.pruning.hard_concrete import HardConcrete
from speechbrain_sparse.pruning.structured_l0 import (
    LagrangianController,
    achieved_sparsity,
    deterministic_masks,
    expected_params,
    expected_sparsity,
)
from speechbrain_sparse.pruning.unit_structure import UNIT_KINDS, model_structure
from tests.unit.pruning_models import tiny_hf_model, tiny_transformer_asr

ATTENTION_AND_FFN = ("head", "head_qk_dim", "head_vo_dim", "mha", "ffn_unit", "ffn")


class Open(torch.nn.Module):
    """A gate whose units are open with probability exactly ``value``."""

    def __init__(self, count, value=1.0):
        super().__init__()
        self.value = torch.full((count,), float(value))

    def prob_open(self):
        return self.value


def open_gates(structure, levels, value=1.0):
    return {g: Open(n, value) for g, (_, n) in structure.groups(levels).items()}


@pytest.fixture(scope="module")
def asr_structure():
    return model_structure(tiny_transformer_asr()["model"])


@pytest.fixture(scope="module")
def hf_structures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf")
    return {kind: model_structure(tiny_hf_model(kind, folder)[0])
            for kind in ("wav2vec2", "hubert", "wavlm")}


LEVEL_SETS = [("head_qk_dim", "head_vo_dim", "mha", "ffn_unit", "ffn"),
              ("head", "mha", "ffn_unit", "ffn"), ("head", "ffn_unit"),
              ("head_qk_dim", "head_vo_dim"), ("mha", "ffn"), ATTENTION_AND_FFN]


@pytest.mark.parametrize("levels", LEVEL_SETS)
def test_all_open_equals_num_params_transformer_asr(asr_structure, levels):
    gates = open_gates(asr_structure, levels)
    expected = expected_params(asr_structure, gates)
    assert expected.item() == asr_structure.num_params(levels)
    assert expected_sparsity(asr_structure, gates).item() == 0.0


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert", "wavlm"])
@pytest.mark.parametrize("levels", LEVEL_SETS + [UNIT_KINDS, ("conv_channel",)])
def test_all_open_equals_num_params_hugging_face(hf_structures, kind, levels):
    structure = hf_structures[kind]
    assert expected_params(structure, open_gates(structure, levels)).item() \
        == structure.num_params(levels)


def test_all_attention_and_ffn_params_are_counted(asr_structure):
    # With the block levels, N_gated is every q/k/v/o and FFN weight and bias.
    assert asr_structure.num_params(ATTENTION_AND_FFN) == 7568
    gates = open_gates(asr_structure, ATTENTION_AND_FFN)
    assert expected_params(asr_structure, gates).item() == 7568


def test_binary_mask_hand_count(hf_structures):
    # d = 32, 2 heads of 16, d_ffn = 64; convs 16 x (1 x 10), 16 x (16 x 8), GroupNorm.
    structure = hf_structures["wav2vec2"]
    masks = {g: torch.zeros(n, dtype=torch.bool)
             for g, (_, n) in structure.groups(UNIT_KINDS).items()}
    layer0, layer1 = "wav2vec2.encoder.layers.0", "wav2vec2.encoder.layers.1"
    masks[f"{layer1}.attention:mha"][:] = True
    masks[f"{layer1}.attention:head"][0] = True
    masks[f"{layer1}.attention:head_qk_dim"][[0, 3, 7, 8, 20]] = True  # 20: head 1
    masks[f"{layer1}.attention:head_vo_dim"][[1, 2, 15]] = True
    masks[f"{layer0}.attention:head"][:] = True  # but its mha gate is closed
    masks[f"{layer0}.attention:head_qk_dim"][:] = True
    masks[f"{layer0}.feed_forward:ffn"][:] = True
    masks[f"{layer0}.feed_forward:ffn_unit"][:10] = True
    masks[f"{layer1}.feed_forward:ffn_unit"][:] = True  # its ffn gate is closed
    masks["wav2vec2.feature_extractor.conv_layers.0:conv_channel"][[2, 5, 9, 11]] = True
    kept = (4 * 2 * 33 + 3 * 65 + 32) + (10 * 65 + 32) + (10 * 4 + 2 * 4 + 8 * 4 * 16)
    total = 2 * (32 * (66 + 65) + 32) + 2 * (64 * 65 + 32) + (160 + 32 + 2048)
    assert structure.num_params(UNIT_KINDS) == total == 19072
    assert achieved_sparsity(structure, masks) == pytest.approx(1 - kept / total)
    gates = {g: Open(len(m)) for g, m in masks.items()}
    assert expected_params(structure, gates).item() == total
    for group, gate in gates.items():
        gate.value = masks[group].float()
    assert expected_params(structure, gates).item() == kept


def test_expected_params_is_differentiable_and_hierarchical(asr_structure):
    torch.manual_seed(0)
    levels = ("head_qk_dim", "head_vo_dim", "mha", "ffn_unit", "ffn")
    gates = {g: HardConcrete(n) for g, (_, n) in asr_structure.groups(levels).items()}
    for gate in gates.values():
        with torch.no_grad():
            gate.log_alpha.copy_(torch.randn(gate.count) * 2)
    expected_params(asr_structure, gates).backward()
    assert all(bool((gate.log_alpha.grad > 0).all()) for gate in gates.values())
    # dE/dπ of a unit is its parameter count times the π of the block above it.
    probabilities = {g: Open(n) for g, (_, n) in asr_structure.groups(levels).items()}
    for gate in probabilities.values():
        gate.value = torch.rand(len(gate.value)).requires_grad_()
    expected_params(asr_structure, probabilities).backward()
    block = "1.decoder.layers.0.multihead_attn"
    pi_mha = probabilities[f"{block}:mha"].value.item()
    pi_qk = probabilities[f"{block}:head_qk_dim"].value.detach().view(2, 8)
    pi_vo = probabilities[f"{block}:head_vo_dim"].value.detach().view(2, 8)
    any_vo = 1 - (1 - pi_vo).prod(1, keepdim=True)  # P(the head keeps a vo dim)
    assert torch.allclose(probabilities[f"{block}:head_qk_dim"].value.grad,
                          (pi_mha * 2 * 17 * any_vo).expand(2, 8).reshape(16))
    assert torch.allclose(
        probabilities[f"{block}:head_vo_dim"].value.grad.view(2, 8),
        pi_mha * (33 + 34 * pi_qk.sum(1, keepdim=True) * (1 - any_vo) / (1 - pi_vo)))
    inner = ((pi_qk.sum(1) * 34 * any_vo[:, 0]).sum() + pi_vo.sum() * 33 + 16)
    assert probabilities[f"{block}:mha"].value.grad.item() == pytest.approx(
        inner.item(), rel=1e-6)
    ffn = "1.encoder.layers.1.pos_ffn"
    assert torch.allclose(probabilities[f"{ffn}:ffn_unit"].value.grad,
                          probabilities[f"{ffn}:ffn"].value.detach() * 33)


@pytest.mark.parametrize("family", ["asr", "wav2vec2", "hubert", "wavlm"])
def test_achieved_sparsity_agrees_with_unit_mask_counts(asr_structure, hf_structures,
                                                        family):
    from speechbrain_sparse.pruning.unit_masks import UnitMask

    structure = asr_structure if family == "asr" else hf_structures[family]
    levels = ATTENTION_AND_FFN + (() if family == "asr" else ("conv_channel",))
    generator = torch.Generator().manual_seed(4)
    for keep in (0.9, 0.5, 0.2):
        masks = {g: torch.rand(n, generator=generator) < keep
                 for g, (_, n) in structure.groups(levels).items()}
        kept = UnitMask(masks, structure.fingerprint()).num_kept_params(structure)
        total = structure.num_params(levels)
        assert 0 < kept < total
        assert achieved_sparsity(structure, masks) == pytest.approx(1 - kept / total,
                                                                   abs=1e-12)


def test_conv_channels_use_neighbours_expected_counts(hf_structures):
    structure = hf_structures["wav2vec2"]
    gates = open_gates(structure, ["conv_channel"], value=0.25)
    # conv0: 10·1·E[C0] + 2·E[C0] (GroupNorm); conv1: 8·E[C0]·16 (last, not gated).
    assert expected_params(structure, gates).item() == pytest.approx(
        10 * 4 + 2 * 4 + 8 * 4 * 16)


def test_bad_gate_sets_are_named(asr_structure, hf_structures):
    with pytest.raises(UserInputError, match="nope"):
        expected_params(asr_structure, {"1.encoder.layers.0.nope:head": Open(2)})
    with pytest.raises(UserInputError, match="1.encoder.layers.0.self_att:head"):
        expected_params(asr_structure, {"1.encoder.layers.0.self_att:head": Open(3)})
    with pytest.raises(UserInputError, match="conv_channel"):
        expected_params(asr_structure, {"x.0:conv_channel": Open(3)})
    with pytest.raises(UserInputError, match="level"):
        expected_params(asr_structure, {"1.encoder.layers.0.self_att:heads": Open(2)})


def test_deterministic_masks_give_achieved_sparsity(asr_structure):
    torch.manual_seed(2)
    levels = ("head", "ffn_unit")
    gates = {g: HardConcrete(n) for g, (_, n) in asr_structure.groups(levels).items()}
    for gate in gates.values():
        with torch.no_grad():
            gate.log_alpha.copy_(torch.randn(gate.count) * 3)
    masks = deterministic_masks(gates)
    kept = sum(int(m.sum()) * asr_structure.params_per_unit(g)
               for g, m in masks.items())
    assert achieved_sparsity(asr_structure, masks) == pytest.approx(
        1 - kept / asr_structure.num_params(levels))


def _toy_run(steps=500, seed=0, target=0.5, warmup=100):
    """A gated MLP (64 hidden units, one HardConcrete gate each) fits a teacher."""
    torch.manual_seed(seed)
    teacher = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(),
                                  torch.nn.Linear(32, 4))
    up, down = torch.nn.Linear(16, 64), torch.nn.Linear(64, 4)
    gate = HardConcrete(64)
    main = torch.optim.Adam([*up.parameters(), *down.parameters()], lr=1e-3)
    gate_optimizer = torch.optim.Adam(gate.parameters(), lr=0.05)  # reg_lr
    controller = LagrangianController(target, warmup_steps=warmup, lr_lambda=0.02)
    history = []
    for step in range(steps):
        x = torch.randn(32, 16)
        with torch.no_grad():
            y = teacher(x)
        out = down(torch.nn.functional.gelu(up(x)) * gate())
        p_hat = 1 - gate.prob_open().mean()  # every unit owns 16 + 1 + 4 params
        loss = torch.nn.functional.mse_loss(out, y) + controller.penalty(p_hat, step)
        main.zero_grad()
        gate_optimizer.zero_grad()
        loss.backward()
        main.step()
        gate_optimizer.step()
        controller.step()
        history.append(p_hat.item())
    return history, controller, gate


def test_lagrangian_reaches_the_target_on_a_toy_model():
    history, controller, gate = _toy_run()
    assert history[0] < 0.05
    assert all(abs(p - 0.5) <= 0.01 for p in history[-20:]), history[-20:]
    zeros = int((~gate.deterministic_mask()).sum())
    assert zeros == round(64 - gate.prob_open().sum().item())
    assert abs(zeros / 64 - 0.5) <= 0.05


def test_lambda_moves_in_the_ascent_direction():
    for p_hat, sign in ((0.1, -1.0), (0.7, 1.0)):
        controller = LagrangianController(0.4)
        sparsity = torch.tensor(p_hat, requires_grad=True)
        controller.penalty(sparsity, step=0).backward()
        controller.step()
        assert math.copysign(1.0, controller.lambda_1.item()) == sign
        assert controller.lambda_2.item() > 0
        assert controller.lambda_1.grad is None  # step() clears the gradients
        # ... and the penalty now pushes p̂ toward the target (descent on p̂).
        sparsity.grad = None
        controller.penalty(sparsity, step=0).backward()
        assert sparsity.grad.item() * sign > 0


def test_target_ramp():
    controller = LagrangianController(0.8, warmup_steps=70)
    assert [controller.target_at(s) for s in (0, 35, 70, 700)] == [0.0, 0.4, 0.8, 0.8]
    assert LagrangianController(0.3).target_at(0) == 0.3


def test_speechbrain_scheduler_leaves_lambda_lr_untouched():
    model = torch.nn.Linear(4, 4)
    controller = LagrangianController(0.5, lr_lambda=0.02)
    # The anchors' way: λ in a negative-lr group of the main optimizer ...
    naive_lambda = torch.nn.Parameter(torch.zeros(()))
    main = torch.optim.AdamW([{"params": model.parameters()},
                              {"params": [naive_lambda], "lr": -0.02}], lr=1e-3)
    scheduler = NoamScheduler(lr_initial=1e-3, n_warmup_steps=5)
    for step in range(10):
        loss = model(torch.randn(2, 4)).pow(2).mean() + controller.penalty(
            torch.tensor(0.2), step)
        loss.backward()
        scheduler(main)
        main.step()
        controller.step()
    # ... is overwritten (the ascent silently becomes descent), ours is not.
    assert main.param_groups[1]["lr"] > 0
    assert controller.optimizer.param_groups[0]["lr"] == 0.02
    assert controller.lambda_1.item() < -0.1  # it kept ascending (p̂ < p)
    assert not any(p is controller.lambda_1 for g in main.param_groups
                   for p in g["params"])


def test_checkpoint_round_trip(tmp_path):
    controller = LagrangianController(0.5, warmup_steps=4)
    for step in range(3):
        controller.penalty(torch.tensor(0.1 * step), step).backward()
        controller.step()
    checkpointer = Checkpointer(tmp_path, {"lagrangian": controller})
    checkpointer.save_checkpoint()
    restored = LagrangianController(0.5, warmup_steps=4)
    Checkpointer(tmp_path, {"lagrangian": restored}).recover_if_possible()
    assert restored.stats()["lambda_1"] == controller.stats()["lambda_1"]
    for each in (controller, restored):
        each.penalty(torch.tensor(0.3), 3).backward()
        each.step()
    assert torch.equal(restored.lambda_1.detach(), controller.lambda_1.detach())
    assert torch.equal(restored.lambda_2.detach(), controller.lambda_2.detach())


@pytest.mark.parametrize("kwargs, name", [
    ({"target": 1.0}, "target"), ({"target": -0.1}, "target"),
    ({"target": float("nan")}, "target"), ({"target": "0.5"}, "target"),
    ({"target": 0.5, "warmup_steps": -1}, "warmup_steps"),
    ({"target": 0.5, "warmup_steps": 2.5}, "warmup_steps"),
    ({"target": 0.5, "lr_lambda": 0.0}, "lr_lambda"),
])
def test_bad_controller_settings_are_named(kwargs, name):
    with pytest.raises(UserInputError, match=name):
        LagrangianController(**kwargs)


def test_l0_distillation_step_on_a_gated_model(tmp_path):
    import copy

    from speechbrain_sparse.pruning.distillation import LayerDistillation
    from speechbrain_sparse.pruning.gate_set import build_gates
    from speechbrain_sparse.pruning.unit_gates import FixedGate, attach_unit_gates

    teacher, _ = tiny_hf_model("wav2vec2", tmp_path, ctc=False)
    student = copy.deepcopy(teacher).train()
    structure = model_structure(student)
    levels = ("head_qk_dim", "head_vo_dim", "mha", "ffn_unit", "ffn")
    torch.manual_seed(0)
    # Blocks nearly always open (a closed block passes no gradient to its units).
    gates = build_gates(structure, levels, init_keep={
        "head_qk_dim": 0.6, "head_vo_dim": 0.6, "ffn_unit": 0.6})
    handle = attach_unit_gates(student, structure, gates)
    distill = LayerDistillation(32, 32, student_layers=[0, 1, 2])
    controller = LagrangianController(0.5, warmup_steps=2)
    audio, lengths = torch.randn(2, 1600), torch.tensor([1.0, 0.7])
    with torch.no_grad():
        target = teacher(audio, output_hidden_states=True).hidden_states
    hidden = student(audio, output_hidden_states=True).hidden_states
    sparsity = expected_sparsity(structure, gates)
    loss = distill(hidden, target, lengths) + controller.penalty(sparsity, step=1)
    loss.backward()
    controller.step()
    # p̂ with keep 0.6 of the units is above p_t = 0.25: λ1 rises.
    assert sparsity.item() > 0.3 and controller.lambda_1.item() > 0
    silent = [g for g, gate in gates.items()
              if gate.log_alpha.grad is None or not gate.log_alpha.grad.ne(0).any()]
    assert not silent, [(g, gates[g].log_alpha.grad) for g in silent]
    # Eval: the gates' deterministic masks, the same as fixed 0/1 gates.
    student.eval()
    gates.eval()
    handle.resample()
    with torch.no_grad():
        gated = student(audio).last_hidden_state
    handle.remove()
    masks = deterministic_masks(gates)
    handle = attach_unit_gates(student, structure,
                               {g: FixedGate(m) for g, m in masks.items()})
    with torch.no_grad():
        fixed = student(audio).last_hidden_state
    handle.remove()
    assert torch.equal(gated, fixed)
    assert 0 < achieved_sparsity(structure, masks) < 1


def test_gate_set_builds_checkpoints_and_fits_the_other_pieces(asr_structure, tmp_path):
    import functools

    from speechbrain_sparse.pruning.gate_set import GateSet, build_gates

    levels = ("head", "mha", "ffn_unit", "ffn")
    make_gate = functools.partial(HardConcrete, ste=False)
    gates = build_gates(asr_structure, levels, make_gate, init_keep={"ffn_unit": 0.5})
    assert list(gates) == list(asr_structure.groups(levels))
    unit = gates["1.encoder.layers.0.pos_ffn:ffn_unit"]
    assert not unit.ste and unit.prob_open()[0].item() == pytest.approx(0.5)
    assert gates["1.encoder.layers.0.pos_ffn:ffn"].prob_open()[0].item() \
        == pytest.approx(0.99)
    assert len(list(gates.parameters())) == len(gates) == 4 * 2 + 3 * 2
    assert expected_params(asr_structure, gates).item() == pytest.approx(
        expected_params(asr_structure, dict(gates.items())).item())
    with torch.no_grad():
        unit.log_alpha.fill_(-5.0)
    Checkpointer(tmp_path, {"gates": gates}).save_checkpoint()
    restored = build_gates(asr_structure, levels, make_gate)
    Checkpointer(tmp_path, {"gates": restored}).recover_if_possible()
    assert torch.equal(restored["1.encoder.layers.0.pos_ffn:ffn_unit"].log_alpha,
                       unit.log_alpha)
    assert not restored.eval()["1.encoder.layers.0.self_att:head"].training
    assert set(restored.deterministic_masks()) == set(asr_structure.groups(levels))
    with pytest.raises(UserInputError, match="init_keep"):
        build_gates(asr_structure, ["head"], init_keep={"ffn_unit": 0.5})
    assert isinstance(GateSet({}), torch.nn.Module)
