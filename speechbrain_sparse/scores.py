"""Importance scores: one float per parameter entry, the larger the more important.

Every function returns ``{canonical parameter name: float32 CPU tensor}`` of the
parameters' shapes; :func:`speechbrain_sparse.topk.select_topk` turns scores into
an exact top-K :class:`~speechbrain_sparse.masks.ParameterMask`. The names below
are the sparse fine-tuning paper's
(:mod:`speechbrain_sparse.dialect_sparse_finetuning`):

* :func:`diff_scores` -- ``|theta_t - theta_s|``, the paper's *diff*.
* :func:`magnitude_scores` -- ``|theta_s|``, the paper's *topk*.
* :func:`random_scores` -- seeded uniform noise, the paper's *random*.
* :func:`fisher_scores` -- diagonal empirical Fisher (eq. 6), the paper's *fisher*.

State dicts may hold buffers next to parameters; entries that are not floating
point, or that match :data:`KNOWN_BUFFER_PATTERNS`, are left out.

Example
-------
>>> pe = torch.zeros(3)  # a buffer: left out
>>> pretrained = {"w": torch.tensor([1.0, -2.0]), "positional_encoding.pe": pe}
>>> finetuned = {"w": torch.tensor([1.5, -2.0]), "positional_encoding.pe": pe}
>>> diff_scores(pretrained, finetuned)
{'w': tensor([0.5000, 0.0000])}
>>> magnitude_scores(pretrained)
{'w': tensor([1., 2.])}
"""

import contextlib
import itertools
import logging
import os
from collections.abc import Mapping

import speechbrain as sb
import torch

from speechbrain_sparse.errors import MissingInputError, UserInputError
from speechbrain_sparse.masks import (
    Coverage,
    canonical_named_parameters,
    canonical_parameter_name,
)

logger = logging.getLogger(__name__)

#: State-dict entries that are buffers, not trainable parameters (BatchNorm
#: statistics, SpeechBrain's fixed sinusoidal positional encodings).
KNOWN_BUFFER_PATTERNS = (
    "*running_mean",
    "*running_var",
    "*num_batches_tracked",
    "*positional_encoding.pe",
)


