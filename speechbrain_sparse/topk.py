"""Exact top-K: the ``K`` largest importance scores as a parameter mask.

``K = round(density * N)`` entries with the largest scores are selected over the
whole coverage (``N`` covered entries), or per tensor with ``per_tensor=True``.
Ties are broken by flat index (parameter order, then row-major), so equal scores
-- e.g. all-zero diffs of untouched weights -- can never inflate the mask: the
selection is the top-K of the total order (score descending, index ascending),
which also makes masks of increasing density nested.

* :func:`select_topk` -- one density, global or per tensor -> ``ParameterMask``;
* :func:`select_sweep` -- several densities from one sort (nested masks);
* :func:`topk_flat` -- the engine on one flat tensor: exact counts, and on large
  inputs a sampled bracket so only a few candidates are ranked exactly;
* :func:`check_density`, :func:`count_for_density` -- the density contract.

The scores come from :mod:`speechbrain_sparse.scores`; the YAML-built strategies
of :mod:`speechbrain_sparse.selection` call :func:`select_topk`.

Example
-------
>>> scores = {"a": torch.tensor([0.0, 3.0, 1.0]), "b": torch.zeros(2)}
>>> mask = select_topk(scores, density=0.4)
>>> mask["a"].tolist(), mask["b"].tolist()
([False, True, True], [False, False])
"""

import logging
import math

import torch

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.masks import ParameterMask

logger = logging.getLogger(__name__)
_SAMPLE_SIZE = 1 << 18
_CHUNK = 1 << 22

def check_density(density):
    """Returns ``density`` as a float; ValueError unless it is in (0, 1]."""
    try:
        value = float(density)
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 < value <= 1.0:
        raise UserInputError(f"density must be in (0, 1], got {density!r}")
    return value


def count_for_density(density, total):
    """Returns K = round(density * total), rounding halves up."""
    return min(total, int(math.floor(check_density(density) * total + 0.5)))


def topk_flat(flat, k):
    """Returns a bool tensor selecting exactly the ``k`` largest entries of ``flat``.

    Ties are broken by index: of equal scores, the lower flat index wins. On
    large inputs a sorted random sample brackets the k-th largest value; two
    comparison passes find what is surely in (above the bracket) and the few
    candidates inside it, and only those are ranked exactly. If the bracket
    misses, a full exact ranking is used instead (never silently wrong).

    Arguments
    ---------
    flat : torch.Tensor
        1-D float scores without NaN.
    k : int
        How many entries to select, 0 <= k <= numel.

    Returns
    -------
    torch.BoolTensor
        Shape of ``flat``, exactly ``k`` True.

    Example
    -------
    >>> topk_flat(torch.tensor([0.0, 2.0, 0.0, 1.0, 0.0]), 3).tolist()
    [True, True, False, True, False]
    """
    n = flat.numel()
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, {n}], got {k}")
    if k in (0, n):
        return torch.full_like(flat, k == n, dtype=torch.bool)
    bracket = _sample_bracket(flat, k) if n > 4 * _SAMPLE_SIZE else None
    if bracket is not None:
        low, high = bracket
        mask = flat > high  # surely selected
        n_above = int(mask.count_nonzero())
        inside = torch.logical_xor(flat >= low, mask)  # low <= score <= high
        if low == high:  # all candidates tie (e.g. many zero scores)
            if n_above < k <= n_above + int(inside.count_nonzero()):
                return mask.logical_or_(_keep_first(inside, k - n_above))
        else:
            candidates = inside.nonzero().squeeze(1)
            if n_above < k <= n_above + candidates.numel():
                chosen = _rank_candidates(flat[candidates], k - n_above)
                mask[candidates[chosen]] = True
                return mask
        logger.debug("sample bracket missed; ranking all entries")
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask[_rank_candidates(flat, k)] = True
    return mask


def _sample_bracket(flat, k):
    """Returns ``(low, high)`` that very likely bracket the k-th largest value."""
    n = flat.numel()
    generator = torch.Generator().manual_seed(0)
    picks = torch.randint(n, (_SAMPLE_SIZE,), generator=generator)
    sample = flat[picks].sort().values
    position = (n - k) / n * _SAMPLE_SIZE
    margin = 6 * math.sqrt(_SAMPLE_SIZE)  # >= 12 standard deviations
    low_index, high_index = math.floor(position - margin), math.ceil(position + margin)
    low = sample[low_index].item() if low_index >= 0 else -math.inf
    high = sample[high_index].item() if high_index < _SAMPLE_SIZE else math.inf
    return low, high


