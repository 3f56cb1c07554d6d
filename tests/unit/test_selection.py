"""Tests of the selection strategies (score, then exact top-K)."""

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml

from speechbrain_sparse.masks import Coverage, ParameterMask
from speechbrain_sparse.selection import (
    DiffSelection,
    IntersectionSelection,
    MagnitudeSelection,
    RandomSelection,
    UnionSelection,
)


def tiny_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 5), torch.nn.LayerNorm(5), torch.nn.Linear(5, 3)
    )


def expected_count(density, total):
    return int(density * total + 0.5)


@pytest.mark.parametrize("density", [0, 0.0, -0.1, 1.5, float("nan"), "abc"])
def test_density_out_of_range_is_a_clear_error(density):
    with pytest.raises(ValueError, match="density"):
        MagnitudeSelection(density)


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
