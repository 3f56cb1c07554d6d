"""Layer-wise OBS pruning: optimality of single steps, exact sparsity, the improved
saliency's first-order term, dampening fallbacks, the Hessian accumulator."""

import logging

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from speechbrain_sparse.pruning.hessian import HessianAccumulator
from speechbrain_sparse.pruning.obs import (
    magnitude_prune_matrix,
    prune_matrix,
    pruned_count,
)
from speechbrain_sparse.pruning.reconstruction import relative_reconstruction_error

F64 = torch.float64


def correlated_inputs(frames, features, seed=0, dtype=torch.float32):
    """Frames with correlated features of very different scales (like activations)."""
    gen = torch.Generator().manual_seed(seed)
    mixing = torch.randn(features, features, generator=gen) / features**0.5
    mixing += torch.eye(features)
    scales = torch.exp(torch.randn(features, generator=gen))
    inputs = torch.randn(frames, features, generator=gen) @ mixing * scales
    return inputs.to(dtype)


def hessian_of(inputs):
    return 2 * inputs.T @ inputs / inputs.shape[0]


def constrained_optimum(weight_row, inputs, pruned_column):
    """Brute force: min ||X (w - ŵ)||² with ŵ_q = 0 and the columns left of q fixed.

    Returns (ŵ, per-frame loss (1/n)||X (w - ŵ)||²), by least squares on X.
    """
    q = pruned_column
    later = list(range(q + 1, weight_row.numel()))
    optimum = weight_row.clone()
    optimum[q] = 0.0
    if later:
        # X[:, q] w_q + X[:, later] (w - ŵ)_later = residual, minimised over ŵ_later.
        target = inputs[:, q : q + 1] * weight_row[q]
        solution = torch.linalg.lstsq(inputs[:, later], target).solution.squeeze(1)
        optimum[later] = weight_row[later] + solution
    loss = (inputs @ (weight_row - optimum)).square().sum() / inputs.shape[0]
    return optimum, float(loss)


def test_single_removal_is_the_brute_force_optimum():
    inputs = correlated_inputs(64, 8, dtype=F64)
    hessian = hessian_of(inputs)
    weight = torch.randn(1, 8, generator=torch.Generator().manual_seed(1), dtype=F64)
    result = prune_matrix(weight, hessian, 0.0, saliency="obs", damp=0.0,
                          num_pruned=1, return_saliency=True)
    candidates = [constrained_optimum(weight[0], inputs, q) for q in range(8)]
    losses = torch.tensor([loss for _, loss in candidates], dtype=F64)
    # The OBS saliency w²/[H_F⁻¹]_pp is twice each candidate's exact loss increase,
    assert torch.allclose(result.saliency[0].double(), 2 * losses, rtol=1e-5)
    # so the chosen weight is the one whose removal costs least,
    chosen = int(losses.argmin())
    assert (~result.mask[0]).nonzero().flatten().tolist() == [chosen]
    # and the update is the least-squares optimum with that weight forced to zero.
    assert torch.allclose(result.weight[0], candidates[chosen][0], atol=1e-10)
    error = relative_reconstruction_error(weight, result.weight, inputs)
    reference = float((inputs @ weight[0]).square().sum()) / inputs.shape[0]
    assert error == pytest.approx(float(losses.min()) / reference, rel=1e-8)


def test_first_column_update_is_the_unrestricted_obs_update():
    """With nothing to its left, a pruned weight's update is eq. 1 of the paper."""
    inputs = correlated_inputs(64, 6, dtype=F64)
    hessian = hessian_of(inputs)
    weight = torch.randn(3, 6, generator=torch.Generator().manual_seed(2), dtype=F64)
    forced = torch.zeros(3, 6, dtype=torch.bool)
    forced[1, 0] = True
    result = prune_matrix(weight, hessian, 0.0, num_pruned=1, must_prune=forced,
                          damp=0.0)
    inverse = torch.linalg.inv(hessian)
    expected = weight.clone()
    expected[1] -= weight[1, 0] / inverse[0, 0] * inverse[:, 0]
    assert result.weight[1, 0] == 0.0
    assert torch.allclose(result.weight, expected, atol=1e-10)


