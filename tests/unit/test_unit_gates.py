"""Tests of speechbrain_sparse.pruning.unit_gates: gated == zeroed, grads, removal."""

import copy

import pytest
import torch

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.pruning.unit_gates import FixedGate, attach_unit_gates
from speechbrain_sparse.pruning.unit_masks import UnitMask
from speechbrain_sparse.pruning.unit_structure import UNIT_KINDS, model_structure
from tests.unit.pruning_models import tiny_hf_model, tiny_transformer_asr

ATTENTION_FFN = [k for k in UNIT_KINDS if k != "conv_channel"]
HF_CASES = [("wav2vec2", {}), ("wav2vec2", {"do_stable_layer_norm": True}),
            ("hubert", {}), ("wavlm", {})]


class ToyGate(torch.nn.Module):
    """A learnable gate that counts its evaluations."""

    def __init__(self, count):
        super().__init__()
        self.logit = torch.nn.Parameter(torch.full((count,), 2.0))
        self.calls = 0

    def forward(self):
        self.calls += 1
        return torch.sigmoid(self.logit)


def run_asr(model):
    transformer = model[1]
    generator = torch.Generator().manual_seed(0)
    src = torch.randn(2, 12, 160, generator=generator)
    tokens = torch.randint(3, 20, (2, 5), generator=generator)
    encoded, decoded = transformer(src, tokens, torch.tensor([1.0, 0.75]), pad_idx=0)
    return torch.cat([encoded.flatten(), decoded.flatten()])


def run_hf(model):
    generator = torch.Generator().manual_seed(0)
    return model(torch.randn(2, 1600, generator=generator)).logits.flatten()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf")
    cases = {"transformer_asr": (tiny_transformer_asr()["model"], run_asr,
                                 ATTENTION_FFN)}
    for i, (kind, overrides) in enumerate(HF_CASES):
        model, _ = tiny_hf_model(kind, folder / str(i), **overrides)
        cases[f"{kind}{'_preln' if overrides else ''}"] = (model, run_hf, UNIT_KINDS)
    return cases


def random_mask(structure, levels, seed, keep=0.6):
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for group, (kind, count) in structure.groups(levels).items():
        tensor = torch.rand(count, generator=generator) < keep
        if kind == "conv_channel":
            tensor[0] = True  # a whole conv layer pruned is refused by surgery
        tensors[group] = tensor
    return UnitMask(tensors, structure.fingerprint())


def zeroed_copy(model, mask):
    reference = copy.deepcopy(model)
    structure = model_structure(reference)
    pmask = mask.to_parameter_mask(reference, structure)
    with torch.no_grad():
        for name, parameter in reference.named_parameters():
            parameter.mul_(pmask[name])
    return reference


@pytest.mark.parametrize("case", ["transformer_asr", "wav2vec2", "wav2vec2_preln",
                                  "hubert", "wavlm"])
@pytest.mark.parametrize("seed, keep", [(0, 0.6), (1, 0.3), (2, 0.9)])
def test_gated_with_fixed_masks_equals_zeroed_entries(models, case, seed, keep):
    model, run, levels = models[case]
    structure = model_structure(model)
    mask = random_mask(structure, levels, seed, keep)
    with torch.no_grad():
        expected = run(zeroed_copy(model, mask))
        handle = attach_unit_gates(model, structure,
                                   {g: FixedGate(t) for g, t in mask.items()})
        try:
            gated = run(model)
        finally:
            handle.remove()
        plain = run(model)
    torch.testing.assert_close(gated, expected, rtol=0, atol=1e-6)
    assert not torch.allclose(gated, plain, atol=1e-3)  # the gates did something


def test_open_gates_are_exact_and_removal_is_bit_identical(models):
    model, run, levels = models["wavlm"]
    structure = model_structure(model)
    before = {n: (p, p.detach().clone()) for n, p in model.named_parameters()}
    keys = list(model.state_dict())
    # With grad enabled: under no_grad, W * 1 does not require grad where W does,
    # and torch's matmul may then pick another summation order (~1 ulp).
    plain = run(model).detach()
    handle = attach_unit_gates(model, structure, {
        g: FixedGate(torch.ones(n, dtype=torch.bool))
        for g, (_, n) in structure.groups(levels).items()})
    assert any("parametrizations" in n for n, _ in model.named_parameters())
    assert torch.equal(run(model).detach(), plain)
    handle.remove()
    after = dict(model.named_parameters())
    assert list(after) == list(before) and list(model.state_dict()) == keys
    for name, (parameter, value) in before.items():
        assert after[name] is parameter and torch.equal(parameter, value)


