"""Mask-selection strategies, built from YAML: score the entries, keep the top K.

Each strategy holds its settings (density, coverage, its score's options) and
has one method, ``select(model, pretrained_state=None, brain=None, data=None)``,
returning a :class:`~speechbrain_sparse.masks.ParameterMask`: it computes one
score per covered entry (:mod:`speechbrain_sparse.scores`) and selects the exact
top-K at its density (:func:`speechbrain_sparse.topk.select_topk`).

* :class:`DiffSelection` -- ``|theta_t - theta_s|`` after full fine-tuning;
* :class:`FisherSelection` -- diagonal empirical Fisher on target data;
* :class:`MagnitudeSelection` -- ``|theta_s|``;
* :class:`RandomSelection` -- a seeded uniform draw;
* :class:`UnionSelection`, :class:`IntersectionSelection` -- two strategies,
  each at its own density, combined with ``|`` or ``&``;
* :func:`strategy_by_name` -- a single-score strategy from its name.

How a mask is used in the sparse fine-tuning paper, step by step, is told by
:mod:`speechbrain_sparse.dialect_sparse_finetuning`. In a recipe YAML::

    mask_strategy: !new:speechbrain_sparse.selection.UnionSelection
        first: !new:speechbrain_sparse.selection.DiffSelection
            density: 0.3
            finetuned_checkpoint: !ref <finetuned_folder>/model.ckpt
        second: !new:speechbrain_sparse.selection.MagnitudeSelection
            density: 0.1

Example
-------
>>> import torch
>>> model = torch.nn.Linear(4, 2)
>>> mask = MagnitudeSelection(0.2).select(model)
>>> mask.num_selected(), mask.numel()
(2, 10)
"""

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.masks import Coverage
from speechbrain_sparse.scores import (
    diff_scores,
    fisher_scores,
    load_state_dict,
    magnitude_scores,
    parameter_entries,
    random_scores,
)
from speechbrain_sparse.topk import check_density, select_topk


class SelectionStrategy:
    """Base of the score-then-top-K strategies: override :meth:`scores`.

    Arguments
    ---------
    density : float
        Fraction of covered entries to select, in (0, 1].
    per_tensor : bool
        Top-K within each tensor instead of over the whole coverage.
    coverage : Coverage, optional
        Which parameters may be selected (default: all).
    """

    method = "scores"

    def __init__(self, density, per_tensor=False, coverage=None):
        try:
            self.density = check_density(density)
        except UserInputError as error:  # say which strategy of a union it is
            raise UserInputError(f"{self.method} selection: {error}") from None
        self.per_tensor = per_tensor
        self.coverage = coverage if coverage is not None else Coverage()

    def options(self):
        """Returns the options recorded in the mask file."""
        return {"density": self.density, "per_tensor": self.per_tensor}

    def scores(self, model, pretrained_state, brain, data):
        """Returns ``{name: score}`` over the coverage."""
        raise NotImplementedError

    def select(self, model=None, pretrained_state=None, brain=None, data=None):
        """Returns the mask of this strategy.

        Arguments
        ---------
        model : torch.nn.Module, optional
            Names and shapes of the covered parameters. Without a model they
            come from ``pretrained_state``.
        pretrained_state : dict, optional
            theta_s (default: the model's current parameters).
        brain : speechbrain.core.Brain, optional
            Needed by :class:`FisherSelection`.
        data : DataLoader or Dataset, optional
            Needed by :class:`FisherSelection`.

        Returns
        -------
        ParameterMask
        """
        if model is None and pretrained_state is None and brain is not None:
            model = brain.modules
        if pretrained_state is None and model is not None:
            pretrained_state = {n: p.detach() for n, p in model.named_parameters()}
        if model is not None:
            shapes = self.coverage.shapes(model)
        elif pretrained_state is not None:
            entries = parameter_entries(pretrained_state, self.coverage)
            shapes = {n: tuple(t.shape) for n, t in entries.items()}
        else:
            raise ValueError("select() needs a model or a pretrained_state")
        if not shapes:
            raise UserInputError(f"{self.method}: no parameter matches {self.coverage}")
        scores = self.scores(model, pretrained_state, brain, data)
        for name, shape in shapes.items():
            if name not in scores or tuple(scores[name].shape) != shape:
                raise UserInputError(f"{self.method}: no {shape} score for '{name}'")
        scores = {name: scores[name] for name in shapes}
        return select_topk(scores, self.density, self.per_tensor, self.coverage,
                           self.method, self.options())


class MagnitudeSelection(SelectionStrategy):
    """The paper's ``topk``: largest ``|theta_s|`` (knowledge of the source)."""

    method = "topk"

    def scores(self, model, pretrained_state, brain, data):
        """Returns ``|theta_s|``."""
        return magnitude_scores(pretrained_state, self.coverage)