def test_lazy_block_updates_do_not_change_the_result():
    """With the mask fixed, the block size only reorders the same arithmetic."""
    inputs = correlated_inputs(256, 40, dtype=F64)
    weight = torch.randn(7, 40, generator=torch.Generator().manual_seed(3), dtype=F64)
    mask = magnitude_prune_matrix(weight, 0.6).mask
    results = [
        prune_matrix(weight, hessian_of(inputs), 0.6, must_prune=~mask,
                     block_size=size).weight
        for size in (1, 3, 16, 17, 40, 128)
    ]
    for other in results[1:]:
        assert torch.allclose(results[0], other, atol=1e-10)


@pytest.mark.parametrize("saliency", ["obs", "improved"])
def test_exact_per_matrix_sparsity(saliency):
    gen = torch.Generator().manual_seed(4)
    for rows, cols in [(1, 1), (1, 7), (7, 1), (5, 13), (33, 70), (16, 200)]:
        inputs = torch.randn(3 * cols + 2, cols, generator=gen)
        hessian = hessian_of(inputs)
        weight = torch.randn(rows, cols, generator=gen)
        before_w, before_h = weight.clone(), hessian.clone()
        for sparsity in (0.0, 0.1, 1 / 3, 0.5, 0.9, 1.0):
            for block_size in (1, 16, 128) if cols < 20 else (16, 128):
                result = prune_matrix(weight, hessian, sparsity, saliency=saliency,
                                      block_size=block_size)
                expected = pruned_count(weight.numel(), sparsity)
                assert int((~result.mask).sum()) == expected
                assert result.sparsity == expected / weight.numel()
                assert torch.all(result.weight[~result.mask] == 0)
                assert result.weight.dtype == weight.dtype
                assert result.fallback is None
        assert torch.equal(weight, before_w) and torch.equal(hessian, before_h)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 9), cols=st.integers(1, 40), block_size=st.integers(1, 48),
       sparsity=st.floats(0.0, 1.0), forced_fraction=st.floats(0.0, 1.0),
       seed=st.integers(0, 2**16))
def test_exact_count_with_forced_entries(rows, cols, block_size, sparsity,
                                         forced_fraction, seed):
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(rows, cols, generator=gen)
    hessian = hessian_of(torch.randn(2 * cols, cols, generator=gen))
    target = pruned_count(weight.numel(), sparsity)
    forced = torch.zeros(weight.numel(), dtype=torch.bool)
    forced[torch.randperm(weight.numel(), generator=gen)[: int(forced_fraction
                                                               * target)]] = True
    forced = forced.view(rows, cols)
    result = prune_matrix(weight, hessian, sparsity, block_size=block_size,
                          must_prune=forced)
    assert int((~result.mask).sum()) == target
    assert not (result.mask & forced).any()
    assert torch.all(result.weight[~result.mask] == 0)


def test_pruned_count_rounds_halves_up():
    counts = [pruned_count(10, s) for s in (0.0, 0.05, 0.15, 0.5, 1.0)]
    assert counts == [0, 1, 2, 5, 10]
    with pytest.raises(ValueError):
        pruned_count(10, 1.5)


