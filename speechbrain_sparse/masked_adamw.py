"""AdamW whose state covers only the trainable entries of each tensor.

Dense AdamW keeps two moments per entry (8 bytes per fp32 parameter) even for
entries a mask keeps frozen. ``MaskedAdamW`` keeps ``exp_avg`` and
``exp_avg_sq`` as 1-D tensors over the trainable entries of a partially
trainable tensor, so at density ``d`` its state is ``d`` times dense AdamW's.
It reads the gradient at the trainable entries, updates them with the AdamW
rule (decoupled weight decay, bias correction; same math as
``torch.optim.AdamW`` without amsgrad) and writes only those entries back:
frozen entries are never written. Tensors without a mask are updated densely.

Besides the state it caches the flat indices of the trainable entries (int32
where they fit: 4 bytes per trainable entry, derived from the mask, never
checkpointed). ``MaskEnforcer.prepare_optimizers`` binds the masks; in a
recipe, ``opt_class: !name:speechbrain_sparse.masked_adamw.MaskedAdamW``.
Binding new masks later (``MaskEnforcer.rebind``) carries the moments of the
entries that stay trainable over; entries that join start from zero moments.

Per-step update masks (:meth:`MaskedAdamW.set_step_mask`, for language
pathways): in the next step only the entries a step mask marks are updated;
the others, their moments and weight decay included, stay bit-identical. Bias
correction is per entry: a tensor that ever had a step mask keeps
``beta1_power`` and ``beta2_power`` (``beta ** n``, ``n`` = the steps that
updated the entry; 8 bytes per entry), so every entry follows AdamW over the
steps it took part in, and an entry that joins late gets AdamW's warm start
instead of an uncorrected first step. The masked update is dense arithmetic
with a 0/1 float mask (no ``nonzero`` or ``where``: on CPU both are several
times slower than a multiply): ``x + c * mask * y`` adds exactly ``0`` where
the mask is 0, so inactive entries are never changed.

Authors
 * speechbrain_sparse contributors 2026
"""

import math

import torch


