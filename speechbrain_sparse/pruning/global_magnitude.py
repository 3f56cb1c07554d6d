"""Exact global magnitude ranking: keep the largest ``|θ|`` of all prunable entries.

The one ranking that iterative (IMP/LTH) and adaptive masking share: of the
``N`` entries a :class:`~speechbrain_sparse.masks.Coverage` covers, exactly
``N - round(s·N)`` with the largest ``|θ|`` are kept at sparsity ``s`` -- one
ranking over the whole coverage ("p % of total weights"), not per matrix --
optionally only among candidate entries (the previous round's mask, so IMP
masks are nested; a language's pathway and free zone). Ties go to the lower
flat index (parameter order, then row-major), through the exact top-K engine
:func:`~speechbrain_sparse.topk.topk_flat`.

* :data:`TRANSFORMER_ASR_COVERAGE` -- the default scope: the attention q, k, v
  and out projections (self and cross) and the FFN Linears of a SpeechBrain
  ``TransformerASR`` (the matrices of
  :class:`~speechbrain_sparse.pruning.model_families.TransformerASRFamily`);
* :func:`magnitude_mask` -- the mask (the model is not changed);
* :func:`prune_by_magnitude` -- the mask, and the other entries set to +0.0;
* :func:`zero_pruned` -- sets the entries outside any mask to +0.0;
* :class:`Workspace` -- a buffer reused between re-ranks of a large model;
* :func:`mask_state`, :func:`mask_from_state` -- a mask as plain containers
  for checkpoints.

Example
-------
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
>>> mask = prune_by_magnitude(model, 0.25, Coverage(include=["*.weight"]))
>>> mask.num_selected(), mask.numel(), mask.options["level"]
(18, 24, 0.25)

Authors
 * speechbrain_sparse contributors 2026
"""

import logging

import torch

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.masks import Coverage, ParameterMask
from speechbrain_sparse.parameter_names import canonical_named_parameters
from speechbrain_sparse.pruning.obs import pruned_count
from speechbrain_sparse.pruning.schedules import check_level
from speechbrain_sparse.topk import topk_flat

logger = logging.getLogger(__name__)

#: The TransformerASR matrices pruned by default: attention q/k/v (the packed
#: ``in_proj_weight``) and out projections of encoder self-attention
#: (``self_att``), decoder self-attention (``self_attn``) and cross-attention
#: (``multihead_attn``), and the two FFN Linears. Front-end, embeddings,
#: biases, norms and output heads stay dense.
TRANSFORMER_ASR_COVERAGE = Coverage(include=[
    "*.layers.*.att.in_proj_weight",
    "*.layers.*.att.out_proj.weight",
    "*.layers.*.pos_ffn.ffn.0.weight",
    "*.layers.*.pos_ffn.ffn.3.weight",
])


def prunable_parameters(model, coverage):
    """Returns ``{canonical name: parameter}`` of ``model`` that ``coverage`` covers.

    Raises UserInputError naming the coverage if it covers nothing.
    """
    params = {n: p for n, p in canonical_named_parameters(model).items()
              if coverage.covers(n)}
    if not params:
        raise UserInputError(f"coverage {coverage} covers no parameter of the model")
    return params


def magnitude_mask(model, level, coverage=TRANSFORMER_ASR_COVERAGE, candidates=None,
                   method="magnitude", options=None, workspace=None):
    """Returns the exact global magnitude mask of ``model`` at sparsity ``level``.

    Of the ``N`` covered entries, the ``N - round(level·N)`` with the largest
    ``|θ|`` are kept (True); ties go to the lower flat index (the exact top-K
    engine :func:`~speechbrain_sparse.topk.topk_flat`, one ranking over all
    covered entries). The model is not changed.

    Arguments
    ---------
    model : torch.nn.Module
        The model whose current weights are ranked.
    level : float
        Sparsity in [0, 1): the fraction of the ``N`` entries pruned.
    coverage : Coverage
        The prunable parameters (default: :data:`TRANSFORMER_ASR_COVERAGE`).
    candidates : Mapping[str, torch.BoolTensor], optional
        Only these entries may be kept (e.g. the previous round's mask, so
        masks are nested); the count still refers to all ``N`` entries.
    method, options
        Recorded in the mask.
    workspace : Workspace, optional
        A buffer kept between calls (re-ranks of a large model are faster).

    Returns
    -------
    ParameterMask
        Exactly ``N - round(level·N)`` entries selected.

    Example
    -------
    >>> lin = torch.nn.Linear(3, 1)
    >>> with torch.no_grad():
    ...     _ = lin.weight.copy_(torch.tensor([[0.5, -2.0, 1.0]]))
    >>> cov = Coverage(include=["weight"])
    >>> magnitude_mask(lin, 0.34, cov)["weight"].tolist()
    [[False, True, True]]
    >>> magnitude_mask(lin, 0.34, cov, candidates={"weight": torch.tensor(
    ...     [[True, False, True]])})["weight"].tolist()
    [[True, False, True]]
    """
    level = check_level(level, "level")
    params, keep = _rank(model, level, coverage, candidates, workspace)
    return _as_mask(params, keep, level, coverage, method, options)


