"""One-shot layer-wise OBS pruning of one weight matrix (SparseWAV, eqs. 1-3).

:func:`prune_matrix` solves eq. 2 of the SparseWAV paper approximately for one
``[out, in]`` weight ``W`` and the Hessian ``H = 2 X Xᵀ / n`` of its inputs
(:class:`~speechbrain_sparse.pruning.hessian.HessianAccumulator`): it zeroes
exactly ``round(s * numel)`` entries and updates the survivors to compensate,
with the sequential, lazily batched OBS scheme of SparseGPT:

* Columns (input features) are processed left to right. Pruning ``w_ip`` changes
  the later columns of row ``i`` by the OBS update of eq. 1 restricted to them,
  ``δ = -(w_ip / [H_F⁻¹]_pp) [H_F⁻¹]_{p,:}`` with ``F = {p, p+1, ...}`` the
  columns not fixed yet. All rows share ``H``, so one upper Cholesky factor
  ``U`` of ``H⁻¹`` (``H⁻¹ = UᵀU``) serves them all: ``[H_F⁻¹]_pp = U_pp²`` and
  the update is ``-(w_ip / U_pp) U_{p,p:}``. Columns left of ``p`` are final, so
  "optimal" means optimal given them (the price of sharing one order across rows).
* The mask is chosen per block of ``block_size`` columns, from the weights as the
  earlier blocks left them (adaptive mask selection), with the saliency
  ``w²/[H_F⁻¹]_pp`` (eq. 1, ``saliency="obs"``) or the paper's improved saliency
  ``|w·G| + w²/[H_F⁻¹]_pp`` (eq. 3, ``saliency="improved"``). Updates inside a
  block are applied column by column; those to later blocks once per block.
* Exact per-matrix sparsity: the ``K = round(s * numel)`` pruned entries are
  spread over the blocks in proportion to their free entries (cumulative
  rounding, so the counts add up to ``K``); inside a block the ``k_b`` lowest
  saliencies are pruned across all rows (ties: lower row-major index first).
  There is no per-row quota: rows that matter less give up more weights.

Scaling of the improved saliency. The paper writes ``G = 2 (Ŵ - W) X Xᵀ`` and
``H = 2 X Xᵀ``; with our ``H = 2 X Xᵀ / n`` we use ``G = (Ŵ - W) H``, the
gradient of the per-frame loss ``(1/n) ||W X - Ŵ X||²``. Both terms of eq. 3 are
then the paper's divided by ``n``, so the ranking is the paper's. ``G`` uses the
undamped ``H`` (it is the gradient of the true loss). Note that after the
compensating updates the not-yet-processed columns are the exact least-squares
optimum *for the damped* ``H + λI``, so on them ``G = -λ (Ŵ - W)``: the
first-order term is zero without dampening and small with it, as the modest gain
of the paper's Table 1 suggests. ``tests/unit/test_obs.py`` checks this identity.

Dampening and failures: ``damp * mean(diag H)`` is added to the diagonal. Inputs
that are always zero (dead columns, ``H_pp = 0``) get the mean live diagonal, no
update, and saliency 0 (pruning them costs nothing on the calibration data). If
the Cholesky factorisation fails or is numerically singular, the dampening is
multiplied by 10 up to ``max_damp_retries`` times; if it still fails (e.g. a
non-finite ``H``), the matrix is magnitude-pruned without updates. Either case
is reported in :attr:`ObsResult.fallback` and logged as a warning. No global
torch flag is changed. Computation is in fp32, or fp64 if ``weight`` or
``hessian`` is fp64, on the weight's device.

Example
-------
>>> torch.manual_seed(0) and None
>>> inputs = torch.randn(512, 64) @ torch.randn(64, 64)  # correlated features
>>> hessian = 2 * inputs.T @ inputs / 512
>>> weight = torch.randn(32, 64)
>>> result = prune_matrix(weight, hessian, sparsity=0.5, block_size=16)
>>> int((result.weight == 0).sum()), result.sparsity, result.fallback
(1024, 0.5, None)
>>> from speechbrain_sparse.pruning.reconstruction import (
...     relative_reconstruction_error)
>>> obs = relative_reconstruction_error(weight, result.weight, hessian)
>>> magnitude = magnitude_prune_matrix(weight, 0.5).weight
>>> obs < relative_reconstruction_error(weight, magnitude, hessian)
True

Authors
 * speechbrain_sparse contributors 2026
"""

import logging
import math
from dataclasses import dataclass
from typing import Optional

import torch

logger = logging.getLogger(__name__)

SALIENCIES = ("obs", "improved")
_INNER_BLOCK = 16  # columns updated one by one before a matmul catches the rest up