def test_improved_saliency_adds_only_the_first_order_term():
    rows, cols, block = 6, 16, 8
    inputs = correlated_inputs(128, cols, dtype=F64)
    hessian = hessian_of(inputs)
    weight = torch.randn(rows, cols, generator=torch.Generator().manual_seed(5),
                         dtype=F64)
    damp = 0.05
    obs, improved = (
        prune_matrix(weight, hessian, 0.5, saliency=name, block_size=block,
                     damp=damp, return_saliency=True)
        for name in ("obs", "improved")
    )
    # First block: Ŵ = W, so G = 0 and both rank (and prune) the same weights.
    assert torch.equal(obs.saliency[:, :block], improved.saliency[:, :block])
    assert torch.equal(obs.mask[:, :block], improved.mask[:, :block])

    # Second block, recomputed independently: Ŵ = the final first block, and the
    # rest at its least-squares optimum given it (for the damped H used to solve).
    damped = hessian + damp * hessian.diagonal().mean() * torch.eye(cols, dtype=F64)
    fixed, free = slice(0, block), slice(block, cols)
    current = weight.clone()
    current[:, fixed] = improved.weight[:, fixed]
    change = current[:, fixed] - weight[:, fixed]
    inverse_free = torch.linalg.inv(damped[free, free])
    current[:, free] -= change @ damped[fixed, free] @ inverse_free
    gradient = (current - weight) @ hessian  # G = (Ŵ - W) H, H = 2XXᵀ/n
    first_order = (current * gradient).abs()[:, free]
    second_order = torch.stack([
        current[:, p] ** 2 * torch.linalg.inv(damped[p:, p:])[0, 0].reciprocal()
        for p in range(block, cols)
    ], dim=1)
    assert torch.allclose(obs.saliency[:, free].double(), second_order, rtol=1e-4)
    difference = (improved.saliency - obs.saliency)[:, free].double()
    assert torch.allclose(difference, first_order, rtol=1e-3, atol=1e-7)
    assert first_order.max() > 1e-2 * second_order.median()  # the term is there
    # On not-yet-processed columns, G is exactly -λ (Ŵ - W): zero without damping.
    damping = damp * hessian.diagonal().mean()
    assert torch.allclose(gradient[:, free], -damping * (current - weight)[:, free],
                          atol=1e-9)


def test_all_zero_inputs_prune_without_updates():
    weight = torch.randn(4, 6)
    result = prune_matrix(weight, torch.zeros(6, 6), 0.5)
    assert result.fallback is None
    assert int((~result.mask).sum()) == 12
    assert torch.isfinite(result.weight).all()
    assert torch.equal(result.weight[result.mask], weight[result.mask])


def test_dead_inputs_are_pruned_first():
    inputs = correlated_inputs(64, 8)
    inputs[:, [2, 5]] = 0.0
    weight = torch.randn(3, 8) + 10.0  # large weights on the dead inputs too
    result = prune_matrix(weight, hessian_of(inputs), 6 / 24)
    assert not result.mask[:, [2, 5]].any()
    assert result.mask[:, [0, 1, 3, 4, 6, 7]].all()


def test_rank_deficient_hessian_increases_dampening(caplog):
    inputs = correlated_inputs(64, 8, dtype=F64)
    inputs[:, 7] = inputs[:, 3] - 2 * inputs[:, 1]  # rank 7: H is singular
    weight = torch.randn(5, 8, dtype=F64)
    with caplog.at_level(logging.WARNING):
        result = prune_matrix(weight, hessian_of(inputs), 0.5, damp=0.0)
    assert result.fallback is not None and "dampening increased" in result.fallback
    assert result.dampening > 0.0
    assert torch.isfinite(result.weight).all()
    assert int((~result.mask).sum()) == 20
    assert "dampening increased" in caplog.text


@pytest.mark.parametrize("hessian", [-torch.eye(6), torch.full((6, 6), float("nan"))])
def test_hopeless_hessian_falls_back_to_magnitude(hessian, caplog):
    weight = torch.randn(4, 6)
    with caplog.at_level(logging.WARNING):
        result = prune_matrix(weight, hessian, 0.5)
    assert "magnitude" in result.fallback and "magnitude" in caplog.text
    baseline = magnitude_prune_matrix(weight, 0.5)
    assert torch.equal(result.weight, baseline.weight)
    assert torch.equal(result.mask, baseline.mask)


def test_must_prune_keeps_earlier_zeros():
    """Progressive pruning: 50 % then 80 %, the first round's zeros stay zeros."""
    inputs = correlated_inputs(256, 32)
    weight = torch.randn(16, 32)
    first = prune_matrix(weight, hessian_of(inputs), 0.5)
    second = prune_matrix(first.weight, hessian_of(inputs), 0.8, must_prune=~first.mask)
    assert not (second.mask & ~first.mask).any()
    assert int((~second.mask).sum()) == pruned_count(512, 0.8)
    with pytest.raises(ValueError, match="must_prune"):
        prune_matrix(first.weight, hessian_of(inputs), 0.4, must_prune=~first.mask)


