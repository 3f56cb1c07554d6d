"""Hard-concrete and binary STE gates: sampled probabilities, estimators, final mask."""

import math

import pytest
import torch

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.pruning.hard_concrete import BinarySTE, HardConcrete

BETA, GAMMA, ZETA = 2 / 3, -0.1, 1.1


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def _cdf_stretched(x, log_alpha, noise_form, beta=BETA, gamma=GAMMA, zeta=ZETA):
    """P(s̄ <= x) for gamma < x < zeta, written out from u ~ U(0, 1).

    s̄ <= x  <=>  s <= t := (x - gamma)/(zeta - gamma)  <=>  logit(u) <= c, with
    c = beta*logit(t) - log_alpha (Louizos) or beta*(logit(t) - log_alpha) (eq. 2),
    and P(logit(u) <= c) = sigmoid(c) (logit(u) is standard logistic).
    """
    t = (x - gamma) / (zeta - gamma)
    logit_t = math.log(t / (1 - t))
    if noise_form == "louizos":
        return _sigmoid(beta * logit_t - log_alpha)
    return _sigmoid(beta * (logit_t - log_alpha))


@pytest.mark.parametrize("noise_form", ["louizos", "paper"])
@pytest.mark.parametrize("log_alpha", [-1.5, 0.0, 1.0])
def test_sampled_probabilities_match_closed_form(noise_form, log_alpha):
    torch.manual_seed(0)
    gate = HardConcrete(100_000, noise_form=noise_form)
    with torch.no_grad():
        gate.log_alpha.fill_(log_alpha)
    z = gate.train()().detach()
    p_zero = _cdf_stretched(0.0, log_alpha, noise_form)
    p_one = 1.0 - _cdf_stretched(1.0, log_alpha, noise_form)
    # Both closed forms are far from 0 and 1 here, so the check is not vacuous.
    assert 0.03 < p_zero < 0.97 and 0.03 < p_one < 0.97
    assert abs((z == 0).double().mean().item() - p_zero) < 0.01
    assert abs((z == 1).double().mean().item() - p_one) < 0.01
    assert abs((z > 0).double().mean().item() - (1 - p_zero)) < 0.01
    assert gate.prob_open()[0].item() == pytest.approx(1 - p_zero, abs=1e-6)
    assert gate.prob_one()[0].item() == pytest.approx(p_one, abs=1e-6)


def test_louizos_prob_open_is_the_spec_formula():
    gate = HardConcrete(1)
    with torch.no_grad():
        gate.log_alpha.fill_(0.3)
    expected = _sigmoid(0.3 - BETA * math.log(-GAMMA / ZETA))
    assert gate.prob_open().item() == pytest.approx(expected, abs=1e-7)
    assert -BETA * math.log(-GAMMA / ZETA) == pytest.approx(1.5986, abs=1e-4)


@pytest.mark.parametrize("noise_form", ["louizos", "paper"])
@pytest.mark.parametrize("keep", [0.99, 0.5, 0.2])
def test_init_keep_sets_prob_open(noise_form, keep):
    gate = HardConcrete(3, init_keep=keep, noise_form=noise_form)
    assert torch.allclose(gate.prob_open(), torch.full((3,), keep), atol=1e-6)


def _task_grad(ste, upstream=1.0):
    torch.manual_seed(0)
    gate = HardConcrete(16, ste=ste).train()
    with torch.no_grad():
        gate.log_alpha.fill_(10.0)
    stretched, z = gate.sample()
    stretched.retain_grad()
    weights = torch.linspace(-1, 1, 16)
    loss = (upstream * z * weights).sum()
    loss.backward()
    return gate, stretched, z


def test_open_gate_without_ste_gets_exactly_zero_gradient():
    gate, stretched, z = _task_grad(ste=False)
    assert bool((stretched.detach() > 1).all()) and bool((z == 1).all())
    assert torch.equal(gate.log_alpha.grad, torch.zeros(16))


def test_open_gate_with_ste_gets_a_gradient():
    gate, stretched, z = _task_grad(ste=True)
    assert bool((z == 1).all())
    assert bool((gate.log_alpha.grad != 0).all())


def test_ste_clips_upstream_gradient_to_one():
    _, stretched, _ = _task_grad(ste=True, upstream=5.0 / torch.linspace(-1, 1, 16))
    # dL/dz = 5 for every unit (weights cancel), passed on as exactly 1.
    assert torch.equal(stretched.grad, torch.ones(16))
    _, stretched, _ = _task_grad(ste=True, upstream=0.25 / torch.linspace(-1, 1, 16))
    assert torch.allclose(stretched.grad, torch.full((16,), 0.25))


def test_without_ste_gradient_flows_inside_the_interval():
    torch.manual_seed(1)
    gate = HardConcrete(2000, ste=False, init_keep=0.5).train()
    stretched, z = gate.sample()
    stretched.retain_grad()
    (3.0 * z).sum().backward()
    inside = (stretched.detach() > 0) & (stretched.detach() < 1)
    assert 0 < int(inside.sum()) < 2000
    assert torch.equal(stretched.grad[inside], torch.full((int(inside.sum()),), 3.0))
    assert torch.equal(stretched.grad[~inside], torch.zeros(int((~inside).sum())))


