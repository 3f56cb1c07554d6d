"""Mixed sparsity: one sparsity per weight matrix from Hessian sensitivities.

SparseWAV (section 2.3) measures the sensitivity of each weight matrix as the
mean of the diagonal of the loss Hessian over its entries (eqs. 4-5), estimated
with Hutchinson probes, and gives the most sensitive matrices the lowest
sparsities along an arithmetic progression over ``[s - α, s + α]`` (eqs. 6-7).

* :func:`hutchinson_trace` estimates ``diag(H)`` as the mean of ``z ⊙ (H z)``
  over random probes ``z`` (``E[z zᵀ] = I``); each ``H z`` is one Hessian-vector
  product by double backward, so the loss must be twice differentiable.
  PyTorch's CTC loss is not (``_ctc_loss_backward`` has no derivative): use the
  attention decoder's NLL (SpeechBrain seq2seq models), or a distillation loss
  to the dense model's outputs (e.g. KL of the CTC posteriors) for CTC-only
  models such as ``Wav2Vec2ForCTC``.
* :func:`allocate_sparsities` turns sensitivities into sparsities whose
  parameter-weighted mean is the target exactly, and
  :func:`allocate_prune_counts` into integer counts that add up exactly to
  ``round(target * total)``.
* :class:`MixedSparsity` is the allocator the pruner holds
  (:class:`~speechbrain_sparse.pruning.oneshot.OneShotPruner`, built with
  ``!new:`` in a YAML): its settings (``alpha``, probes, batches) and
  ``allocate``, which estimates the sensitivities of the dense model's
  matrices on calibration batches, each slice of a packed projection a
  separate leaf put in place by ``torch.func.functional_call``.

Example
-------
>>> sens = {"ffn.w1": 5.0, "attn.q": 1.0, "attn.k": 0.5}
>>> sizes = {"ffn.w1": 100, "attn.q": 100, "attn.k": 100}
>>> {k: round(v, 3) for k, v in allocate_sparsities(sens, sizes, 0.5).items()}
{'ffn.w1': 0.4, 'attn.q': 0.5, 'attn.k': 0.6}

Authors
 * speechbrain_sparse contributors 2026
"""

import math

import torch

from speechbrain_sparse.errors import UserInputError

DISTRIBUTIONS = ("rademacher", "gaussian")


