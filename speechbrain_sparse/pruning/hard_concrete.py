"""Gate distributions for structured pruning: hard-concrete (L0) and binary STE gates.

A gate is an ``nn.Module`` over ``count`` units whose ``forward()`` returns
``z`` [count] in ``[0, 1]``, the factor each unit is multiplied by:

* :class:`HardConcrete` (Louizos et al., 2018): ``s = σ((logit(u) + log α)/β)``
  with ``u ~ U(0, 1)`` (the task-agnostic pruning paper's eq. 2 writes
  ``σ(logit(u)/β + log α)``: ``noise_form="paper"``), stretched to
  ``s̄ = s(ζ - γ) + γ`` and clipped, ``z = hardtanh(s̄)`` into ``[0, 1]``, so a
  gate is exactly 0 or 1 with a finite probability. With ``ste=True`` (the
  paper's eq. 4) the clip is a straight-through estimator whose backward is
  ``∂L/∂s̄ = clamp(∂L/∂z, -1, 1)`` everywhere; without it the gradient is the
  plain one, zero where ``s̄`` was clipped. ``prob_open()`` is
  ``π = P(z > 0) = σ(log α - β·ln(-γ/ζ))`` (differentiable), the expected L0.
  In eval mode ``forward()`` is the binary :meth:`HardConcrete.deterministic_mask`,
  the top ``round(Σπ)`` units by ``log α``;
* :class:`BinarySTE` (trimming): ``z = round(σ(m))`` with the identity as
  backward w.r.t. ``m``.

Authors
 * speechbrain_sparse contributors 2026

Example
-------
>>> gate = HardConcrete(4, init_keep=0.9)
>>> [round(p, 3) for p in gate.prob_open().tolist()]
[0.9, 0.9, 0.9, 0.9]
>>> z = gate()
>>> tuple(z.shape), bool(((z >= 0) & (z <= 1)).all())
((4,), True)
>>> gate.eval().deterministic_mask().tolist()
[True, True, True, True]
"""

import math

import torch

from speechbrain_sparse.errors import UserInputError

NOISE_FORMS = ("louizos", "paper")


def _check_positive_finite(name, value):
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise UserInputError(f"{name}={value!r}: must be a finite number > 0")