def test_deterministic_mask_count_is_the_rounded_expected_l0():
    torch.manual_seed(3)
    for count in (1, 7, 50, 333):
        gate = HardConcrete(count)
        with torch.no_grad():
            gate.log_alpha.copy_(torch.randn(count) * 3)
        mask = gate.deterministic_mask()
        zeros = round(count - gate.prob_open().sum().item())
        assert int((~mask).sum()) == zeros
        if zeros and zeros < count:  # the kept ones have the largest log alpha
            assert gate.log_alpha[mask].min() >= gate.log_alpha[~mask].max()
        assert torch.equal(gate.eval()(), mask.float())


def test_eval_forward_is_deterministic_and_train_is_not():
    gate = HardConcrete(64, init_keep=0.5)
    assert torch.equal(gate.eval()(), gate.eval()())
    gate.train()
    assert not torch.equal(gate(), gate())


def test_log_alpha_clamp():
    gate = HardConcrete(2, log_alpha_range=(math.log(0.01), math.log(100)))
    with torch.no_grad():
        gate.log_alpha.copy_(torch.tensor([-20.0, 20.0]))
    gate.constrain_()
    assert torch.allclose(gate.log_alpha, torch.tensor([math.log(0.01), math.log(100)]))


@pytest.mark.parametrize("kwargs, name", [
    ({"beta": 0.0}, "beta"), ({"beta": -1.0}, "beta"),
    ({"gamma": 0.0}, "gamma"), ({"gamma": 0.1}, "gamma"),
    ({"zeta": 1.0}, "zeta"), ({"zeta": 0.5}, "zeta"),
    ({"init_keep": 0.0}, "init_keep"), ({"init_keep": 1.0}, "init_keep"),
    ({"noise_form": "gumbel"}, "noise_form"),
    ({"log_alpha_range": (1.0, -1.0)}, "log_alpha_range"),
])
def test_bad_settings_are_named(kwargs, name):
    with pytest.raises(UserInputError, match=name):
        HardConcrete(4, **kwargs)


@pytest.mark.parametrize("count", [0, -3, 2.5, True])
def test_bad_count_is_named(count):
    with pytest.raises(UserInputError, match="count"):
        HardConcrete(count)
    with pytest.raises(UserInputError, match="count"):
        BinarySTE(count)


def test_binary_ste_forward_and_identity_backward():
    gate = BinarySTE(4)
    with torch.no_grad():
        gate.logits.copy_(torch.tensor([1.0, -0.2, 0.0, 3.0]))
    z = gate()
    assert z.tolist() == [1.0, 0.0, 0.0, 1.0]
    (z * torch.tensor([2.0, -3.0, 0.5, 7.0])).sum().backward()
    assert gate.logits.grad.tolist() == [2.0, -3.0, 0.5, 7.0]
    assert gate.deterministic_mask().tolist() == [True, False, False, True]
    assert gate.prob_open()[0].item() == pytest.approx(_sigmoid(1.0))


def test_binary_ste_through_sigmoid():
    gate = BinarySTE(1, init=0.5, through_sigmoid=True)
    gate().sum().backward()
    assert gate.logits.grad.item() == pytest.approx(_sigmoid(0.5) * (1 - _sigmoid(0.5)))
    with pytest.raises(UserInputError, match="init"):
        BinarySTE(2, init=float("nan"))


def test_sample_gradient_is_the_analytic_one():
    log_alpha = torch.tensor([-2.0, 0.0, 1.5, 10.0], dtype=torch.float64,
                             requires_grad=True)
    generator = torch.Generator().manual_seed(0)
    from speechbrain_sparse.pruning.hard_concrete import sample_stretched

    stretched = sample_stretched(log_alpha, BETA, GAMMA, ZETA, generator=generator)
    stretched.sum().backward()
    s = ((stretched.detach() - GAMMA) / (ZETA - GAMMA))
    expected = (ZETA - GAMMA) * s * (1 - s) / BETA
    assert torch.allclose(log_alpha.grad, expected, rtol=1e-6)


def test_fig1_curves_and_file(tmp_path):
    from speechbrain_sparse.reproduction.structured_figures import (
        hard_concrete_curves,
        hard_concrete_figure,
    )

    curves = hard_concrete_curves(samples=500)
    mean_z, mean_s = curves["mean_z"], curves["mean_s_bar"]
    # The same draws at every log α: both means rise monotonically.
    assert all(b >= a for a, b in zip(mean_z, mean_z[1:]))
    assert all(b > a for a, b in zip(mean_s, mean_s[1:]))
    assert mean_s[0] < 0 < mean_z[0] < 0.02 and mean_s[-1] > 1 > mean_z[-1] > 0.98
    shaded = [x for x, flag in zip(curves["log_alpha"], curves["shaded"]) if flag]
    assert shaded[0] == -6.0 and shaded[-1] == 6.0
    assert not any(curves["shaded"][55:66])  # around log α = 0 the gradient flows
    assert min(curves["zero_gradient"]) < 0.4 < max(curves["zero_gradient"])
    path = tmp_path / "figs" / "fig1.png"
    hard_concrete_figure(path, hist_samples=2000)
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in path.parent.iterdir()] == ["fig1.png"]
