"""Tests of exact top-K selection and nested sweeps."""

import pytest
import torch

from speechbrain_sparse import topk
from speechbrain_sparse.topk import select_sweep, select_topk, topk_flat


def reference_topk(flat, k):
    """Top-k of the order (score descending, index ascending), by a full sort."""
    order = torch.sort(flat, descending=True, stable=True).indices
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask[order[:k]] = True
    return mask


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
    n = 4 * topk._SAMPLE_SIZE + 12345
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
    n = 4 * topk._SAMPLE_SIZE + 1
    flat = torch.rand(n, generator=torch.Generator().manual_seed(2))
    monkeypatch.setattr(topk, "_sample_bracket", lambda flat, k: (0.98, 0.99))
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


def test_nan_scores_are_rejected():
    with pytest.raises(ValueError, match="'b'.*NaN"):
        select_topk({"a": torch.rand(3), "b": torch.tensor([float("nan")])}, 0.5)