def _rank_candidates(values, k):
    """Returns the positions of the ``k`` largest ``values``, ties by position."""
    threshold = torch.kthvalue(values, values.numel() - k + 1).values
    above = (values > threshold).nonzero().squeeze(1)
    ties = (values == threshold).nonzero().squeeze(1)
    return torch.cat([above, ties[: k - above.numel()]])


def _keep_first(bools, count):
    """Clears all but the first ``count`` True entries of ``bools`` (in place)."""
    seen = 0
    for start in range(0, bools.numel(), _CHUNK):
        chunk = bools[start : start + _CHUNK]
        found = int(chunk.count_nonzero())
        if seen + found > count:
            cut = chunk.nonzero()[count - seen].item()
            chunk[cut:] = False
            bools[start + _CHUNK :] = False
            break
        seen += found
    return bools


def _flatten(scores):
    """Returns the scores as one 1-D float32 tensor, without copying if possible.

    Scores built by :mod:`speechbrain_sparse.scores` are consecutive views of one
    buffer; those are used in place. NaN scores raise ValueError.
    """
    tensors = [scores[n].detach() for n in scores]
    flat = _shared_buffer(tensors)
    if not tensors:
        flat = torch.zeros(0)
    elif flat is None:
        flat = torch.cat([t.reshape(-1).float().cpu() for t in tensors])
    if not torch.isfinite(flat.sum()):
        for name, tensor in zip(scores, tensors):
            if torch.isnan(tensor).any():
                raise ValueError(f"scores for '{name}' contain NaN")
    return flat


def _shared_buffer(tensors):
    """Returns the 1-D buffer ``tensors`` are consecutive views of, else None."""
    if not tensors or tensors[0].dtype != torch.float32 or tensors[0].is_cuda:
        return None
    storage, offset = tensors[0].untyped_storage(), 0
    for tensor in tensors:
        same = tensor.untyped_storage().data_ptr() == storage.data_ptr()
        if not (same and tensor.is_contiguous() and tensor.dtype == torch.float32
                and tensor.storage_offset() == offset):
            return None
        offset += tensor.numel()
    if offset * 4 != storage.nbytes():
        return None
    return torch.empty(0, dtype=torch.float32).set_(storage, 0, (offset,), (1,))


def _unflatten(flat_mask, scores):
    sizes = [scores[n].numel() for n in scores]
    parts = flat_mask.split(sizes)
    return {name: part.view(scores[name].shape) for name, part in zip(scores, parts)}


def select_topk(scores, density, per_tensor=False, coverage=None, method="scores",
                options=None):
    """Returns the exact top-K mask of ``scores`` at ``density``.

    Arguments
    ---------
    scores : dict
        Name -> float tensor (from :mod:`speechbrain_sparse.scores`).
    density : float
        Fraction of entries to select, in (0, 1].
    per_tensor : bool
        Select ``round(density * numel)`` in each tensor instead of globally.
    coverage : Coverage, optional
        Recorded in the mask (default: all).
    method, options
        Recorded in the mask's metadata.

    Returns
    -------
    ParameterMask
        With exactly K = round(density * N) entries (per tensor: per tensor).
    """
    density = check_density(density)
    selected, total = 0, 0  # exact by construction of topk_flat
    if per_tensor:
        tensors = {}
        for name, score in scores.items():
            flat = _flatten({name: score})
            k = count_for_density(density, flat.numel())
            tensors[name] = topk_flat(flat, k).view(score.shape)
            selected, total = selected + k, total + flat.numel()
    else:
        flat = _flatten(scores)
        selected, total = count_for_density(density, flat.numel()), flat.numel()
        tensors = _unflatten(topk_flat(flat, selected), scores)
    mask = ParameterMask(tensors, coverage, method, options, target_density=density)
    logger.info(
        "%s mask: %d of %d entries, target density %.6f, achieved %.6f",
        method, selected, total, density, selected / max(total, 1),
    )
    return mask


def select_sweep(scores, densities, coverage=None, method="scores", options=None):
    """Returns ``{density: mask}`` for several densities from ONE sort.

    Each mask takes the first K entries of one stable descending sort, so a
    denser mask always contains every sparser one, and each mask equals
    :func:`select_topk` at the same density.

    Example
    -------
    >>> masks = select_sweep({"w": torch.arange(10.0)}, [0.1, 0.5, 1.0])
    >>> [m.num_selected() for m in masks.values()]
    [1, 5, 10]
    """
    checked = sorted({check_density(d) for d in densities})
    flat = _flatten(scores)
    order = torch.sort(flat, descending=True, stable=True).indices
    masks = {}
    for density in checked:
        selected = torch.zeros(flat.numel(), dtype=torch.bool)
        selected[order[: count_for_density(density, flat.numel())]] = True
        masks[density] = ParameterMask(_unflatten(selected, scores), coverage,
                                       method, options, target_density=density)
    return masks
