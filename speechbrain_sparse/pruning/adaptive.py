"""Adaptive masking: soft pruning whose mask is re-ranked by magnitude while training.

The masks of IMP/LTH are fixed within a cycle. Adaptive masking prunes
"softly" (SFP-style): at a re-rank, the current ``|θ|`` of all prunable
entries is ranked globally and exactly ``N - round(s·N)`` are kept; the rest
are set to zero but stay trainable, so a weight whose gradient grows it back
is re-admitted at the next re-rank. Re-ranks happen every ``n`` steps and
whenever the schedule's level steps up (every ``T`` steps, ``n < T``); from
the schedule's final step on, the final mask is enforced hard: the caller
attaches it with ``MaskEnforcer(model, mask, mode="prune")``.

Options: ``forward_mask`` (DPF-style: pruned entries keep their values and
the forward pass uses ``m ⊙ θ`` inside :meth:`AdaptiveMasker.masked_forward`,
the gradient reaching every entry); ``rewind`` (adaptive LTH: survivors are
rewound to ``θ0`` at each level increase).

Use, with ``step`` the number of optimizer steps done::

    masker = AdaptiveMasker(CubicSchedule(0.0, 0.7, 200, 4), rerank_every=50)
    masker.on_step(model, 0)                  # the first mask
    for step, batch in enumerate(batches, start=1):
        train_step(model, batch)              # dense update (SFP)
        mask = masker.on_step(model, step)    # None, or the re-ranked mask
        if mask is not None and masker.hard:  # final: enforce it
            enforcer = MaskEnforcer(model, mask, mode="prune")

Example
-------
>>> from speechbrain_sparse.masks import Coverage
>>> from speechbrain_sparse.pruning.schedules import LinearStepsSchedule
>>> lin = torch.nn.Linear(4, 4)
>>> masker = AdaptiveMasker(LinearStepsSchedule([0.25, 0.5], 4), rerank_every=2,
...                         coverage=Coverage(include=["weight"]))
>>> [(t, masker.on_step(lin, t).num_selected()) for t in range(6)
...  if masker.due(t)]
[(0, 12), (2, 12), (4, 8)]
>>> masker.hard, int((lin.weight == 0).sum())
(True, 8)

Authors
 * speechbrain_sparse contributors 2026
"""

import contextlib
import logging

import torch

from speechbrain_sparse.checkpoints import StateDictRecoverable
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.parameter_names import canonical_named_parameters
from speechbrain_sparse.pruning.global_magnitude import (
    TRANSFORMER_ASR_COVERAGE,
    Workspace,
    magnitude_mask,
    mask_from_state,
    mask_state,
    prune_by_magnitude,
)
from speechbrain_sparse.pruning.schedules import check_steps

logger = logging.getLogger(__name__)

FINAL_MODES = ("prune", "soft")