def test_gradients_reach_the_gates_once_per_forward(models):
    model, run, _ = models["transformer_asr"]
    structure = model_structure(model)
    gates = {g: ToyGate(n) for g, (_, n) in structure.groups(ATTENTION_FFN).items()}
    handle = attach_unit_gates(model, structure, gates)
    try:
        run(model).square().sum().backward()
        assert all(g.calls == 1 for g in gates.values())
        for group, gate in gates.items():
            grad = gate.logit.grad
            assert grad is not None and grad.abs().sum() > 0, group
        run(model)
        assert all(g.calls == 2 for g in gates.values())
        values = handle.values()
        handle.resample()
        handle.values()
        assert all(g.calls == 3 for g in gates.values()) and len(values) == len(gates)
        assert {id(p) for p in handle.parameters()} == {id(g.logit) for g in
                                                          gates.values()}
    finally:
        handle.remove()
    # The model's own (gated) weights got gradients too, under their plain names.
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert grads["1.encoder.layers.0.self_att.att.in_proj_weight"].abs().sum() > 0
    assert grads["1.decoder.layers.0.pos_ffn.ffn.3.weight"].abs().sum() > 0
    model.zero_grad(set_to_none=True)


def test_closed_block_outputs_zero_and_headless_block_its_bias(models):
    model, _, _ = models["transformer_asr"]
    structure = model_structure(model)
    block = structure.attention[0]
    x = torch.randn(3, 2, 16)
    handle = attach_unit_gates(model, structure, {
        f"{block.name}:mha": FixedGate(torch.tensor([False])),
        f"{structure.attention[1].name}:head": FixedGate(torch.zeros(2, dtype=bool))})
    try:
        with torch.no_grad():
            assert torch.equal(block.module(x, x, x)[0], torch.zeros(3, 2, 16))
            headless = structure.attention[1].module
            out = headless(x, x, x)[0]
            bias = headless.out_proj.bias.expand(3, 2, 16)
            torch.testing.assert_close(out, bias, rtol=0, atol=0)
    finally:
        handle.remove()


def test_parameter_mask_of_a_gated_model_has_plain_names(models):
    model, _, _ = models["transformer_asr"]
    structure = model_structure(model)
    mask = random_mask(structure, ["head_qk_dim", "ffn_unit"], seed=3)
    plain = mask.to_parameter_mask(model, structure)
    handle = attach_unit_gates(model, structure, {g: FixedGate(t) for g, t in
                                                  mask.items()})
    try:
        gated = mask.to_parameter_mask(model, structure)
        assert sorted(gated) == sorted(plain)  # the order of named_parameters differs
        assert all(torch.equal(gated[name], plain[name]) for name in plain)
    finally:
        handle.remove()


def test_bad_gates_are_named_errors(models):
    model, run, _ = models["transformer_asr"]
    structure = model_structure(model)
    with pytest.raises(UserInputError, match="'conv_channel' is not available"):
        attach_unit_gates(model, structure, {"conv.0:conv_channel": FixedGate([True])})
    with pytest.raises(UserInputError, match="is not in this transformer_asr model"):
        attach_unit_gates(model, structure, {"1.encoder.layers.7.pos_ffn:ffn":
                                             FixedGate([True])})
    group = "1.encoder.layers.0.pos_ffn:ffn_unit"
    handle = attach_unit_gates(model, structure, {group: FixedGate([True] * 31)})
    try:
        with pytest.raises(ValueError, match=r"shape \(31,\), expected \(32,\)"):
            run(model)
        with pytest.raises(ValueError, match="already parametrized"):
            attach_unit_gates(model, structure, {group: FixedGate([True] * 32)})
    finally:
        handle.remove()
    layer_norm, _ = tiny_hf_model("wav2vec2", models["wav2vec2"][0].name_or_path
                                  + "_ln", feat_extract_norm="layer")
    ln = model_structure(layer_norm)
    with pytest.raises(UserInputError, match="LayerNorm over channels"):
        attach_unit_gates(layer_norm, ln, {f"{ln.conv.name}.0:conv_channel":
                                           FixedGate([True] * 16)})
