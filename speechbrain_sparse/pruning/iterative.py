"""Iterative magnitude pruning (IMP) and the lottery-ticket rewind (LTH).

IMP prunes, every ``T`` steps, the smallest-magnitude weights of a set of
prunable matrices until the schedule's level is reached: the ranking is
*global* over all prunable entries ("p % of total weights"), the counts are
exact (after a round at sparsity ``s``, exactly ``round(s·N)`` of the ``N``
prunable entries are zero and pruned) and only entries still kept can be kept,
so the masks of successive rounds are nested. LTH is IMP whose survivors are
then rewound to ``θ0``, the dense pretrained weights
(:class:`LotteryTicketRewind`).

* :data:`TRANSFORMER_ASR_COVERAGE` -- the default scope: the attention q, k, v
  and out projections (self and cross) and the FFN Linears of a SpeechBrain
  ``TransformerASR`` (as :class:`~.model_families.TransformerASRFamily`);
* :func:`magnitude_mask` -- the exact global top-``|θ|`` mask at a level,
  optionally restricted to candidate entries (reused by adaptive masking);
* :func:`zero_pruned` -- sets the entries outside a mask to exactly zero
  (:class:`Workspace`: a buffer reused between re-ranks);
* :class:`LotteryTicketRewind` -- ``θ ← m ⊙ θ0``, refusing ``θ0`` of another model;
* :class:`IterativeMagnitudePruning` -- rounds following a schedule.

Example
-------
>>> from speechbrain_sparse.masks import Coverage
>>> from speechbrain_sparse.pruning.schedules import LinearStepsSchedule
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
>>> imp = IterativeMagnitudePruning(LinearStepsSchedule([0.25, 0.5], 100),
...                                 coverage=Coverage(include=["*.weight"]))
>>> [imp.prune_round(model, s).num_selected() for s in imp.schedule.levels()]
[18, 12]
>>> int((model[0].weight == 0).sum() + (model[1].weight == 0).sum())
12

Authors
 * speechbrain_sparse contributors 2026
"""

import logging
import os
from collections.abc import Mapping

import torch
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.masks import Coverage, ParameterMask
from speechbrain_sparse.parameter_names import (
    canonical_named_parameters,
    canonical_parameter_name,
)
from speechbrain_sparse.pruning.obs import pruned_count
from speechbrain_sparse.pruning.schedules import check_level
from speechbrain_sparse.topk import select_topk

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
    ``|θ|`` are kept (True); ties go to the lower flat index
    (:func:`~speechbrain_sparse.topk.select_topk`). The model is not changed.

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
    params = prunable_parameters(model, coverage)
    total = sum(p.numel() for p in params.values())
    keep = total - pruned_count(total, level)
    buffer = (workspace or Workspace()).get(total)
    scores, offset = {}, 0
    for name, param in params.items():
        view = buffer[offset : offset + param.numel()].view(param.shape)
        if _fast(param):
            torch.abs(param.detach(), out=view)  # one pass, no temporary
        else:
            view.copy_(param.detach().abs())
        scores[name], offset = view, offset + param.numel()
    if candidates is not None:
        available = 0
        for name, view in scores.items():
            allowed = _candidate_tensor(candidates, name, view.shape)
            view.masked_fill_(~allowed, -1.0)  # below every |θ|: never kept
            available += int(allowed.count_nonzero())
        if keep > available:
            raise UserInputError(
                f"level {level}: {keep} of {total} entries must be kept but only "
                f"{available} are candidates")
    options = dict(options or {}, level=level)
    if keep == 0:  # select_topk needs a positive density
        tensors = {n: torch.zeros(v.shape, dtype=torch.bool) for n, v in scores.items()}
        return ParameterMask(tensors, coverage, method, options, target_density=0.0)
    mask = select_topk(scores, keep / total, coverage=coverage, method=method,
                       options=options)
    mask.target_density = 1.0 - level
    return mask


def _candidate_tensor(candidates, name, shape):
    if name not in candidates:
        raise UserInputError(f"candidates: no entry for prunable parameter '{name}'")
    allowed = torch.as_tensor(candidates[name]).cpu()
    if tuple(allowed.shape) != tuple(shape) or allowed.dtype != torch.bool:
        raise UserInputError(f"candidates: '{name}' must be a bool tensor of shape "
                             f"{tuple(shape)}, got {allowed.dtype} {tuple(allowed.shape)}")
    return allowed