def load_state_dict(path, checkpoint_name="model.ckpt"):
    """Loads a state dict from a file or a SpeechBrain checkpoint folder.

    Accepts a plain ``torch.save(state_dict)`` file, or a folder written by
    SpeechBrain's ``Checkpointer`` whose ``model.ckpt`` (the recipe's ``model``
    recoverable, saved with ``torch.save(module.state_dict())``) is read.

    Arguments
    ---------
    path : str or os.PathLike
        The file, or the checkpoint folder.
    checkpoint_name : str
        Which file of a folder to read (default ``model.ckpt``).

    Returns
    -------
    dict
        Name -> tensor, on CPU, as loaded (a saved ``state_dict()`` keeps its
        order and ``_metadata``).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        folder, path = path, os.path.join(path, checkpoint_name)
        if not os.path.isfile(path):
            found = sorted(f for f in os.listdir(folder) if f.endswith(".ckpt"))
            raise MissingInputError(
                f"no {checkpoint_name} in checkpoint folder {folder} (has: {found})"
            )
    if not os.path.isfile(path):
        raise MissingInputError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise UserInputError(f"{path}: cannot read checkpoint: {error}") from error
    if not isinstance(state, Mapping) or not all(
        isinstance(t, torch.Tensor) for t in state.values()
    ):
        raise UserInputError(f"{path}: not a state dict (name -> tensor)")
    return state


def parameter_entries(state, coverage=None):
    """Returns ``{canonical name: tensor}`` of the parameter-like covered entries.

    Arguments
    ---------
    state : dict
        A state dict (or any ``{name: tensor}``).
    coverage : Coverage, optional
        Which names to keep (default: all).

    Returns
    -------
    dict
        Floating-point, covered, non-buffer entries, in ``state`` order.

    Example
    -------
    >>> state = {"module.w": torch.ones(2), "bn.num_batches_tracked": torch.tensor(3)}
    >>> list(parameter_entries(state))
    ['w']
    """
    coverage = coverage if coverage is not None else Coverage()
    exclude = Coverage(include=KNOWN_BUFFER_PATTERNS)
    entries = {}
    for name, tensor in state.items():
        name = canonical_parameter_name(name)
        floating = torch.is_floating_point(tensor)
        if floating and coverage.covers(name) and not exclude.covers(name):
            entries[name] = tensor
    return entries


def diff_scores(pretrained_state, finetuned_state, coverage=None):
    """Returns ``|theta_t - theta_s|`` per covered parameter (float32, CPU).

    Arguments
    ---------
    pretrained_state : dict
        theta_s, the weights before fine-tuning on the target language.
    finetuned_state : dict
        theta_t, the same model fully fine-tuned on the target language.
    coverage : Coverage, optional
        Which parameters to score (default: all).

    Returns
    -------
    dict
        Name -> absolute weight difference.
    """
    finetuned = {canonical_parameter_name(n): t for n, t in finetuned_state.items()}
    pairs = {}
    for name, before in parameter_entries(pretrained_state, coverage).items():
        after = finetuned.get(name)
        if after is None:
            raise UserInputError(
                f"parameter '{name}' is missing from the fine-tuned state"
            )
        if after.shape != before.shape:
            raise UserInputError(
                f"parameter '{name}' has shape {tuple(before.shape)} before and "
                f"{tuple(after.shape)} after fine-tuning"
            )
        pairs[name] = (before, after)
    scores, flat = _flat_buffer({n: b.shape for n, (b, _) in pairs.items()})
    for name, (before, after) in pairs.items():
        torch.sub(_as_float_cpu(after), _as_float_cpu(before), out=scores[name])
    flat.abs_()
    return scores


def magnitude_scores(state, coverage=None):
    """Returns ``|theta_s|`` per covered parameter (the paper's ``topk``).

    Arguments
    ---------
    state : dict
        The pretrained weights.
    coverage : Coverage, optional
        Which parameters to score (default: all).

    Returns
    -------
    dict
        Name -> absolute weight.
    """
    entries = parameter_entries(state, coverage)
    scores, _ = _flat_buffer({n: t.shape for n, t in entries.items()})
    for name, tensor in entries.items():
        torch.abs(_as_float_cpu(tensor), out=scores[name])
    return scores


def _flat_buffer(shapes):
    """Returns ``({name: view}, flat)``: consecutive float32 views of one buffer.

    :mod:`speechbrain_sparse.topk` ranks the flat buffer in place instead of
    concatenating copies.
    """
    sizes = [int(torch.Size(s).numel()) for s in shapes.values()]
    flat = torch.empty(sum(sizes), dtype=torch.float32)
    views = {
        name: part.view(tuple(shape))
        for (name, shape), part in zip(shapes.items(), flat.split(sizes))
    }
    return views, flat


def _as_float_cpu(tensor):
    return tensor.detach().to(device="cpu", dtype=torch.float32)


def random_scores(shapes, seed=0):
    """Returns seeded uniform scores, identical on every rank and dict order.

    A CPU ``torch.Generator`` seeded with ``seed`` draws each tensor in sorted
    name order, so every DDP rank builds the same random mask.

    Arguments
    ---------
    shapes : dict
        ``{name: shape}`` (e.g. ``ParameterMask.shapes`` or ``Coverage.shapes``).
    seed : int
        The seed.

    Returns
    -------
    dict
        Name -> uniform [0, 1) scores.

    Example
    -------
    >>> a = random_scores({"w": (3,), "b": (2,)}, seed=1)
    >>> b = random_scores({"b": (2,), "w": (3,)}, seed=1)
    >>> all(torch.equal(a[n], b[n]) for n in a)
    True
    """
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    drawn = {
        name: torch.rand(tuple(shapes[name]), generator=generator)
        for name in sorted(shapes)
    }
    return {canonical_parameter_name(name): drawn[name] for name in shapes}


def split_batch(batch):
    """Splits a batch into single-example batches (for per-example Fisher).

    Supports SpeechBrain's ``PaddedBatch`` (padding removed, each example
    re-collated with the default ``PaddedBatch``), tensors (split on dim 0),
    and tuples / lists / dicts of tensors.

    Arguments
    ---------
    batch : PaddedBatch, torch.Tensor, tuple, list or dict
        One batch from a loader.

    Returns
    -------
    list
        Batches of one example each.

    Example
    -------
    >>> from speechbrain.dataio.batch import PaddedBatch
    >>> batch = PaddedBatch([{"x": torch.ones(1)}, {"x": torch.ones(2)}])
    >>> [b.x.data.shape[1] for b in split_batch(batch)]
    [1, 2]
    """
    if isinstance(batch, sb.dataio.batch.PaddedBatch):
        keys = [k for k in vars(batch) if not k.startswith("_PaddedBatch__")]
        examples = [{} for _ in range(len(batch))]
        for key in keys:
            value = getattr(batch, key)
            for i, example in enumerate(examples):
                if isinstance(value, sb.dataio.batch.PaddedData):
                    size = int(torch.round(value.lengths[i] * value.data.shape[1]))
                    example[key] = value.data[i, :size]
                else:
                    example[key] = value[i]
        return [sb.dataio.batch.PaddedBatch([example]) for example in examples]
    if isinstance(batch, torch.Tensor):
        return list(batch.split(1))
    if isinstance(batch, dict):
        parts = {key: split_batch(value) for key, value in batch.items()}
        return [dict(zip(parts, values)) for values in zip(*parts.values())]
    if isinstance(batch, (tuple, list)):
        return [type(batch)(values) for values in zip(*map(split_batch, batch))]
    raise TypeError(f"cannot split a batch of type {type(batch).__name__}")


def fisher_scores(
    brain,
    data,
    num_batches=100,
    per_example=False,
    train_mode=False,
    model=None,
    coverage=None,
    loader_kwargs=None,
):
    """Returns the diagonal empirical Fisher, sum over batches of (dL/dtheta)^2.

    Uses the recipe's own ``brain.compute_forward(batch, Stage.TRAIN)`` and
    ``brain.compute_objectives(predictions, batch, Stage.TRAIN)``; the loss is
    -log p(y|x) up to scaling, so this is eq. (6) of the paper up to a constant.

    Arguments
    ---------
    brain : speechbrain.core.Brain
        The recipe's Brain (its modules at the pretrained weights).
    data : DataLoader, iterable of batches, or Dataset
        Target-language data. A ``torch.utils.data.Dataset`` is wrapped with
        ``brain.make_dataloader(data, Stage.TRAIN, **loader_kwargs)``.
    num_batches : int or None
        How many batches to use (default 100; ``None``: the whole loader). Under
        DDP each rank uses its own ``num_batches``.
    per_example : bool
        False (default): one backward per batch, squares the batch-loss gradient.
        True: one backward per example (:func:`split_batch`), squares each
        example's gradient -- the exact empirical Fisher, at about batch-size
        times the cost of the default.
    train_mode : bool
        Run the modules in train mode (dropout on). Default False: eval mode,
        so the scores are deterministic. The previous modes are restored.
    model : torch.nn.Module, optional
        The module whose parameters are scored and whose names key the result
        (default ``brain.modules``); pass the recipe's ``model`` so the names
        match its checkpoint.
    coverage : Coverage, optional
        Which parameters to score (default: all).
    loader_kwargs : dict, optional
        For ``make_dataloader`` when ``data`` is a Dataset.

    Returns
    -------
    dict
        Name -> Fisher score (float32, CPU). Summed over ranks under DDP, so
        every rank selects the same mask. Gradients are left as ``None``.
    """
    model = brain.modules if model is None else model
    coverage = coverage if coverage is not None else Coverage()
    params = {
        n: p for n, p in canonical_named_parameters(model).items() if coverage.covers(n)
    }
    if isinstance(data, torch.utils.data.Dataset):
        data = brain.make_dataloader(data, sb.Stage.TRAIN, **(loader_kwargs or {}))
    modes = {module: module.training for module in model.modules()}
    model.train(train_mode)
    scores = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    no_sync = getattr(brain, "no_sync", None)
    used = 0
    try:
        with no_sync() if no_sync else contextlib.nullcontext():
            for batch in itertools.islice(data, num_batches):
                if hasattr(batch, "to"):
                    batch = batch.to(brain.device)
                for part in split_batch(batch) if per_example else [batch]:
                    model.zero_grad(set_to_none=True)
                    _accumulate_squared_gradients(brain, part, params, scores)
                used += 1
    finally:
        for module, mode in modes.items():
            module.train(mode)
        for param in model.parameters():
            param.grad = None
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        for tensor in scores.values():
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
    logger.info("fisher scores from %d batches (per_example=%s)", used, per_example)
    views, _ = _flat_buffer({n: t.shape for n, t in scores.items()})
    for name, tensor in scores.items():
        views[name].copy_(tensor)
    return views


def _accumulate_squared_gradients(brain, batch, params, scores):
    """One forward/backward of ``batch``; adds the squared gradients to ``scores``."""
    with torch.enable_grad():
        predictions = brain.compute_forward(batch, sb.Stage.TRAIN)
        loss = brain.compute_objectives(predictions, batch, sb.Stage.TRAIN)
        loss.backward()
    for name, param in params.items():
        if param.grad is not None:
            scores[name].add_(param.grad.detach().float().square())
