"""Mixed sparsity: Hutchinson sensitivities, per-matrix sparsities, exact counts."""

import itertools
import random

import pytest
import torch

from speechbrain_sparse.pruning.mixed_sparsity import (
    allocate_prune_counts,
    allocate_sparsities,
    hutchinson_trace,
)


def weighted_mean(sparsities, sizes):
    total = sum(sizes.values())
    return sum(sparsities[n] * sizes[n] for n in sizes) / total


def random_problem(count, seed):
    rng = random.Random(seed)
    names = [f"layers.{i}.w" for i in range(count)]
    sizes = {n: rng.choice([64 * 64, 64 * 256, 256 * 64, 10, 3]) for n in names}
    sens = {n: rng.lognormvariate(0, 2) for n in names}
    return sens, sizes


@pytest.mark.parametrize("target,alpha", [(0.5, 0.1), (0.8, 0.1), (0.9, 0.1),
                                          (0.95, 0.1), (0.05, 0.1), (0.7, 0.3),
                                          (0.3, 0.0), (0.0, 0.1)])
def test_weighted_mean_is_the_target_exactly(target, alpha):
    for count, seed in itertools.product((1, 2, 7, 40), range(3)):
        sens, sizes = random_problem(count, seed)
        out = allocate_sparsities(sens, sizes, target, alpha=alpha)
        assert list(out) == list(sens)
        assert weighted_mean(out, sizes) == pytest.approx(target, abs=1e-12)
        assert all(0.0 <= s <= 0.99 for s in out.values())


def test_more_sensitive_matrices_get_lower_sparsity():
    sens, sizes = random_problem(30, seed=5)
    out = allocate_sparsities(sens, sizes, 0.9, alpha=0.1)
    by_sensitivity = sorted(sens, key=lambda n: -sens[n])
    values = [out[n] for n in by_sensitivity]
    assert values == sorted(values)
    assert max(values) == pytest.approx(0.99)  # clipped at max_sparsity


def test_equal_sizes_give_the_papers_progression():
    """Eq. 7 unchanged when sizes are equal and nothing needs clipping."""
    sens = {"a": 0.3, "b": 5.0, "c": 1.0, "d": 2.0, "e": 0.1}
    sizes = dict.fromkeys(sens, 100)
    out = allocate_sparsities(sens, sizes, 0.6, alpha=0.1)
    ranks = {"b": 0, "d": 1, "c": 2, "a": 3, "e": 4}
    for name, rank in ranks.items():
        assert out[name] == pytest.approx(0.5 + rank * 0.2 / 4, abs=1e-12)


def test_ties_are_broken_by_name_whatever_the_dict_order():
    sens = {"b": 1.0, "a": 1.0, "c": 1.0}
    sizes = {"a": 10, "b": 20, "c": 30}
    first = allocate_sparsities(sens, sizes, 0.5)
    for order in itertools.permutations(sens):
        again = allocate_sparsities({n: sens[n] for n in order}, sizes, 0.5)
        assert again == first
    assert first["a"] < first["b"] < first["c"]


def test_clipping_into_the_allowed_range():
    sens = {"a": 3.0, "b": 2.0, "c": 1.0}
    sizes = {"a": 10, "b": 10, "c": 1000}
    low = allocate_sparsities(sens, sizes, 0.05, alpha=0.3)
    assert low["a"] == low["b"] == 0.0  # clipped; the big matrix carries the mean
    assert low["c"] == pytest.approx(0.05 * 1020 / 1000, abs=1e-12)
    high = allocate_sparsities(sens, {"a": 1000, "b": 10, "c": 10}, 0.97, alpha=0.3,
                               max_sparsity=0.98)
    assert high["b"] == high["c"] == 0.98
    assert weighted_mean(high, {"a": 1000, "b": 10, "c": 10}) == pytest.approx(
        0.97, abs=1e-12)