class Workspace:
    """A float32 buffer reused across re-ranks.

    A fresh 350 MB buffer per re-rank of an 87.5 M-entry model costs more in
    page faults than the ranking pass itself; an :class:`AdaptiveMasker`
    keeps one of these. Not part of any checkpoint.

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
def zero_pruned(model, mask, workspace=None):
    """Sets every entry of ``model`` outside ``mask`` (False) to exactly +0.0.

    With a ``workspace``, float32 CPU tensors are multiplied by the mask as
    0/1 floats (``0 + θ·m``: a random bool ``masked_fill_`` is several times
    slower on CPU, and ``+ 0`` turns the ``-0.0`` of negative weights into
    ``+0.0``).

    Example
    -------
    >>> lin = torch.nn.Linear(2, 1)
    >>> with torch.no_grad():
    ...     _ = lin.weight.copy_(torch.tensor([[-1.0, 2.0]]))
    >>> zero_pruned(lin, {"weight": torch.tensor([[False, True]])}, Workspace())
    >>> lin.weight.tolist(), torch.signbit(lin.weight).tolist()
    ([[0.0, 2.0]], [[False, False]])
    """
    params = canonical_named_parameters(model)
    names = [n for n in mask if _fast(params[n])] if workspace is not None else []
    if names:
        buffer = workspace.get(sum(params[n].numel() for n in names))
        zero, offset = torch.zeros(()), 0
        for name in names:
            param = params[name]
            ones = buffer[offset : offset + param.numel()].view(param.shape)
            ones.copy_(mask[name])
            torch.addcmul(zero, param, ones, out=param)
            offset += param.numel()
    for name, keep in mask.items():
        if name not in names:
            param = params[name]
            param.masked_fill_(~keep.to(param.device), 0.0)


class LotteryTicketRewind:
    """Rewinds the weights to ``θ0``, the dense pretrained ones: ``θ ← m ⊙ θ0``.

    Every parameter of the model is set to its ``θ0`` value (bit for bit when
    the dtypes agree); entries outside the mask are then zero. A ``θ0`` of
    another model (a missing parameter, a different shape, or a name the model
    does not have) is refused with the name.

    Arguments
    ---------
    reference_state : Mapping[str, torch.Tensor] or str or os.PathLike
        ``θ0`` as a state dict (copied, so later training cannot change it),
        or the path of one saved with ``torch.save`` (e.g. a ``model.ckpt``).

    Example
    -------
    >>> lin = torch.nn.Linear(2, 2)
    >>> rewind = LotteryTicketRewind(lin.state_dict())
    >>> with torch.no_grad():
    ...     _ = lin.weight.add_(1.0)
    >>> mask = ParameterMask({"weight": torch.tensor([[True, False], [True, True]])})
    >>> rewind.rewind(lin, mask)
    >>> torch.equal(lin.weight[mask["weight"]], rewind.reference["weight"][mask["weight"]])
    True
    >>> LotteryTicketRewind({"weight": torch.zeros(3, 2)}).check(lin)
    Traceback (most recent call last):
    ...
    speechbrain_sparse.errors.UserInputError: LTH θ0: 'weight' has shape (3, 2) but the model's is (2, 2) (θ0 of another model?)
    """

    def __init__(self, reference_state):
        source = "θ0"
        if isinstance(reference_state, (str, os.PathLike)):
            source = os.fspath(reference_state)
            if not os.path.isfile(source):
                raise UserInputError(f"LTH θ0 file not found: {source}")
            reference_state = torch.load(source, map_location="cpu", weights_only=True)
        if not isinstance(reference_state, Mapping):
            raise UserInputError(f"LTH θ0 ({source}) must be a state dict, got "
                                 f"{type(reference_state).__name__}")
        self.source = source
        self.reference = {canonical_parameter_name(n): t.detach().to("cpu", copy=True)
                          for n, t in reference_state.items()}

    def check(self, model):
        """Raises UserInputError unless ``θ0`` fits ``model`` (names and shapes)."""
        params = canonical_named_parameters(model)
        known = set(params) | {canonical_parameter_name(n) for n, _ in
                               model.named_buffers()}
        for name, param in params.items():
            if name not in self.reference:
                raise UserInputError(f"LTH {self.source}: no parameter '{name}' of the "
                                     "model (θ0 of another model?)")
            ref_shape = tuple(self.reference[name].shape)
            if ref_shape != tuple(param.shape):
                raise UserInputError(
                    f"LTH {self.source}: '{name}' has shape {ref_shape} but the "
                    f"model's is {tuple(param.shape)} (θ0 of another model?)")
        unknown = sorted(set(self.reference) - known)
        if unknown:
            raise UserInputError(f"LTH {self.source}: '{unknown[0]}' is not in the "
                                 "model (θ0 of another model?)")

    @torch.no_grad()
    def rewind(self, model, mask):
        """Sets ``model``'s parameters to ``θ0`` and the entries outside ``mask`` to 0."""
        self.check(model)
        for name, param in canonical_named_parameters(model).items():
            param.copy_(self.reference[name])
            if name in mask:
                param.masked_fill_(~mask[name].to(param.device), 0.0)