@dataclass
class ObsResult:
    """What pruning one matrix gives.

    Arguments
    ---------
    weight : torch.Tensor
        The pruned, compensated weight (dtype and device of the input); pruned
        entries are exactly zero.
    mask : torch.BoolTensor
        True = kept (the convention of ``ParameterMask`` and ``prune`` mode).
    sparsity : float
        Achieved sparsity: the fraction of False entries of ``mask``.
    fallback : str, optional
        None when the OBS solve ran as asked; otherwise what was done instead
        (more dampening, or magnitude pruning without updates) and why.
    dampening : float, optional
        The relative dampening actually used (None for magnitude pruning).
    saliency : torch.Tensor, optional
        With ``return_saliency=True``: each entry's saliency when its block's
        mask was chosen (in the computation dtype, fp32 or fp64; entries pruned
        by ``must_prune`` are ``-inf``).
    """

    weight: torch.Tensor
    mask: torch.Tensor
    sparsity: float
    fallback: Optional[str] = None
    dampening: Optional[float] = None
    saliency: Optional[torch.Tensor] = None


def pruned_count(numel, sparsity):
    """Returns how many of ``numel`` entries sparsity ``s`` prunes: round(s·numel).

    Halves round up, as :func:`speechbrain_sparse.topk.count_for_density`.

    Example
    -------
    >>> pruned_count(10, 0.25), pruned_count(10, 0.24), pruned_count(7, 1.0)
    (3, 2, 7)
    """
    sparsity = float(sparsity)
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity!r}")
    return min(int(numel), int(math.floor(sparsity * numel + 0.5)))


def prune_matrix(weight, hessian, sparsity, saliency="improved", block_size=128,
                 damp=0.01, *, num_pruned=None, must_prune=None,
                 max_damp_retries=4, return_saliency=False):
    """Prunes ``weight`` to exactly ``round(sparsity * numel)`` zeros with OBS updates.

    Arguments
    ---------
    weight : torch.Tensor
        ``[out_features, in_features]``; not modified.
    hessian : torch.Tensor
        ``[in_features, in_features]``, ``2 X Xᵀ / n`` of the layer's inputs.
    sparsity : float
        Fraction of entries to prune, in [0, 1].
    saliency : str
        ``"obs"`` (eq. 1) or ``"improved"`` (eq. 3, adds ``|w·G|``).
    block_size : int
        Columns per lazily updated block (and per mask selection).
    damp : float
        Dampening, as a fraction of the mean diagonal of ``H``.
    num_pruned : int, optional
        Prune exactly this many entries instead of ``round(sparsity * numel)``
        (e.g. counts from ``mixed_sparsity.allocate_prune_counts``).
    must_prune : torch.BoolTensor, optional
        Entries that are pruned whatever their saliency (e.g. the zeros of an
        earlier round of progressive pruning); they count toward the total.
    max_damp_retries : int
        How many times the dampening is multiplied by 10 after a failed
        Cholesky factorisation before falling back to magnitude pruning.
    return_saliency : bool
        Also return the saliency each entry was ranked by.

    Returns
    -------
    ObsResult

    Example
    -------
    >>> weight = torch.tensor([[1.0, -2.0, 0.5, 3.0]])
    >>> result = prune_matrix(weight, torch.eye(4), sparsity=0.5, damp=0.0)
    >>> result.weight, result.mask.tolist()
    (tensor([[ 0., -2.,  0.,  3.]]), [[False, True, False, True]])
    """
    if saliency not in SALIENCIES:
        raise ValueError(f"saliency must be one of {SALIENCIES}, got {saliency!r}")
    if weight.dim() != 2:
        raise ValueError(f"weight must be 2-D [out, in], got {tuple(weight.shape)}")
    rows, cols = weight.shape
    if tuple(hessian.shape) != (cols, cols):
        raise ValueError(f"hessian must be [{cols}, {cols}] for a weight of shape "
                         f"{tuple(weight.shape)}, got {tuple(hessian.shape)}")
    if int(block_size) < 1 or damp < 0:
        raise ValueError("block_size must be >= 1 and damp >= 0")
    target = _target_count(weight, sparsity, num_pruned)
    forced = _check_forced(must_prune, weight, target)
    device = weight.device
    dtype = torch.promote_types(torch.float32,
                                torch.promote_types(weight.dtype, hessian.dtype))
    original = weight.detach().to(device, dtype)
    if target == 0 or target == weight.numel():
        keep = torch.full(weight.shape, target == 0, dtype=torch.bool, device=device)
        return _result(weight, original * keep, keep, None, damp, None)
    hessian = hessian.detach().to(device, dtype)
    hessian = (hessian + hessian.T) / 2
    dead = torch.diagonal(hessian) == 0
    factor, used_damp, problem = _inverse_hessian_factor(
        hessian, dead, damp, max_damp_retries
    )
    if factor is None:
        logger.warning("OBS pruning of a %s matrix: %s", tuple(weight.shape), problem)
        result = magnitude_prune_matrix(weight, num_pruned=target, must_prune=forced)
        result.fallback = problem
        return result
    if problem is not None:
        logger.warning("OBS pruning of a %s matrix: %s", tuple(weight.shape), problem)

    pruned = original.clone()
    keep = torch.ones(rows, cols, dtype=torch.bool, device=device)
    scores_out = torch.empty_like(original) if return_saliency else None
    inverse_diagonal = torch.diagonal(factor) ** 2  # [H_F⁻¹]_pp, F = columns >= p
    bounds, counts = _block_counts(forced, rows, cols, int(block_size), target)
    for (start, stop), count in zip(bounds, counts):
        block = pruned[:, start:stop].clone()
        scores = block**2 / inverse_diagonal[start:stop]
        if saliency == "improved":
            gradient = (pruned - original) @ hessian[:, start:stop]  # G = (Ŵ - W) H
            scores = scores + (block * gradient).abs()
        scores[:, dead[start:stop]] = 0.0
        if forced is not None:
            scores[forced[:, start:stop]] = -math.inf
        block_keep = ~_lowest(scores, count)
        keep[:, start:stop] = block_keep
        if scores_out is not None:
            scores_out[:, start:stop] = scores
        errors = _compensate_block(block, block_keep, factor[start:stop, start:stop])
        pruned[:, start:stop] = block
        pruned[:, stop:] -= errors @ factor[start:stop, stop:]
    return _result(weight, pruned, keep, problem, used_damp, scores_out)