def check_count(count):
    """Raises a named error unless ``count`` is an integer >= 1."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise UserInputError(f"count={count!r}: a gate needs an integer count >= 1")


class _ClipSTE(torch.autograd.Function):
    """Forward ``clamp(x, 0, 1)``; backward the upstream gradient clipped to [-1, 1]."""

    @staticmethod
    def forward(ctx, stretched):
        return stretched.clamp(0.0, 1.0)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(-1.0, 1.0)


class _Sigmoid(torch.autograd.Function):
    """``σ(x)`` whose backward ``σ(x)σ(-x)`` does not vanish where ``σ(x)`` rounds to 1.

    ``torch.sigmoid``'s backward is ``s(1 - s)``, exactly 0 in float32 once
    ``x > 17``; an STE gate at ``log α = 10`` would lose a fifth of its gradients.
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sigmoid(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.sigmoid(x) * torch.sigmoid(-x)


def hardtanh01(stretched, ste):
    """``z = clamp(s̄, 0, 1)``; with ``ste`` its backward is ``clamp(∂L/∂z, -1, 1)``.

    Example
    -------
    >>> x = torch.tensor([-0.5, 0.5, 1.5], requires_grad=True)
    >>> hardtanh01(x, ste=True).mul(torch.tensor([5.0, 0.3, -2.0])).sum().backward()
    >>> x.grad.tolist()
    [1.0, 0.30000001192092896, -1.0]
    """
    if ste:
        return _ClipSTE.apply(stretched)
    return stretched.clamp(0.0, 1.0)


def open_logit(log_alpha, threshold, beta, noise_form):
    """``logit P(s > threshold)`` for the stretched-to-be ``s`` of either noise form.

    ``s ≤ t`` is ``logit(u) ≤ β·logit(t) - log α`` (Louizos) or
    ``logit(u) ≤ β·(logit(t) - log α)`` (paper's eq. 2), and ``logit(u)`` is
    standard logistic, so ``P(s > t) = σ(log α - β·logit(t))`` or
    ``σ(β·(log α - logit(t)))``.

    Example
    -------
    >>> beta, t = 2 / 3, 0.1 / 1.2  # s̄ > 0 with γ=-0.1, ζ=1.1
    >>> round(float(open_logit(torch.tensor(0.0), t, beta, "louizos")), 4)
    1.5986
    """
    threshold_logit = math.log(threshold / (1.0 - threshold))
    if noise_form == "louizos":
        return log_alpha - beta * threshold_logit
    return beta * (log_alpha - threshold_logit)


def sample_stretched(log_alpha, beta, gamma, zeta, noise_form="louizos",
                     generator=None, eps=1e-6):
    """Draws ``s̄ = s(ζ - γ) + γ`` (same shape as ``log_alpha``), differentiable in it.

    Example
    -------
    >>> g = torch.Generator().manual_seed(0)
    >>> s_bar = sample_stretched(torch.zeros(1000), 2 / 3, -0.1, 1.1, generator=g)
    >>> bool((s_bar > -0.1).all() and (s_bar < 1.1).all())
    True
    """
    u = torch.rand(log_alpha.shape, generator=generator, device=log_alpha.device,
                   dtype=log_alpha.dtype).clamp(eps, 1.0 - eps)
    noise = torch.log(u) - torch.log1p(-u)
    if noise_form == "louizos":
        s = _Sigmoid.apply((noise + log_alpha) / beta)
    else:
        s = _Sigmoid.apply(noise / beta + log_alpha)
    return s * (zeta - gamma) + gamma


def top_mask(scores, keep):
    """Bool mask keeping the ``keep`` highest ``scores`` (ties: lower index first).

    Example
    -------
    >>> top_mask(torch.tensor([0.5, 2.0, 0.5, -1.0]), 2).tolist()
    [True, True, False, False]
    """
    order = torch.argsort(-scores.detach(), stable=True)
    mask = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
    mask[order[:keep]] = True
    return mask


class HardConcrete(torch.nn.Module):
    """Hard-concrete gates over ``count`` units (see the module docstring).

    Arguments
    ---------
    count : int
        Number of units (>= 1).
    init_keep : float
        Initial ``P(z > 0)`` of every unit, in (0, 1); ``log α`` is set from it.
    beta : float
        Temperature β > 0.
    gamma, zeta : float
        Stretch interval, γ < 0 and ζ > 1.
    ste : bool
        Straight-through clip (paper eq. 4) instead of the plain gradient.
    noise_form : str
        ``"louizos"`` (``σ((logit(u) + log α)/β)``) or ``"paper"``
        (``σ(logit(u)/β + log α)``).
    log_alpha_range : tuple of float or None
        ``(low, high)`` that :meth:`constrain_` clamps ``log α`` into after an
        optimizer step (CoFi: ``(ln 0.01, ln 100)``); None = no clamp.

    Example
    -------
    >>> gate = HardConcrete(3, init_keep=0.5, ste=False)
    >>> [round(p, 3) for p in gate.prob_open().tolist()]
    [0.5, 0.5, 0.5]
    >>> round(gate.expected_l0().item(), 3)
    1.5
    """

    def __init__(self, count, init_keep=0.99, beta=2 / 3, gamma=-0.1, zeta=1.1,
                 ste=True, noise_form="louizos", log_alpha_range=None):
        super().__init__()
        check_count(count)
        _check_positive_finite("beta", beta)
        if not (isinstance(gamma, (int, float)) and math.isfinite(gamma) and gamma < 0):
            raise UserInputError(f"gamma={gamma!r}: the stretch needs gamma < 0")
        if not (isinstance(zeta, (int, float)) and math.isfinite(zeta) and zeta > 1):
            raise UserInputError(f"zeta={zeta!r}: the stretch needs zeta > 1")
        if not (isinstance(init_keep, (int, float)) and 0 < init_keep < 1):
            raise UserInputError(f"init_keep={init_keep!r}: must lie in (0, 1)")
        if noise_form not in NOISE_FORMS:
            raise UserInputError(
                f"noise_form={noise_form!r}: expected one of {', '.join(NOISE_FORMS)}")
        if log_alpha_range is not None:
            low, high = (float(v) for v in log_alpha_range)
            if not low < high:
                raise UserInputError(f"log_alpha_range={log_alpha_range!r}: "
                                     "expected (low, high) with low < high")
            log_alpha_range = (low, high)
        self.count, self.beta, self.gamma, self.zeta = count, beta, gamma, zeta
        self.ste, self.noise_form = ste, noise_form
        self.log_alpha_range = log_alpha_range
        self.log_alpha = torch.nn.Parameter(
            torch.full((count,), self.log_alpha_for(init_keep)))

    def log_alpha_for(self, keep):
        """The ``log α`` whose ``P(z > 0)`` is ``keep``.

        Example
        -------
        >>> round(HardConcrete(1).log_alpha_for(0.99), 4)
        2.9965
        """
        target = math.log(keep / (1.0 - keep))
        threshold_logit = math.log(-self.gamma / self.zeta)
        if self.noise_form == "louizos":
            return target + self.beta * threshold_logit
        return target / self.beta + threshold_logit

    def _open_logit(self, threshold):
        return open_logit(self.log_alpha, threshold, self.beta, self.noise_form)

    def prob_open(self):
        """``π = P(z > 0)`` per unit [count], differentiable in ``log α``."""
        return torch.sigmoid(self._open_logit(-self.gamma / (self.zeta - self.gamma)))

    def prob_closed(self):
        """``P(z = 0) = 1 - π`` per unit [count]."""
        return 1.0 - self.prob_open()

    def prob_one(self):
        """``P(z = 1) = P(s̄ ≥ 1)`` per unit [count].

        Example
        -------
        >>> gate = HardConcrete(1, init_keep=0.5)
        >>> bool(gate.prob_one() < gate.prob_open())
        True
        """
        return torch.sigmoid(
            self._open_logit((1.0 - self.gamma) / (self.zeta - self.gamma)))

    def expected_l0(self):
        """``Σ π``, the expected number of open units (a 0-dim tensor)."""
        return self.prob_open().sum()

    def sample(self, generator=None):
        """``(s̄, z)``, one draw per unit; ``z`` carries the chosen estimator."""
        stretched = sample_stretched(self.log_alpha, self.beta, self.gamma,
                                     self.zeta, self.noise_form, generator)
        return stretched, hardtanh01(stretched, self.ste)

    def forward(self):
        """``z`` [count]: a draw in train mode, the deterministic mask in eval."""
        if self.training:
            return self.sample()[1]
        return self.deterministic_mask().to(self.log_alpha.dtype)

    def deterministic_mask(self):
        """Bool [count] keeping the top ``round(Σπ)`` units by ``log α``.

        The number of closed units is ``round(count - Σπ)`` (CoFi's rule).

        Example
        -------
        >>> gate = HardConcrete(4)
        >>> with torch.no_grad():
        ...     _ = gate.log_alpha.copy_(torch.tensor([3.0, -9.0, 1.0, -9.0]))
        >>> gate.deterministic_mask().tolist()
        [True, False, True, False]
        """
        with torch.no_grad():
            closed = round(self.count - float(self.prob_open().sum()))
        return top_mask(self.log_alpha, self.count - closed)

    @torch.no_grad()
    def constrain_(self):
        """Clamps ``log α`` into ``log_alpha_range`` (call after an optimizer step)."""
        if self.log_alpha_range is not None:
            self.log_alpha.clamp_(*self.log_alpha_range)

    def extra_repr(self):
        return (f"count={self.count}, beta={self.beta:.4g}, gamma={self.gamma}, "
                f"zeta={self.zeta}, ste={self.ste}, noise_form={self.noise_form!r}")


class _RoundSTE(torch.autograd.Function):
    """Forward ``round(x)``; backward the identity."""

    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


class _RoundSigmoidSTE(torch.autograd.Function):
    """Forward ``round(σ(m))``; backward the identity w.r.t. ``m``."""

    @staticmethod
    def forward(ctx, m):
        return torch.round(torch.sigmoid(m))

    @staticmethod
    def backward(ctx, grad):
        return grad


class BinarySTE(torch.nn.Module):
    """Binary unit masks ``z = round(σ(m))`` learned with a straight-through estimator.

    The trimming paper's masks: the backward is the identity w.r.t. ``m``
    (its authors' code); ``through_sigmoid=True`` passes the gradient through
    ``σ`` instead (``∂z/∂m = σ'(m)``). ``prob_open()`` is ``σ(m)``; the
    deterministic mask is ``round(σ(m))``, i.e. ``m > 0``, the same in train
    and eval.

    Arguments
    ---------
    count : int
        Number of units (>= 1).
    init : float
        Initial ``m`` of every unit (the trimming repository uses 1.0).
    through_sigmoid : bool
        Backward through ``σ`` instead of the identity.

    Example
    -------
    >>> gate = BinarySTE(3)
    >>> with torch.no_grad():
    ...     _ = gate.logits.copy_(torch.tensor([2.0, -0.5, 0.1]))
    >>> gate().tolist()
    [1.0, 0.0, 1.0]
    >>> gate().sum().backward()
    >>> gate.logits.grad.tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, count, init=1.0, through_sigmoid=False):
        super().__init__()
        check_count(count)
        if not (isinstance(init, (int, float)) and math.isfinite(init)):
            raise UserInputError(f"init={init!r}: must be a finite number")
        self.count, self.through_sigmoid = count, through_sigmoid
        self.logits = torch.nn.Parameter(torch.full((count,), float(init)))

    def prob_open(self):
        """``σ(m)`` [count], differentiable."""
        return torch.sigmoid(self.logits)

    def expected_l0(self):
        """``Σ σ(m)`` (a 0-dim tensor)."""
        return self.prob_open().sum()

    def forward(self):
        """``z = round(σ(m))`` [count] with the straight-through backward."""
        if self.through_sigmoid:
            return _RoundSTE.apply(torch.sigmoid(self.logits))
        return _RoundSigmoidSTE.apply(self.logits)

    def deterministic_mask(self):
        """Bool [count]: ``round(σ(m)) == 1``."""
        return torch.round(torch.sigmoid(self.logits.detach())) > 0

    def constrain_(self):
        """Nothing to clamp (same interface as :class:`HardConcrete`)."""

    def extra_repr(self):
        return f"count={self.count}, through_sigmoid={self.through_sigmoid}"