def test_allocation_errors():
    with pytest.raises(ValueError, match="same matrices"):
        allocate_sparsities({"a": 1.0}, {"b": 1}, 0.5)
    with pytest.raises(ValueError, match="target"):
        allocate_sparsities({"a": 1.0}, {"a": 1}, 1.0)
    with pytest.raises(ValueError, match="finite"):
        allocate_sparsities({"a": float("nan")}, {"a": 1}, 0.5)
    assert allocate_sparsities({}, {}, 0.5) == {}
    assert allocate_sparsities({"a": 1.0}, {"a": 7}, 0.5) == {"a": 0.5}


def test_prune_counts_add_up_exactly():
    for count, seed in itertools.product((1, 3, 40), range(3)):
        sens, sizes = random_problem(count, seed)
        sparsities = allocate_sparsities(sens, sizes, 0.8)
        counts = allocate_prune_counts(sparsities, sizes, target=0.8)
        total = sum(sizes.values())
        assert sum(counts.values()) == int(0.8 * total + 0.5)
        for name in sizes:
            assert abs(counts[name] - sparsities[name] * sizes[name]) < 1.0 + 1e-9
            assert 0 <= counts[name] <= sizes[name]


def quadratic_problem():
    """Loss ½ θᵀ A θ over two tensors with cross terms; diag(A) is known."""
    gen = torch.Generator().manual_seed(0)
    root = torch.randn(12, 12, generator=gen, dtype=torch.float64)
    curvature = root @ root.T / 12 + torch.diag(torch.linspace(0.5, 4.0, 12,
                                                               dtype=torch.float64))
    first = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    second = torch.randn(4, dtype=torch.float64, requires_grad=True)

    def loss():
        theta = torch.cat([first.reshape(-1), second])
        return 0.5 * theta @ curvature @ theta

    truth = {"first": float(curvature.diagonal()[:8].mean()),
             "second": float(curvature.diagonal()[8:].mean())}
    return loss, {"first": first, "second": second}, truth


# One probe's relative standard deviation here is about 0.14 (Rademacher) and
# 0.67 (Gaussian); the tolerances are about 4.7 standard deviations of the mean.
@pytest.mark.parametrize("distribution,probes,tolerance",
                         [("rademacher", 500, 0.03), ("gaussian", 1000, 0.10)])
def test_hutchinson_estimates_the_mean_hessian_diagonal(distribution, probes,
                                                        tolerance):
    loss, params, truth = quadratic_problem()
    estimate = hutchinson_trace(loss, params, num_probes=probes,
                                distribution=distribution,
                                generator=torch.Generator().manual_seed(1))
    for name in truth:
        assert estimate[name] == pytest.approx(truth[name], rel=tolerance)
    again = hutchinson_trace(loss, params, num_probes=probes,
                             distribution=distribution,
                             generator=torch.Generator().manual_seed(1))
    assert again == estimate


def test_hutchinson_errors_and_unused_parameters():
    loss, params, _ = quadratic_problem()
    unused = torch.ones(3, requires_grad=True)
    out = hutchinson_trace(loss, {**params, "unused": unused}, num_probes=3)
    assert out["unused"] == 0.0
    with pytest.raises(ValueError, match="distribution"):
        hutchinson_trace(loss, params, distribution="uniform")
    with pytest.raises(ValueError, match="requires_grad|require grad"):
        hutchinson_trace(loss, {"x": torch.ones(2)})


def test_ctc_loss_has_no_double_backward():
    """Why the module docstring sends callers to the NLL or a distillation loss."""
    logits = torch.randn(10, 1, 5, requires_grad=True)

    def ctc():
        return torch.nn.functional.ctc_loss(
            logits.log_softmax(-1), torch.tensor([[1, 2]]), torch.tensor([10]),
            torch.tensor([2]),
        )

    with pytest.raises(RuntimeError, match="ctc_loss_backward"):
        hutchinson_trace(ctc, {"logits": logits}, num_probes=1)