def _target_count(weight, sparsity, num_pruned):
    if num_pruned is None:
        return pruned_count(weight.numel(), sparsity)
    if not 0 <= int(num_pruned) <= weight.numel():
        raise ValueError(f"num_pruned must be in [0, {weight.numel()}], "
                         f"got {num_pruned}")
    return int(num_pruned)


def _check_forced(must_prune, weight, target):
    if must_prune is None:
        return None
    forced = torch.as_tensor(must_prune).to(weight.device, torch.bool)
    if forced.shape != weight.shape:
        raise ValueError(f"must_prune has shape {tuple(forced.shape)}, expected "
                         f"{tuple(weight.shape)}")
    if int(forced.sum()) > target:
        raise ValueError(f"must_prune marks {int(forced.sum())} entries, more than "
                         f"the {target} to prune")
    return forced


def _inverse_hessian_factor(hessian, dead, damp, max_damp_retries):
    """Returns ``(U, damp used, problem)``: ``H⁻¹ = UᵀU``, U upper; U None if failed.

    ``U`` comes from one Cholesky factorisation of ``H`` in reversed index order,
    ``H = R Rᵀ`` with ``R`` upper triangular, as ``U = R⁻¹`` (a triangular
    solve): no explicit inverse is formed. Dead columns get the mean live
    diagonal (1 if all are dead). A factorisation counts as failed if LAPACK
    reports it, if it is not finite, or if a pivot² ``R_pp²`` falls below
    ``n·eps`` of the mean diagonal (numerically singular).
    """
    if not _finite(hessian):
        return None, None, "non-finite Hessian: magnitude pruning without updates"
    hessian = hessian.clone()
    diagonal = torch.diagonal(hessian)
    live = diagonal[~dead]
    diagonal[dead] = live.mean() if live.numel() else 1.0
    mean_diagonal = float(diagonal.mean())
    size = hessian.shape[0]
    identity = torch.eye(size, dtype=hessian.dtype, device=hessian.device)
    tolerance = size * torch.finfo(hessian.dtype).eps * mean_diagonal
    levels = [damp] + [max(damp, 1e-3) * 10**k for k in range(1, max_damp_retries + 1)]
    for level in levels:
        damped = (hessian + level * mean_diagonal * identity).flip(0, 1)
        lower, info = torch.linalg.cholesky_ex(damped)
        upper = lower.flip(0, 1)  # H + λI = R Rᵀ, R upper triangular
        pivots = torch.diagonal(upper)
        if int(info) != 0 or not _finite(pivots) or bool((pivots**2 < tolerance).any()):
            continue
        factor = torch.linalg.solve_triangular(upper, identity, upper=True)
        if not _finite(factor):
            continue
        if level == damp:
            return factor, level, None
        return factor, level, (f"Cholesky failed with damp={damp}; "
                               f"dampening increased to {level:g} x mean diagonal")
    return None, None, (f"Cholesky failed up to damp={levels[-1]:g} x mean diagonal: "
                        "magnitude pruning without updates")


def _finite(tensor):
    """Returns whether all entries are finite (one reduction, no overflow)."""
    return bool(torch.isfinite(tensor.sum(dtype=torch.float64)))


