"""Tests of exact top-K selection, sweeps and the selection strategies."""

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml

from speechbrain_sparse import selection
from speechbrain_sparse.masks import Coverage, ParameterMask
from speechbrain_sparse.selection import (
    DiffSelection,
    IntersectionSelection,
    MagnitudeSelection,
    RandomSelection,
    UnionSelection,
    select_sweep,
    select_topk,
    topk_flat,
)


def reference_topk(flat, k):
    """Top-k of the order (score descending, index ascending), by a full sort."""
    order = torch.sort(flat, descending=True, stable=True).indices
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask[order[:k]] = True
    return mask


def tiny_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 5), torch.nn.LayerNorm(5), torch.nn.Linear(5, 3)
    )


def expected_count(density, total):
    return int(density * total + 0.5)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 7, 50, 99, 100])
def test_topk_flat_matches_reference_with_ties(seed, k):
    generator = torch.Generator().manual_seed(seed)
    flat = torch.randint(0, 5, (100,), generator=generator).float()
    assert torch.equal(topk_flat(flat, k), reference_topk(flat, k))


@pytest.mark.parametrize("kind", ["ties", "zeros", "continuous"])
def test_topk_flat_large_input_sampled_path(kind):
    n = 4 * selection._SAMPLE_SIZE + 12345
    generator = torch.Generator().manual_seed(1)
    if kind == "ties":
        flat = torch.randint(0, 40, (n,), generator=generator).float()
    elif kind == "zeros":
        flat = torch.zeros(n)
    else:
        flat = torch.rand(n, generator=generator)
    for k in (1, n // 10, n - 1):
        mask = topk_flat(flat, k)
        assert int(mask.count_nonzero()) == k
        assert torch.equal(mask, reference_topk(flat, k))


def test_topk_flat_bracket_miss_falls_back(monkeypatch):
    n = 4 * selection._SAMPLE_SIZE + 1
    flat = torch.rand(n, generator=torch.Generator().manual_seed(2))
    monkeypatch.setattr(selection, "_sample_bracket", lambda flat, k: (0.98, 0.99))
    assert torch.equal(topk_flat(flat, 1000), reference_topk(flat, 1000))


def test_all_zero_scores_give_exactly_k_first_entries():
    scores = {"a": torch.zeros(7), "b": torch.zeros(2, 5)}
    mask = select_topk(scores, density=0.25)  # K = round(4.25) = 4
    assert mask.num_selected() == 4
    assert mask["a"].tolist() == [True] * 4 + [False] * 3
    assert not mask["b"].any()


@pytest.mark.parametrize("density", [0.01, 0.1, 0.33, 0.5, 1.0])
def test_global_density_is_exact(density):
    generator = torch.Generator().manual_seed(3)
    scores = {"a": torch.rand(37, 11, generator=generator), "b": torch.zeros(101)}
    mask = select_topk(scores, density)
    assert mask.num_selected() == expected_count(density, 37 * 11 + 101)
    assert mask.target_density == density


def test_per_tensor_selection():
    generator = torch.Generator().manual_seed(4)
    scores = {"a": torch.rand(30, generator=generator), "b": 100 + torch.rand(70)}
    mask = select_topk(scores, 0.2, per_tensor=True)
    assert mask["a"].sum() == 6 and mask["b"].sum() == 14
    assert select_topk(scores, 0.2)["a"].sum() == 0  # global: b wins everywhere


def test_sweep_is_nested_and_equals_topk():
    generator = torch.Generator().manual_seed(5)
    scores = {
        "a": torch.randint(0, 3, (40,), generator=generator).float(),
        "b": torch.rand(3, 20, generator=generator),
    }
    densities = [round(0.1 * i, 1) for i in range(1, 11)]
    masks = select_sweep(scores, densities)
    assert list(masks) == densities
    previous = None
    for density, mask in masks.items():
        assert mask.num_selected() == expected_count(density, 100)
        assert mask == select_topk(scores, density)
        if previous is not None:
            assert (previous - mask).num_selected() == 0  # previous within mask
        previous = mask


@pytest.mark.parametrize("density", [0, 0.0, -0.1, 1.5, float("nan"), "abc"])
def test_density_out_of_range_is_a_clear_error(density):
    with pytest.raises(ValueError, match="density"):
        select_topk({"a": torch.rand(4)}, density)
    with pytest.raises(ValueError, match="density"):
        MagnitudeSelection(density)


def test_nan_scores_are_rejected():
    with pytest.raises(ValueError, match="'b'.*NaN"):
        select_topk({"a": torch.rand(3), "b": torch.tensor([float("nan")])}, 0.5)


def test_strategies_give_exact_densities_and_metadata():
    model = tiny_model()
    total = sum(p.numel() for p in model.parameters())
    pretrained = {n: p.detach().clone() for n, p in model.named_parameters()}
    finetuned = {n: t + 0.1 * torch.randn(t.shape) for n, t in pretrained.items()}
    strategies = {
        "topk": MagnitudeSelection(0.2),
        "diff": DiffSelection(0.3, finetuned_state=finetuned),
        "random": RandomSelection(0.1, seed=7),
    }
    for method, strategy in strategies.items():
        mask = strategy.select(model, pretrained_state=pretrained)
        density = strategy.density
        assert mask.num_selected() == expected_count(density, total), method
        assert mask.method == method and mask.options["density"] == density
        assert list(mask) == [n for n, _ in model.named_parameters()]
    diff, topk = strategies["diff"], strategies["topk"]
    union = UnionSelection(diff, topk).select(model)
    both = IntersectionSelection(diff, topk).select(model)
    a, b = diff.select(model), topk.select(model)
    assert union == a | b and both == a & b
    assert union.method == "union" and both.method == "intersection"
    assert union.options["a"]["achieved_density"] == expected_count(0.3, total) / total
    assert union.options["b"]["achieved_density"] == expected_count(0.2, total) / total
    assert max(a.num_selected(), b.num_selected()) <= union.num_selected()
    assert both.num_selected() <= min(a.num_selected(), b.num_selected())


def test_random_selection_is_seeded():
    model = tiny_model()
    assert RandomSelection(0.5, seed=1).select(model) == RandomSelection(
        0.5, seed=1
    ).select(model)
    assert RandomSelection(0.5, seed=1).select(model) != RandomSelection(
        0.5, seed=2
    ).select(model)


def test_coverage_restricts_selection():
    model = tiny_model()
    coverage = Coverage(include=["0.*", "2.weight"])
    mask = MagnitudeSelection(0.5, coverage=coverage).select(model)
    assert list(mask) == ["0.weight", "0.bias", "2.weight"]
    assert mask.num_selected() == expected_count(0.5, 30 + 5 + 15)


def test_strategies_build_from_hyperpyyaml(tmp_path):
    model = tiny_model()
    finetuned = {n: p.detach() + 0.01 for n, p in model.named_parameters()}
    torch.save(finetuned, tmp_path / "finetuned.ckpt")
    yaml = f"""
    strategy: !new:speechbrain_sparse.selection.UnionSelection
        first: !new:speechbrain_sparse.selection.DiffSelection
            density: 0.3
            finetuned_checkpoint: {tmp_path / "finetuned.ckpt"}
        second: !new:speechbrain_sparse.selection.MagnitudeSelection
            density: 0.1
            coverage: !new:speechbrain_sparse.masks.Coverage
                exclude: ["1.*"]
    """
    strategy = load_hyperpyyaml(yaml)["strategy"]
    with pytest.raises(ValueError, match="cover different parameters"):
        strategy.select(model)  # the two coverages differ
    strategy.second.coverage = Coverage()
    mask = strategy.select(model)
    assert mask.options["a"]["options"]["finetuned_checkpoint"].endswith(
        "finetuned.ckpt"
    )
    mask.save(tmp_path / "m.pt")
    assert ParameterMask.load(tmp_path / "m.pt", model=model).method == "union"