class DiffSelection(SelectionStrategy):
    """The paper's ``diff``: largest ``|theta_t - theta_s|`` after full fine-tuning.

    Arguments
    ---------
    density : float
        Fraction to select, in (0, 1].
    finetuned_checkpoint : str, optional
        theta_t as a state-dict file or SpeechBrain checkpoint folder.
    finetuned_state : dict, optional
        theta_t in memory (instead of a file).
    per_tensor, coverage
        As in :class:`SelectionStrategy`.
    """

    method = "diff"

    def __init__(self, density, finetuned_checkpoint=None, finetuned_state=None,
                 per_tensor=False, coverage=None):
        super().__init__(density, per_tensor, coverage)
        if (finetuned_checkpoint is None) == (finetuned_state is None):
            raise ValueError("give one of finetuned_checkpoint, finetuned_state")
        self.finetuned_checkpoint = finetuned_checkpoint
        self.finetuned_state = finetuned_state

    def options(self):
        """Returns the options, with the fine-tuned checkpoint's path."""
        path = self.finetuned_checkpoint
        return {**super().options(), "finetuned_checkpoint": path and str(path)}

    def scores(self, model, pretrained_state, brain, data):
        """Returns ``|theta_t - theta_s|``."""
        finetuned = self.finetuned_state
        if finetuned is None:
            finetuned = load_state_dict(self.finetuned_checkpoint)
        return diff_scores(pretrained_state, finetuned, self.coverage)


class RandomSelection(SelectionStrategy):
    """The paper's ``random``: a seeded uniform draw (same on every rank)."""

    method = "random"

    def __init__(self, density, seed=0, per_tensor=False, coverage=None):
        super().__init__(density, per_tensor, coverage)
        self.seed = int(seed)

    def options(self):
        """Returns the options, with the seed."""
        return {**super().options(), "seed": self.seed}

    def scores(self, model, pretrained_state, brain, data):
        """Returns seeded uniform scores over the covered shapes."""
        entries = parameter_entries(pretrained_state, self.coverage)
        return random_scores({n: t.shape for n, t in entries.items()}, self.seed)


class FisherSelection(SelectionStrategy):
    """The paper's ``fisher``: largest diagonal empirical Fisher on target data.

    Arguments
    ---------
    density : float
        Fraction to select, in (0, 1].
    num_batches, per_example, train_mode
        See :func:`speechbrain_sparse.scores.fisher_scores`.
    per_tensor, coverage
        As in :class:`SelectionStrategy`.
    """

    method = "fisher"

    def __init__(self, density, num_batches=100, per_example=False,
                 train_mode=False, per_tensor=False, coverage=None):
        super().__init__(density, per_tensor, coverage)
        self.num_batches = num_batches
        self.per_example = per_example
        self.train_mode = train_mode

    def options(self):
        """Returns the options, with the Fisher settings."""
        return {**super().options(), "num_batches": self.num_batches,
                "per_example": self.per_example, "train_mode": self.train_mode}

    def scores(self, model, pretrained_state, brain, data):
        """Returns the Fisher scores of ``brain`` on ``data``."""
        if brain is None or data is None:
            raise ValueError("fisher selection needs brain= and data=")
        return fisher_scores(brain, data, self.num_batches, self.per_example,
                             self.train_mode, model=model, coverage=self.coverage)


class UnionSelection:
    """Entries chosen by either strategy, each at its own density (Table IV).

    Arguments
    ---------
    first, second : SelectionStrategy
        E.g. ``DiffSelection(0.3, ...)`` and ``MagnitudeSelection(0.1)``.
    """

    def __init__(self, first, second):
        self.first, self.second = first, second

    def select(self, model=None, pretrained_state=None, brain=None, data=None):
        """Returns ``first.select(...) | second.select(...)``."""
        args = (model, pretrained_state, brain, data)
        return self.first.select(*args) | self.second.select(*args)


class IntersectionSelection(UnionSelection):
    """Entries chosen by both strategies, each at its own density (Table IV)."""

    def select(self, model=None, pretrained_state=None, brain=None, data=None):
        """Returns ``first.select(...) & second.select(...)``."""
        args = (model, pretrained_state, brain, data)
        return self.first.select(*args) & self.second.select(*args)


def strategy_by_name(method, density, finetuned_checkpoint=None, num_batches=100,
                     seed=0):
    """Builds a single-score strategy from its name (for YAML-selectable parts).

    The union/intersection YAMLs use it for their second strategy, so
    ``--second_method fisher`` turns "diff + topk" into "diff + fisher" without
    another file.

    Arguments
    ---------
    method : str
        ``diff``, ``fisher``, ``topk`` or ``random``.
    density : float
        Fraction to select, in (0, 1].
    finetuned_checkpoint : str, optional
        theta_t, needed by ``diff``.
    num_batches : int
        Target batches of the Fisher sum (``fisher``).
    seed : int
        Seed of ``random``.

    Returns
    -------
    SelectionStrategy

    Example
    -------
    >>> strategy_by_name("topk", 0.1).method
    'topk'
    >>> strategy_by_name("magnitude", 0.1)
    Traceback (most recent call last):
    ...
    speechbrain_sparse.errors.UserInputError: unknown selection method ...
    """
    builders = {
        "diff": lambda: DiffSelection(density, finetuned_checkpoint),
        "fisher": lambda: FisherSelection(density, num_batches=num_batches),
        "random": lambda: RandomSelection(density, seed=seed),
        "topk": lambda: MagnitudeSelection(density),
    }
    if method not in builders:
        raise UserInputError(
            f"unknown selection method {method!r}; valid: {', '.join(sorted(builders))}"
        )
    return builders[method]()
