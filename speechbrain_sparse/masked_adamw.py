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

    def set_trainable_masks(self, masks):
        """Binds ``{parameter: bool tensor}``; True marks a trainable entry.

        Arguments
        ---------
        masks : Mapping[torch.nn.Parameter, torch.BoolTensor]
            Masks of partially trainable tensors; others are updated densely.
        """
        self._masks = {id(p): m for p, m in masks.items()}
        self._indices = {}

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
        for group in self.param_groups:
            self._step_group(group)
        return loss

    def _step_group(self, group):
        beta1, beta2 = group["betas"]
        values, grads, avgs, avg_sqs, written = [], [], [], [], []
        step_sizes, bias2_roots = [], []
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
            state["step"] += 1
            step = state["step"].item()
            step_sizes.append(group["lr"] / (1 - beta1**step))
            bias2_roots.append(math.sqrt(1 - beta2**step))
            values.append(value)
            grads.append(grad)
            avgs.append(state["exp_avg"])
            avg_sqs.append(state["exp_avg_sq"])
        if not values:
            return
        torch._foreach_mul_(values, 1 - group["lr"] * group["weight_decay"])
        torch._foreach_lerp_(avgs, grads, 1 - beta1)
        torch._foreach_mul_(avg_sqs, beta2)
        torch._foreach_addcmul_(avg_sqs, grads, grads, 1 - beta2)
        denoms = torch._foreach_sqrt(avg_sqs)
        torch._foreach_div_(denoms, bias2_roots)
        torch._foreach_add_(denoms, group["eps"])
        torch._foreach_div_(denoms, step_sizes)  # denom / step_size
        torch._foreach_addcdiv_(values, avgs, denoms, value=-1.0)
        for param, index, value in written:
            param.view(-1).index_put_((index,), value)