def hutchinson_trace(loss_fn, parameters, num_probes=100, distribution="rademacher",
                     generator=None):
    """Returns each matrix's mean Hessian diagonal, ``tr(H_BB) / n_B`` (eq. 5).

    One probe ``z`` covers all ``parameters`` at once; per matrix ``B`` the
    estimate is the mean over probes of ``z_B · (H z)_B / n_B``, unbiased for
    Rademacher and Gaussian probes. ``loss_fn`` is called once per probe, so it
    may return the loss of a different calibration batch each time (the
    estimate then averages over the data too).

    Arguments
    ---------
    loss_fn : callable
        ``loss_fn()`` returns a scalar loss, twice differentiable with respect
        to ``parameters`` (not CTC; see the module docstring).
    parameters : dict
        Name -> tensor with ``requires_grad=True``.
    num_probes : int
        Number of probes ``N`` of eq. 4; the error falls as ``1/sqrt(N)``.
    distribution : str
        ``"rademacher"`` (±1, the lower-variance choice) or ``"gaussian"``
        (the paper's standard normal).
    generator : torch.Generator, optional
        Source of the probes (a CPU generator; probes are moved to each
        parameter's device).

    Returns
    -------
    dict
        Name -> float sensitivity.

    Example
    -------
    >>> a, b = torch.ones(3, requires_grad=True), torch.ones(2, requires_grad=True)
    >>> loss = lambda: (a**2).sum() + 3 * (b**2).sum()  # diag(H) = (2, 2, 2, 6, 6)
    >>> hutchinson_trace(loss, {"a": a, "b": b}, num_probes=4)  # z_i² = 1: exact
    {'a': 2.0, 'b': 6.0}
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, "
                         f"got {distribution!r}")
    if int(num_probes) < 1:
        raise ValueError(f"num_probes must be >= 1, got {num_probes}")
    names = list(parameters)
    tensors = [parameters[name] for name in names]
    for name, tensor in zip(names, tensors):
        if not tensor.requires_grad:
            raise ValueError(f"parameter '{name}' does not require grad")
    totals = [0.0] * len(names)
    for _ in range(int(num_probes)):
        loss = loss_fn()
        gradients = torch.autograd.grad(loss, tensors, create_graph=True,
                                        allow_unused=True)
        probes = [_probe(t, distribution, generator) for t in tensors]
        used = [i for i, g in enumerate(gradients) if g is not None and g.requires_grad]
        products = torch.autograd.grad(
            [gradients[i] for i in used], [tensors[i] for i in used],
            grad_outputs=[probes[i] for i in used], allow_unused=True,
        ) if used else []
        for i, product in zip(used, products):
            if product is not None:
                totals[i] += float((probes[i] * product).sum())
    return {
        name: totals[i] / (int(num_probes) * max(tensors[i].numel(), 1))
        for i, name in enumerate(names)
    }


def _probe(tensor, distribution, generator):
    """Returns a random probe shaped like ``tensor`` with ``E[z zᵀ] = I``."""
    if distribution == "gaussian":
        probe = torch.randn(tensor.shape, generator=generator, dtype=torch.float64)
    else:
        bits = torch.randint(0, 2, tensor.shape, generator=generator)
        probe = bits.to(torch.float64) * 2 - 1
    return probe.to(tensor.device, tensor.dtype)


def allocate_sparsities(sensitivities, sizes, target, alpha=0.1, max_sparsity=0.99):
    """Returns per-matrix sparsities: rank -> arithmetic progression -> exact mean.

    1. Rank by sensitivity, highest first (rank 0); ties by name, so the result
       does not depend on dict order.
    2. Eq. 7: ``s_i = target - α + rank_i · 2α / (N - 1)`` (``target`` if N = 1).
    3. Correction: shift every ``s_i`` by the same constant ``c`` and clip into
       ``[0, max_sparsity]``: ``s_i = clip(s_i + c)``. The weighted mean
       ``Σ size_i s_i / Σ size_i`` is continuous and non-decreasing in ``c``, so
       the ``c`` that makes it equal ``target`` is found exactly on the linear
       piece it lies on. The progression keeps its spacing except where
       clipped, and the ordering by sensitivity is kept.

    Arguments
    ---------
    sensitivities : dict
        Name -> sensitivity (e.g. from :func:`hutchinson_trace`).
    sizes : dict
        Name -> number of parameters of that matrix.
    target : float
        Parameter-weighted mean sparsity, in ``[0, max_sparsity]``.
    alpha : float
        Half-width of the progression (the paper uses 0.1).
    max_sparsity : float
        Highest sparsity one matrix may get (below 1, so none is removed).

    Returns
    -------
    dict
        Name -> sparsity (in the order of ``sensitivities``).

    Example
    -------
    >>> sens = {"a": 3.0, "b": 2.0, "c": 1.0}
    >>> out = allocate_sparsities(sens, {"a": 10, "b": 10, "c": 80}, 0.9)
    >>> {k: round(v, 4) for k, v in out.items()}
    {'a': 0.73, 'b': 0.83, 'c': 0.93}
    """
    names = list(sensitivities)
    if set(names) != set(sizes):
        raise ValueError("sensitivities and sizes must name the same matrices")
    if not 0.0 <= target <= max_sparsity < 1.0 or alpha < 0:
        raise ValueError(f"need 0 <= target <= max_sparsity < 1 and alpha >= 0, "
                         f"got target={target}, max_sparsity={max_sparsity}, "
                         f"alpha={alpha}")
    for name in names:
        if not math.isfinite(float(sensitivities[name])) or int(sizes[name]) <= 0:
            raise ValueError(f"'{name}': sensitivity must be finite and size > 0")
    if not names:
        return {}
    ranked = sorted(names, key=lambda n: (-float(sensitivities[n]), n))
    count = len(ranked)
    step = 2 * alpha / (count - 1) if count > 1 else 0.0
    base = {name: target - alpha + rank * step for rank, name in enumerate(ranked)}
    if count == 1:
        base[ranked[0]] = target
    total = sum(int(sizes[n]) for n in names)
    weights = {n: int(sizes[n]) / total for n in ranked}  # sums in a fixed order
    shift = _solve_shift(base, weights, target, max_sparsity)
    return {n: min(max(base[n] + shift, 0.0), max_sparsity) for n in names}


def _solve_shift(base, weights, target, upper):
    """Returns ``c`` with ``Σ w_i clip(b_i + c, 0, upper) = target`` (exactly).

    The left side is piecewise linear in ``c`` with breakpoints where some
    ``b_i + c`` reaches 0 or ``upper``; find the piece holding the target and
    solve the linear equation on it.
    """

    def mean_at(shift):
        return sum(w * min(max(base[n] + shift, 0.0), upper)
                   for n, w in weights.items())

    breakpoints = sorted({-b for b in base.values()}
                         | {upper - b for b in base.values()})
    low = breakpoints[0]
    for high in breakpoints[1:] + [math.inf]:
        if high == math.inf or mean_at(high) >= target:
            break
        low = high
    # On [low, high] the free (unclipped) matrices move with c; the rest are fixed.
    probe = low + 0.5 * (high - low) if high != math.inf else low + 1.0
    free = [n for n in weights if 0.0 < base[n] + probe < upper]
    slope = sum(weights[n] for n in free)
    if slope == 0.0:
        return low
    return low + (target - mean_at(low)) / slope


def allocate_prune_counts(sparsities, sizes, target=None):
    """Returns per-matrix numbers of entries to prune, adding up exactly.

    Each matrix gets ``floor(s_i · size_i)`` and the remaining entries of the
    total ``round(target · Σ size)`` (default: ``round(Σ s_i · size_i)``) go one
    each to the largest fractional parts (ties by name): the largest-remainder
    method, so each count is within one of ``s_i · size_i``.

    Arguments
    ---------
    sparsities : dict
        Name -> sparsity (e.g. from :func:`allocate_sparsities`).
    sizes : dict
        Name -> number of entries.
    target : float, optional
        Overall sparsity the counts must add up to.

    Returns
    -------
    dict
        Name -> int, for ``prune_matrix(..., num_pruned=...)``.

    Example
    -------
    >>> allocate_prune_counts({"a": 0.55, "b": 0.45}, {"a": 3, "b": 3}, target=0.5)
    {'a': 2, 'b': 1}
    """
    names = list(sparsities)
    ideal = {n: float(sparsities[n]) * int(sizes[n]) for n in names}
    grand_total = sum(int(sizes[n]) for n in names)
    wanted = sum(ideal.values()) if target is None else float(target) * grand_total
    total = min(grand_total, int(math.floor(wanted + 0.5)))
    counts = {n: min(int(math.floor(ideal[n])), int(sizes[n])) for n in names}
    by_remainder = sorted(names, key=lambda n: (-(ideal[n] - counts[n]), n))
    missing = total - sum(counts.values())
    while missing > 0:
        progressed = False
        for name in by_remainder:
            if missing and counts[name] < int(sizes[name]):
                counts[name] += 1
                missing -= 1
                progressed = True
        if not progressed:
            break
    while missing < 0:
        for name in reversed(by_remainder):
            if missing and counts[name] > 0:
                counts[name] -= 1
                missing += 1
    return counts


class MixedSparsity:
    """Per-matrix sparsities from Hutchinson sensitivities (SparseWAV eqs. 4-7).

    Arguments
    ---------
    alpha : float
        Half-width of the sparsity progression ``[s - α, s + α]``.
    num_probes : int
        Hutchinson probes per calibration batch used.
    distribution : str
        ``"rademacher"`` or ``"gaussian"`` probes.
    num_batches : int
        How many calibration batches the estimate averages over.
    seed : int
        Seed of the probes.

    Example
    -------
    >>> MixedSparsity(alpha=0.05, num_probes=2).alpha
    0.05
    >>> MixedSparsity(num_probes=0)
    Traceback (most recent call last):
    ...
    speechbrain_sparse.errors.UserInputError: num_probes must be >= 1, got 0
    """

    def __init__(self, alpha=0.1, num_probes=8, distribution="rademacher",
                 num_batches=2, seed=0):
        if not 0.0 <= float(alpha) < 1.0:
            raise UserInputError(f"alpha must be in [0, 1), got {alpha!r}")
        if int(num_probes) < 1:
            raise UserInputError(f"num_probes must be >= 1, got {num_probes!r}")
        if distribution not in DISTRIBUTIONS:
            raise UserInputError(f"distribution must be one of {DISTRIBUTIONS}, "
                                 f"got {distribution!r}")
        if int(num_batches) < 1:
            raise UserInputError(f"num_batches must be >= 1, got {num_batches!r}")
        self.alpha = float(alpha)
        self.num_probes = int(num_probes)
        self.distribution = distribution
        self.num_batches = int(num_batches)
        self.seed = int(seed)

    def sensitivities(self, model, family, matrices, batches):
        """Returns ``{matrix name: mean Hessian diagonal}`` on the dense model.

        Each matrix (a slice of a packed projection too) becomes a leaf tensor
        put in place of its parameter with ``torch.func.functional_call``.
        """
        leaves = {m.name: m.read().requires_grad_(True) for m in matrices}
        real_names = {id(p): n for n, p in model.named_parameters()}
        slices = {}
        for matrix in matrices:
            slices.setdefault(id(matrix.parameter), []).append(matrix)
        generator = torch.Generator().manual_seed(self.seed)
        wrapper = _LossModule(model, family)
        totals = dict.fromkeys(leaves, 0.0)
        used = list(batches)[: self.num_batches]
        flags = [(p, p.requires_grad) for p in model.parameters()]
        for parameter, _ in flags:  # only the leaves need gradients
            parameter.requires_grad_(False)
        try:
            with torch.enable_grad(), family.twice_differentiable(model):
                for batch in used:
                    self._add_batch(totals, wrapper, family, model, batch, leaves,
                                    slices, real_names, generator, len(used))
        finally:
            for parameter, flag in flags:
                parameter.requires_grad_(flag)
        return totals

    def _add_batch(self, totals, wrapper, family, model, batch, leaves, slices,
                   real_names, generator, count):
        reference = family.sensitivity_reference(model, batch)

        def loss_fn():
            overrides = {f"model.{real_names[key]}": _assemble(parts, leaves)
                         for key, parts in slices.items()}
            return torch.func.functional_call(wrapper, overrides, (batch, reference),
                                              strict=False)

        traces = hutchinson_trace(loss_fn, leaves, self.num_probes,
                                  self.distribution, generator)
        for name, value in traces.items():
            totals[name] += value / count

    def allocate(self, model, family, matrices, batches, target):
        """Returns per-matrix ``(sparsities, prune counts, sensitivities)``."""
        sensitivity = self.sensitivities(model, family, matrices, batches)
        sizes = {m.name: m.numel() for m in matrices}
        sparsities = allocate_sparsities(sensitivity, sizes, target, self.alpha)
        return sparsities, allocate_prune_counts(sparsities, sizes, target), sensitivity


class _LossModule(torch.nn.Module):
    """Makes the family's sensitivity loss callable by ``functional_call``."""

    def __init__(self, model, family):
        super().__init__()
        self.model = model
        self.family = family

    def forward(self, batch, reference):
        return self.family.sensitivity_loss(self.model, batch, reference)


def _assemble(parts, leaves):
    """The parameter rebuilt from its matrices' leaves (row slices in order)."""
    ordered = sorted(parts, key=lambda m: m.rows.start)
    if len(ordered) == 1 and ordered[0].shape == tuple(ordered[0].parameter.shape):
        return leaves[ordered[0].name]
    full = ordered[0].parameter.detach()
    pieces, row = [], 0
    for matrix in ordered:
        if matrix.rows.start > row:
            pieces.append(full[row:matrix.rows.start])
        pieces.append(leaves[matrix.name])
        row = matrix.rows.stop
    if row < full.shape[0]:
        pieces.append(full[row:])
    return torch.cat(pieces)
