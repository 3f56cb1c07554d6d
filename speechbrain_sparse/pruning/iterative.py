"""Iterative magnitude pruning (IMP) and the lottery-ticket rewind (LTH).

IMP prunes, every ``T`` steps, the smallest-magnitude weights of a set of
prunable matrices until the schedule's level is reached: the ranking is
*global* over all prunable entries ("p % of total weights"), the counts are
exact (after a round at sparsity ``s``, exactly ``round(s·N)`` of the ``N``
prunable entries are zero and pruned) and only entries still kept can be kept,
so the masks of successive rounds are nested. LTH is IMP whose survivors are
then rewound to ``θ0``, the dense pretrained weights
(:class:`LotteryTicketRewind`).

The ranking is :mod:`~speechbrain_sparse.pruning.global_magnitude`'s (default
scope: the TransformerASR attention and FFN matrices).

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

from speechbrain_sparse.checkpoints import StateDictRecoverable
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.parameter_names import (
    canonical_named_parameters,
    canonical_parameter_name,
)
from speechbrain_sparse.pruning.global_magnitude import (
    TRANSFORMER_ASR_COVERAGE,
    mask_from_state,
    mask_state,
    prune_by_magnitude,
)
from speechbrain_sparse.pruning.schedules import check_level

logger = logging.getLogger(__name__)


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
    >>> from speechbrain_sparse.masks import ParameterMask
    >>> lin = torch.nn.Linear(2, 2)
    >>> rewind = LotteryTicketRewind(lin.state_dict())
    >>> with torch.no_grad():
    ...     _ = lin.weight.add_(1.0)
    >>> mask = ParameterMask({"weight": torch.tensor([[True, False], [True, True]])})
    >>> rewind.rewind(lin, mask)
    >>> keep = mask["weight"]
    >>> torch.equal(lin.weight[keep], rewind.reference["weight"][keep])
    True
    >>> try:
    ...     LotteryTicketRewind({"weight": torch.zeros(3, 2)}).check(lin)
    ... except UserInputError as error:
    ...     print(error)
    LTH θ0: 'weight' has shape (3, 2) but the model's is (2, 2) (θ0 of another model?)
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
        """Sets ``model``'s parameters to ``θ0``, the entries outside ``mask`` to 0."""
        self.check(model)
        for name, param in canonical_named_parameters(model).items():
            param.copy_(self.reference[name])
            if name in mask:
                param.masked_fill_(~mask[name].to(param.device), 0.0)


class IterativeMagnitudePruning(StateDictRecoverable):
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
    >>> from speechbrain_sparse.masks import Coverage
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
        mask = prune_by_magnitude(model, level, self.coverage, candidates=self.mask,
                                  method=self.method, options=options)
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