def prune_by_magnitude(model, level, coverage=TRANSFORMER_ASR_COVERAGE,
                       candidates=None, method="magnitude", options=None,
                       workspace=None):
    """:func:`magnitude_mask`, then the pruned entries of ``model`` set to +0.0.

    The same as ``zero_pruned(model, magnitude_mask(...))`` with fewer
    passes over the weights (the flat selection is turned into 0/1 factors
    in one operation). Arguments and result as :func:`magnitude_mask`.

    Example
    -------
    >>> lin = torch.nn.Linear(4, 2)
    >>> mask = prune_by_magnitude(lin, 0.5, Coverage(include=["weight"]))
    >>> mask.num_selected(), int((lin.weight == 0).sum())
    (4, 4)
    """
    level = check_level(level, "level")
    params, keep = _rank(model, level, coverage, candidates, workspace)
    ones = (workspace or Workspace()).get(keep.numel())
    ones.copy_(keep)
    zero, offset = torch.zeros(()), 0
    with torch.no_grad():
        for param in params.values():
            count = param.numel()
            if _fast(param):
                factors = ones[offset : offset + count].view(param.shape)
                torch.addcmul(zero, param, factors, out=param)  # 0 + θ·m: +0.0
            else:
                pruned = ~keep[offset : offset + count].view(param.shape)
                param.masked_fill_(pruned.to(param.device), 0.0)
            offset += count
    return _as_mask(params, keep, level, coverage, method, options)


def _rank(model, level, coverage, candidates, workspace):
    """Returns the covered parameters and the flat bool selection (top-K ``|θ|``)."""
    params = prunable_parameters(model, coverage)
    total = sum(p.numel() for p in params.values())
    keep = total - pruned_count(total, level)
    flat = (workspace or Workspace()).get(total)
    offset = 0
    for name, param in params.items():
        view = flat[offset : offset + param.numel()].view(param.shape)
        if _fast(param):
            torch.abs(param.detach(), out=view)  # one pass, no temporary
        else:
            view.copy_(param.detach().abs())
        if candidates is not None:
            view.masked_fill_(~_candidate_tensor(candidates, name, view.shape), -1.0)
        offset += param.numel()
    if not torch.isfinite(flat.sum()):
        for name, param in params.items():
            if torch.isnan(param).any():
                raise ValueError(f"parameter '{name}' contains NaN")
    if candidates is not None:
        available = int((flat >= 0).count_nonzero())  # -1: not a candidate
        if keep > available:
            raise UserInputError(
                f"level {level}: {keep} of {total} entries must be kept but only "
                f"{available} are candidates")
    return params, topk_flat(flat, keep)


def _as_mask(params, keep, level, coverage, method, options):
    views, offset = {}, 0
    for name, param in params.items():
        views[name] = keep[offset : offset + param.numel()].view(param.shape)
        offset += param.numel()
    options = dict(options or {}, level=float(level))
    logger.debug("%s mask: %d of %d entries kept (sparsity %.6f)", method,
                 int(keep.count_nonzero()), keep.numel(), level)
    return ParameterMask(views, coverage, method, options, target_density=1 - level)


def _candidate_tensor(candidates, name, shape):
    if name not in candidates:
        raise UserInputError(f"candidates: no entry for prunable parameter '{name}'")
    allowed = torch.as_tensor(candidates[name]).cpu()
    if tuple(allowed.shape) != tuple(shape) or allowed.dtype != torch.bool:
        raise UserInputError(
            f"candidates: '{name}' must be a bool tensor of shape {tuple(shape)}, "
            f"got {allowed.dtype} {tuple(allowed.shape)}")
    return allowed


class Workspace:
    """A float32 buffer reused across re-ranks.

    A fresh 350 MB buffer per re-rank of an 87.5 M-entry model costs more in
    page faults than the ranking pass itself; an
    :class:`~speechbrain_sparse.pruning.adaptive.AdaptiveMasker` keeps one.
    Not part of any checkpoint.

    Example
    -------
    >>> workspace = Workspace()
    >>> workspace.get(4) is workspace.get(4), workspace.get(5).numel()
    (True, 5)
    """

    def __init__(self):
        self.tensor = None

    def get(self, numel):
        """Returns a float32 CPU tensor of exactly ``numel`` entries (reused)."""
        if self.tensor is None or self.tensor.numel() != numel:
            self.tensor = None  # free the old one first
            self.tensor = torch.empty(numel, dtype=torch.float32)
        return self.tensor


def _fast(param):
    return param.device.type == "cpu" and param.dtype == torch.float32


@torch.no_grad()
def zero_pruned(model, mask):
    """Sets every entry of ``model`` outside ``mask`` (False) to exactly +0.0.

    Example
    -------
    >>> lin = torch.nn.Linear(2, 1)
    >>> with torch.no_grad():
    ...     _ = lin.weight.copy_(torch.tensor([[-1.0, 2.0]]))
    >>> zero_pruned(lin, {"weight": torch.tensor([[False, True]])})
    >>> lin.weight.tolist(), torch.signbit(lin.weight).tolist()
    ([[0.0, 2.0]], [[False, False]])
    """
    params = canonical_named_parameters(model)
    for name, keep in mask.items():
        param = params[name]
        param.masked_fill_(~keep.to(param.device), 0.0)


def mask_state(mask):
    """Returns ``mask`` as plain containers for ``torch.save`` (None stays None)."""
    if mask is None:
        return None
    return {"tensors": dict(mask.items()), "coverage": mask.coverage.to_dict(),
            "method": mask.method, "options": mask.options,
            "target_density": mask.target_density}


def mask_from_state(state):
    """Returns the :class:`ParameterMask` :func:`mask_state` describes."""
    if state is None:
        return None
    return ParameterMask(state["tensors"], Coverage(**state["coverage"]),
                         state["method"], state["options"], state["target_density"])
