"""The lower-triangular, column-blocked Hessian accumulation equals the full product."""

import pytest
import torch

from speechbrain_sparse.pruning.hessian import HessianAccumulator
from speechbrain_sparse.pruning.reconstruction import relative_reconstruction_error


@pytest.mark.parametrize("features,blocks", [(7, 1), (7, 3), (10, 4), (5, 8)])
def test_column_blocks_give_the_full_symmetric_hessian(features, blocks):
    generator = torch.Generator().manual_seed(features)
    batches = [torch.randn(2, 6, features, generator=generator, dtype=torch.float64)
               for _ in range(3)]
    masks = [torch.rand(2, 6, generator=generator) > 0.3 for _ in batches]
    accumulator = HessianAccumulator(features, dtype=torch.float64,
                                     column_blocks=blocks)
    for inputs, mask in zip(batches, masks):
        accumulator.add(inputs, frame_mask=mask)
    frames = torch.cat([x[m] for x, m in zip(batches, masks)])
    expected = 2 * frames.T @ frames / frames.shape[0]
    hessian = accumulator.hessian()
    assert torch.allclose(hessian, expected, atol=1e-12)
    assert torch.equal(hessian, hessian.T)
    assert accumulator.num_frames == frames.shape[0]


def test_column_blocks_must_be_positive():
    with pytest.raises(ValueError, match="column_blocks"):
        HessianAccumulator(4, column_blocks=0)


def test_fp32_reconstruction_error_matches_fp64():
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(8, 16, generator=generator)
    pruned = weight * (torch.rand(8, 16, generator=generator) > 0.5)
    inputs = torch.randn(100, 16, generator=generator)
    hessian = 2 * inputs.T @ inputs / 100
    exact = relative_reconstruction_error(weight, pruned, inputs, kind="inputs")
    fast = relative_reconstruction_error(weight, pruned, hessian, kind="hessian",
                                         dtype=torch.float32)
    assert fast == pytest.approx(exact, rel=1e-5)