class AdaptiveMasker(StateDictRecoverable):
    """Re-ranks a soft magnitude mask every ``n`` steps; the level steps up every ``T``.

    Arguments
    ---------
    schedule : Schedule
        The sparsity per step; its ``interval`` is ``T``
        (:mod:`~speechbrain_sparse.pruning.schedules`).
    rerank_every : int
        ``n``: re-rank every ``n`` optimizer steps; must be below ``T``.
    final_mode : str
        ``"prune"``: from ``schedule.final_step`` on, the last re-rank's mask
        is final (:attr:`hard`; no more re-ranks). ``"soft"``: keep re-ranking.
    forward_mask : bool
        DPF-style: re-ranks do not zero the pruned entries; run the forward
        and backward pass inside :meth:`masked_forward`.
    rewind : LotteryTicketRewind, optional
        Adaptive LTH: at each level increase the survivors are rewound to ``θ0``.
    coverage : Coverage, optional
        The prunable parameters (default:
        :data:`~speechbrain_sparse.pruning.global_magnitude.TRANSFORMER_ASR_COVERAGE`).

    Example
    -------
    >>> from speechbrain_sparse.pruning.schedules import CubicSchedule
    >>> try:
    ...     AdaptiveMasker(CubicSchedule(0.0, 0.7, 50, 4), rerank_every=50)
    ... except UserInputError as error:
    ...     print(error)
    rerank_every (n=50) must be below the schedule's interval (T=50)
    """

    def __init__(self, schedule, rerank_every, final_mode="prune", forward_mask=False,
                 rewind=None, coverage=None):
        self.schedule = schedule
        self.rerank_every = check_steps(rerank_every, "rerank_every")
        interval = getattr(schedule, "interval", None)
        if interval is not None and self.rerank_every >= interval:
            raise UserInputError(
                f"rerank_every (n={self.rerank_every}) must be below the schedule's "
                f"interval (T={interval})")
        if final_mode not in FINAL_MODES:
            raise UserInputError(f"final_mode must be one of {FINAL_MODES}, "
                                 f"got {final_mode!r}")
        self.final_mode = final_mode
        self.forward_mask = bool(forward_mask)
        self.rewind = rewind
        self.coverage = coverage if coverage is not None else TRANSFORMER_ASR_COVERAGE
        self.method = "adaptive_lth" if rewind is not None else "adaptive"
        self.mask = None
        self.level = None
        self.hard = False
        self.reranks = 0
        self.workspace = Workspace()

    def due(self, step):
        """Returns whether :meth:`on_step` at ``step`` re-ranks.

        True for the first call, every ``n`` steps and when the level changes;
        never once the final mask is hard.
        """
        if self.hard:
            return False
        if self.mask is None or step % self.rerank_every == 0:
            return True
        return self.schedule.level(step) != self.level

    def on_step(self, model, step, candidates=None):
        """Re-ranks ``model``'s mask if due at ``step``; returns it, else None.

        Arguments
        ---------
        model : torch.nn.Module
            The model; pruned entries are set to zero in place (unless
            ``forward_mask``), survivors rewound at a level increase (LTH).
        step : int
            The number of optimizer steps done (0 before the first).
        candidates : Mapping[str, torch.BoolTensor], optional
            Only these entries may be kept (e.g. a language's pathway and
            free zone); the count still refers to all covered entries.

        Returns
        -------
        ParameterMask or None
            Exactly ``N - round(level·N)`` entries kept.
        """
        if not self.due(step):
            return None
        level = self.schedule.level(step)
        increase = self.level is not None and level != self.level
        hard = self.final_mode == "prune" and step >= self.schedule.final_step
        if self.rewind is not None:
            self.rewind.check(model)
        options = {"step": int(step), "rerank": self.reranks,
                   "rerank_every": self.rerank_every, "final": hard,
                   "forward_mask": self.forward_mask,
                   "schedule": self.schedule.describe()}
        rank = magnitude_mask if self.forward_mask and not hard else prune_by_magnitude
        mask = rank(model, level, self.coverage, candidates=candidates,
                    method=self.method, options=options, workspace=self.workspace)
        if self.rewind is not None and increase:
            self.rewind.rewind(model, mask)
        self.mask, self.level, self.hard = mask, level, hard
        self.reranks += 1
        if hard:
            self.workspace = Workspace()  # no more re-ranks: free the buffer
        logger.debug("%s re-rank %d at step %d: sparsity %.4f%s", self.method,
                     self.reranks, step, level, " (final, hard)" if hard else "")
        return mask

    @contextlib.contextmanager
    def masked_forward(self, model):
        """Runs the block with the pruned entries at zero, then restores them.

        For ``forward_mask=True`` (DPF): call the forward *and* backward pass
        inside, so the loss sees ``m ⊙ θ`` and every entry gets its gradient;
        the optimizer step comes after. A no-op otherwise.

        Example
        -------
        >>> from speechbrain_sparse.masks import Coverage
        >>> from speechbrain_sparse.pruning.schedules import ConstantSchedule
        >>> lin = torch.nn.Linear(2, 1, bias=False)
        >>> masker = AdaptiveMasker(ConstantSchedule(0.5), 1, final_mode="soft",
        ...     forward_mask=True, coverage=Coverage(include=["weight"]))
        >>> with torch.no_grad():
        ...     _ = lin.weight.copy_(torch.tensor([[3.0, 1.0]]))
        >>> _ = masker.on_step(lin, 0)
        >>> with masker.masked_forward(lin):
        ...     lin(torch.ones(1, 2)).sum().backward()
        ...     inside = lin.weight.tolist()
        >>> inside, lin.weight.tolist(), lin.weight.grad.tolist()
        ([[3.0, 0.0]], [[3.0, 1.0]], [[1.0, 1.0]])
        """
        if not self.forward_mask or self.mask is None or self.hard:
            yield
            return
        params = canonical_named_parameters(model)
        saved = {}
        with torch.no_grad():
            for name, keep in self.mask.items():
                param = params[name]
                pruned = ~keep.to(param.device)
                saved[name] = (pruned, param[pruned].clone())
                param.masked_fill_(pruned, 0.0)
        try:
            yield
        finally:
            with torch.no_grad():
                for name, (pruned, values) in saved.items():
                    params[name][pruned] = values

    def state_dict(self):
        """Returns the level, whether final, the re-rank count and the mask."""
        return {"level": self.level, "hard": self.hard, "reranks": self.reranks,
                "mask": mask_state(self.mask)}

    def load_state_dict(self, state):
        """Restores what :meth:`state_dict` returned."""
        self.level, self.hard = state["level"], state["hard"]
        self.reranks = state["reranks"]
        self.mask = mask_from_state(state["mask"])