class MaskedAdamW(torch.optim.Optimizer):
    """AdamW with state only for the trainable entries of masked tensors.

    Arguments
    ---------
    params : iterable
        Parameters or parameter groups, as for ``torch.optim.AdamW``.
    lr : float
        Learning rate.
    betas : tuple of float
        Moment decay rates.
    eps : float
        Denominator term.
    weight_decay : float
        Decoupled weight decay (applied to trainable entries only).

    Example
    -------
    >>> weight = torch.nn.Parameter(torch.ones(2, 3))
    >>> opt = MaskedAdamW([weight], lr=0.1, weight_decay=0.1)
    >>> opt.set_trainable_masks({weight: torch.tensor([[1, 0, 0], [0, 0, 1]]).bool()})
    >>> weight.grad = torch.ones(2, 3)
    >>> opt.step()
    >>> weight.detach()
    tensor([[0.8900, 1.0000, 1.0000],
            [1.0000, 1.0000, 0.8900]])
    >>> opt.state[weight]["exp_avg"].shape
    torch.Size([2])
    """

    def __init__(
        self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2
    ):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)
        self._masks = {}
        self._indices = {}
        self._step_masks = {}

    def set_trainable_masks(self, masks):
        """Binds ``{parameter: bool tensor}``; True marks a trainable entry.

        When the optimizer already has state (the mask changed during
        training), the moments of entries that stay trainable are kept and
        entries that join start from zero moments and a zero step count.

        Arguments
        ---------
        masks : Mapping[torch.nn.Parameter, torch.BoolTensor]
            Masks of partially trainable tensors; others are updated densely.
        """
        old = {id(p): self._trainable_indices(p) for p in self.state}
        betas = {id(p): g["betas"] for g in self.param_groups for p in g["params"]}
        self._masks = {id(p): m for p, m in masks.items()}
        self._indices = {}
        for param, state in self.state.items():
            new = self._trainable_indices(param)
            before = old[id(param)]
            if "exp_avg" not in state or _same_entries(before, new):
                continue
            expected = param.numel() if before is None else before.numel()
            if state["exp_avg"].numel() == expected:  # else: loaded for ``new``
                _remap_state(param, state, betas[id(param)], before, new)

    def set_step_mask(self, masks):
        """Restricts the NEXT ``step()`` to the marked entries (None: no mask).

        Entries a mask marks 0/False keep their value and both moments
        bit-identical in that step (no weight decay either); tensors without a
        mask are updated in full. The mask is cleared after the step.

        Arguments
        ---------
        masks : Mapping[torch.nn.Parameter, torch.Tensor] or None
            Full-shape masks: bool, or 0/1 tensors of the parameter's dtype
            (used as given, which saves a conversion per step).

        Example
        -------
        >>> weight = torch.nn.Parameter(torch.ones(4))
        >>> opt = MaskedAdamW([weight], lr=0.1, weight_decay=0.1)
        >>> weight.grad = torch.ones(4)
        >>> opt.set_step_mask({weight: torch.tensor([True, True, False, False])})
        >>> opt.step()
        >>> weight.detach()
        tensor([0.8900, 0.8900, 1.0000, 1.0000])
        >>> opt.state[weight]["exp_avg"]
        tensor([0.1000, 0.1000, 0.0000, 0.0000])
        """
        self._step_masks = {} if masks is None else {id(p): m for p, m in masks.items()}

    def _trainable_indices(self, param):
        """Flat indices of the trainable entries (cached), or None if dense."""
        key = id(param)
        if key not in self._masks:
            return None
        if key not in self._indices:
            flat = self._masks[key].reshape(-1).nonzero().squeeze(1)
            if param.numel() < 2**31:
                flat = flat.to(torch.int32)
            self._indices[key] = flat.to(param.device)
        return self._indices[key]

    @torch.no_grad()
    def step(self, closure=None):
        """Performs one AdamW step on the trainable entries.

        Arguments
        ---------
        closure : callable, optional
            Re-evaluates the model and returns the loss.

        Returns
        -------
        The loss returned by ``closure``, if given.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        try:
            for group in self.param_groups:
                self._step_group(group)
        finally:
            self._step_masks = {}
        return loss

    def _step_group(self, group):
        beta1, beta2 = group["betas"]
        values, grads, avgs, avg_sqs, written = [], [], [], [], []
        step_sizes, bias2_roots, masked = [], [], []
        for param in group["params"]:
            if param.grad is None:
                continue
            index = self._trainable_indices(param)
            if index is None:
                value, grad = param, param.grad
            else:
                value = param.reshape(-1).index_select(0, index)
                grad = param.grad.reshape(-1).index_select(0, index)
                written.append((param, index, value))
            state = self.state[param]
            if not state:
                state["step"] = torch.tensor(0.0)
                state["exp_avg"] = torch.zeros_like(grad)
                state["exp_avg_sq"] = torch.zeros_like(grad)
            active = self._step_masks.get(id(param))
            if active is not None or "beta1_power" in state:
                masked.append(self._masked_entry(group, value, grad, state, active,
                                                 index))
                continue
            state["step"] += 1
            step = state["step"].item()
            step_sizes.append(group["lr"] / (1 - beta1**step))
            bias2_roots.append(math.sqrt(1 - beta2**step))
            values.append(value)
            grads.append(grad)
            avgs.append(state["exp_avg"])
            avg_sqs.append(state["exp_avg_sq"])
        if values:
            torch._foreach_mul_(values, 1 - group["lr"] * group["weight_decay"])
            torch._foreach_lerp_(avgs, grads, 1 - beta1)
            torch._foreach_mul_(avg_sqs, beta2)
            torch._foreach_addcmul_(avg_sqs, grads, grads, 1 - beta2)
            denoms = torch._foreach_sqrt(avg_sqs)
            torch._foreach_div_(denoms, bias2_roots)
            torch._foreach_add_(denoms, group["eps"])
            torch._foreach_div_(denoms, step_sizes)  # denom / step_size
            torch._foreach_addcdiv_(values, avgs, denoms, value=-1.0)
        if masked:
            self._masked_updates(group, masked)
        for param, index, value in written:
            param.view(-1).index_put_((index,), value)

    def _masked_entry(self, group, value, grad, state, active, index):
        """Prepares one tensor for :meth:`_masked_updates`."""
        if "beta1_power" not in state:
            _add_powers(state, group["betas"], grad)
        state["step"] += 1
        if active is None:
            active = torch.ones_like(value)
        else:
            active = active.to(value.dtype).reshape(-1)
            if index is not None:
                active = active.index_select(0, index)
            active = active.view_as(value)
        return value, grad, state, active

    @staticmethod
    def _masked_updates(group, entries):
        """AdamW on the entries ``active`` marks, with per-entry bias correction.

        ``x.addcmul_(y, active, value=c)`` adds exactly 0 where ``active`` is
        0, and the update's numerator is 0 there, so those entries (value,
        moments, ``beta ** n``) are left bit-identical.
        """
        beta1, beta2 = group["betas"]
        lr, eps = group["lr"], group["eps"]
        values, grads, states, actives = (list(x) for x in zip(*entries))
        avgs = [s["exp_avg"] for s in states]
        avg_sqs = [s["exp_avg_sq"] for s in states]
        powers1 = [s["beta1_power"] for s in states]
        powers2 = [s["beta2_power"] for s in states]
        torch._foreach_addcmul_(values, values, actives,
                                value=-lr * group["weight_decay"])
        torch._foreach_addcmul_(avgs, torch._foreach_sub(grads, avgs), actives,
                                value=1 - beta1)
        squares = torch._foreach_mul(grads, grads)
        torch._foreach_sub_(squares, avg_sqs)
        torch._foreach_addcmul_(avg_sqs, squares, actives, value=1 - beta2)
        torch._foreach_addcmul_(powers1, powers1, actives, value=beta1 - 1)
        torch._foreach_addcmul_(powers2, powers2, actives, value=beta2 - 1)
        denoms = torch._foreach_mul(powers2, -1.0)
        torch._foreach_add_(denoms, 1.0)  # 1 - beta2 ** n
        denoms = torch._foreach_div(avg_sqs, denoms)
        torch._foreach_sqrt_(denoms)
        torch._foreach_add_(denoms, eps)
        corrections = torch._foreach_mul(powers1, -1.0)
        torch._foreach_add_(corrections, 1.0)  # 1 - beta1 ** n
        torch._foreach_mul_(denoms, corrections)
        torch._foreach_addcdiv_(values, torch._foreach_mul(avgs, actives), denoms,
                                value=-lr)


# beta ** 0 is stored as the float just below 1, so that 1 - beta ** n is never
# 0: entries that were never updated divide 0 by a positive number.
_BELOW_ONE = float(torch.nextafter(torch.tensor(1.0), torch.tensor(0.0)))


def _add_powers(state, betas, like):
    """Adds per-entry ``beta ** n`` for the ``n = step`` updates the tensor had."""
    steps = state["step"].item()
    for key, beta in zip(("beta1_power", "beta2_power"), betas):
        state[key] = torch.full_like(like, min(beta**steps, _BELOW_ONE))


def _same_entries(before, after):
    if before is None or after is None:
        return before is None and after is None
    return before.shape == after.shape and torch.equal(before, after)


def _remap_state(param, state, betas, before, after):
    """Moves per-entry state from index set ``before`` to ``after`` (None: all).

    Entries that join get zero moments and ``beta ** 0``.
    """
    if "beta1_power" not in state:
        _add_powers(state, betas, state["exp_avg"])
    for key in ("exp_avg", "exp_avg_sq", "beta1_power", "beta2_power"):
        fill = _BELOW_ONE if key.startswith("beta") else 0.0
        old = state[key].reshape(-1)
        full = torch.full((param.numel(),), fill, dtype=old.dtype, device=old.device)
        if before is None:
            full.copy_(old)
        else:
            full.index_copy_(0, before.long(), old)
        state[key] = full.view_as(param) if after is None else full[after.long()]