@register_checkpoint_hooks
class IterativeMagnitudePruning:
    """IMP (or LTH with ``rewind``): exact global magnitude rounds, nested masks.

    Each round ranks the current ``|θ|`` of the entries still kept and prunes
    (sets to exactly zero) the smallest until ``round(level·N)`` of the ``N``
    covered entries are pruned. The mask's metadata records the method
    (``"imp"`` / ``"lth"``), the level and the round. Keep the pruned entries at
    zero while training (``MaskEnforcer(model, mask, mode="prune")``).

    Arguments
    ---------
    schedule : Schedule
        The levels of the rounds (:mod:`~speechbrain_sparse.pruning.schedules`);
        :meth:`on_step` prunes when its level changes.
    rewind : LotteryTicketRewind, optional
        LTH: after each round the survivors are rewound to ``θ0``.
    coverage : Coverage, optional
        The prunable parameters (default: :data:`TRANSFORMER_ASR_COVERAGE`).

    Example
    -------
    >>> from speechbrain_sparse.pruning.schedules import LinearStepsSchedule
    >>> imp = IterativeMagnitudePruning(LinearStepsSchedule([0.0, 0.5], 10),
    ...                                 coverage=Coverage(include=["weight"]))
    >>> lin = torch.nn.Linear(4, 2)
    >>> [imp.on_step(lin, t) is not None for t in (0, 5, 10, 11)]
    [True, False, True, False]
    >>> imp.mask.num_selected(), imp.level
    (4, 0.5)
    """

    def __init__(self, schedule, rewind=None, coverage=None):
        self.schedule = schedule
        self.rewind = rewind
        self.coverage = coverage if coverage is not None else TRANSFORMER_ASR_COVERAGE
        self.method = "lth" if rewind is not None else "imp"
        self.mask = None
        self.level = None
        self.rounds = 0

    def prune_round(self, model, level):
        """Prunes ``model`` in place to ``level``; returns the new (nested) mask.

        Raises UserInputError if ``level`` is below the current level.
        """
        level = check_level(level, "level")
        if self.level is not None and level < self.level:
            raise UserInputError(f"IMP levels must not decrease (non-monotone): "
                                 f"{level} after {self.level}")
        if self.rewind is not None:
            self.rewind.check(model)
        options = {"round": self.rounds, "schedule": self.schedule.describe()}
        mask = magnitude_mask(model, level, self.coverage, candidates=self.mask,
                              method=self.method, options=options)
        zero_pruned(model, mask)
        if self.rewind is not None:
            self.rewind.rewind(model, mask)
        self.mask, self.level, self.rounds = mask, level, self.rounds + 1
        logger.info("%s round %d: sparsity %.4f, %d of %d entries kept", self.method,
                    self.rounds, level, mask.num_selected(), mask.numel())
        return mask

    def on_step(self, model, step):
        """Prunes when the schedule's level at ``step`` differs from the current one.

        Call with the number of optimizer steps done (0 before training).
        Returns the new mask, or None when no round was due.
        """
        level = self.schedule.level(step)
        if self.level is not None and level == self.level:
            return None
        return self.prune_round(model, level)

    def state_dict(self):
        """Returns the level, round count and mask (CPU tensors)."""
        return {"level": self.level, "rounds": self.rounds,
                "mask": mask_state(self.mask)}

    def load_state_dict(self, state):
        """Restores what :meth:`state_dict` returned."""
        self.level, self.rounds = state["level"], state["rounds"]
        self.mask = mask_from_state(state["mask"])

    @mark_as_saver
    def _save(self, path):
        torch.save(self.state_dict(), path)

    @mark_as_loader
    def _recover(self, path, end_of_epoch):
        del end_of_epoch
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


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