def _block_counts(forced, rows, cols, block_size, target):
    """Returns the column blocks and how many entries each prunes (sum: ``target``).

    Each block prunes its forced entries plus a share of the rest proportional to
    its free entries, by rounding the cumulative share (halves up): no count
    exceeds the block's free entries and the counts add up exactly.
    """
    bounds = [(a, min(a + block_size, cols)) for a in range(0, cols, block_size)]
    fixed = [0 if forced is None else int(forced[:, a:b].sum()) for a, b in bounds]
    free = [rows * (b - a) - f for (a, b), f in zip(bounds, fixed)]
    remaining, total_free = target - sum(fixed), sum(free)
    counts, cumulative, previous = [], 0, 0
    for fixed_count, free_count in zip(fixed, free):
        cumulative += free_count
        share = (2 * remaining * cumulative + total_free) // max(2 * total_free, 1)
        counts.append(fixed_count + share - previous)
        previous = share
    return bounds, counts


def _lowest(scores, count):
    """Returns a bool tensor marking the ``count`` lowest scores (ties: lower index)."""
    flat = scores.reshape(-1)
    chosen = torch.zeros(flat.numel(), dtype=torch.bool, device=scores.device)
    if count >= flat.numel():
        chosen[:] = True
    elif count > 0:
        flat = torch.nan_to_num(flat, nan=math.inf)  # NaN ranks last, not nowhere
        threshold = torch.kthvalue(flat, count).values
        chosen = flat < threshold
        ties = (flat == threshold).nonzero().squeeze(1)
        chosen[ties[: count - int(chosen.sum())]] = True
    return chosen.view(scores.shape)


def _compensate_block(block, block_keep, factor):
    """Prunes a block column by column in place; returns the scaled errors.

    Column ``j``: ``err = (w - q) / U_jj`` with ``q`` the column with its pruned
    entries zeroed, then the later columns of the block get ``-err ⊗ U_{j, j+1:}``.
    A column is final once processed, so the pruned entries are zeroed at the
    end. The errors, times ``U[block, later]``, give the update of later blocks.
    For speed, columns are rows of a transposed copy, and the updates inside the
    block are themselves lazy over chunks of ``_INNER_BLOCK`` columns.
    """
    pruned = ~block_keep
    scale = pruned.T.to(block.dtype) / torch.diagonal(factor)[:, None]
    columns = block.T.contiguous()
    errors = torch.zeros_like(columns)
    has_pruned = pruned.any(dim=0).tolist()
    width = columns.shape[0]
    for first in range(0, width, _INNER_BLOCK):  # a second, inner level of laziness
        last = min(first + _INNER_BLOCK, width)
        for j in range(first, last):
            if has_pruned[j]:
                torch.mul(columns[j], scale[j], out=errors[j])
                columns[j + 1:last] -= factor[j, j + 1:last, None] * errors[j]
        if last < width:
            columns[last:] -= factor[first:last, last:].T @ errors[first:last]
    block.copy_(columns.T).masked_fill_(pruned, 0.0)
    return errors.T


def _result(weight, pruned, keep, fallback, dampening, saliency):
    pruned = pruned.masked_fill(~keep, 0.0).to(weight.dtype)
    sparsity = int((~keep).sum()) / keep.numel()
    return ObsResult(pruned, keep, sparsity, fallback, dampening, saliency)


def magnitude_prune_matrix(weight, sparsity=None, *, num_pruned=None,
                           must_prune=None):
    """Zeroes the ``round(sparsity * numel)`` smallest-magnitude entries, no updates.

    The baseline OBS is compared with; ties go to the lower row-major index.

    Arguments
    ---------
    weight : torch.Tensor
        Any shape; not modified.
    sparsity : float
        Fraction of entries to prune (or give ``num_pruned``).
    num_pruned : int, optional
        Exact number of entries to prune.
    must_prune : torch.BoolTensor, optional
        Entries pruned whatever their magnitude; they count toward the total.

    Returns
    -------
    ObsResult
        ``fallback`` None, ``dampening`` None.

    Example
    -------
    >>> result = magnitude_prune_matrix(torch.tensor([[0.1, -3.0], [2.0, 0.1]]), 0.5)
    >>> result.weight.tolist(), result.sparsity
    ([[0.0, -3.0], [2.0, 0.0]], 0.5)
    """
    if (sparsity is None) == (num_pruned is None):
        raise ValueError("give exactly one of sparsity and num_pruned")
    target = _target_count(weight, sparsity, num_pruned)
    forced = _check_forced(must_prune, weight, target)
    scores = weight.detach().abs().float()
    if forced is not None:
        scores = scores.masked_fill(forced, -math.inf)
    keep = ~_lowest(scores, target)
    return _result(weight, weight.detach().clone(), keep, None, None, None)