def test_obs_error_is_lower_than_magnitude_pruning():
    inputs = correlated_inputs(1024, 256)
    hessian = hessian_of(inputs)
    weight = torch.randn(64, 256, generator=torch.Generator().manual_seed(6))
    for sparsity in (0.5, 0.8):
        magnitude = magnitude_prune_matrix(weight, sparsity).weight
        baseline = relative_reconstruction_error(weight, magnitude, inputs)
        for saliency in ("obs", "improved"):
            pruned = prune_matrix(weight, hessian, sparsity, saliency=saliency).weight
            error = relative_reconstruction_error(weight, pruned, inputs)
            assert error < 0.5 * baseline
            from_hessian = relative_reconstruction_error(weight, pruned, hessian)
            assert from_hessian == pytest.approx(error, rel=1e-4)


def test_magnitude_pruning_is_exact_and_ties_go_to_the_lower_index():
    weight = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0]])
    result = magnitude_prune_matrix(weight, num_pruned=3)
    assert result.mask.tolist() == [[False, False, False], [True, True, True]]
    with pytest.raises(ValueError):
        magnitude_prune_matrix(weight)


def test_argument_errors():
    with pytest.raises(ValueError, match="saliency"):
        prune_matrix(torch.ones(2, 2), torch.eye(2), 0.5, saliency="fisher")
    with pytest.raises(ValueError, match="hessian"):
        prune_matrix(torch.ones(2, 3), torch.eye(2), 0.5)
    with pytest.raises(ValueError, match="sparsity"):
        prune_matrix(torch.ones(2, 2), torch.eye(2), -0.1)


def test_padded_frames_do_not_change_the_hessian():
    gen = torch.Generator().manual_seed(7)
    frames = torch.randn(3, 10, 5, generator=gen)
    lengths = torch.tensor([10, 4, 7])
    real = torch.arange(10)[None, :] < lengths[:, None]
    padded = frames.clone()
    padded[~real] = 1e3 * torch.randn(int((~real).sum()), 5, generator=gen)
    masked = HessianAccumulator(5)
    masked.add(padded, frame_mask=real)
    unpadded = HessianAccumulator(5)
    for i in range(3):  # one batch at a time, only the real frames
        unpadded.add(frames[i, : lengths[i]])
    assert masked.num_frames == unpadded.num_frames == 21
    assert torch.allclose(masked.hessian(), unpadded.hessian(), atol=1e-6)
    assert torch.allclose(masked.hessian(), hessian_of(frames[real]), atol=1e-6)
    with pytest.raises(ValueError, match="frame_mask"):
        masked.add(padded, frame_mask=real[:, :5])
    with pytest.raises(ValueError, match="features"):
        masked.add(torch.ones(2, 4))


def test_hessian_fp64_option_and_empty_accumulator():
    inputs = torch.randn(1000, 4, dtype=F64) * 1e3 + 1e4
    accumulator = HessianAccumulator(4, dtype=F64)
    for chunk in inputs.split(7):
        accumulator.add(chunk.float())
    exact = hessian_of(inputs.float().double())
    assert accumulator.hessian().dtype == F64
    assert torch.allclose(accumulator.hessian(), exact, rtol=1e-12)
    weight = torch.randn(3, 4)
    result = prune_matrix(weight, accumulator.hessian(), 0.5)
    assert result.weight.dtype == torch.float32
    assert torch.equal(HessianAccumulator(3).hessian(), torch.zeros(3, 3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    inputs = correlated_inputs(512, 64)
    weight = torch.randn(32, 64)
    cpu = prune_matrix(weight, hessian_of(inputs), 0.7)
    gpu = prune_matrix(weight.cuda(), hessian_of(inputs).cuda(), 0.7)
    assert gpu.weight.is_cuda and gpu.mask.is_cuda
    assert int((~gpu.mask).sum()) == int((~cpu.mask).sum())
    agreement = (gpu.mask.cpu() == cpu.mask).float().mean()
    assert agreement > 0.99
