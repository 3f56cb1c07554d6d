"""Training with a parameter mask enforced: sparse fine-tuning and pruning.

Sparse fine-tuning (:mod:`speechbrain_sparse.dialect_sparse_finetuning`) trains
only a masked subnetwork while the rest of the model stays at the pretrained
values ``theta_s``. This module makes that hold *bit for bit* inside a
SpeechBrain ``Brain``:

* ``freeze`` mode: entries outside the mask stay ``torch.equal`` to
  ``theta_s``, the values captured when the mask is attached;
* ``prune`` mode: entries outside the mask are exactly zero and stay zero.

``MaskEnforcer`` does the tensor work and can be used without a Brain (e.g.
by pruning code). ``MaskedTrainingMixin`` wires it into ``Brain.fit``. Each
optimizer step, with ``g`` the gradients and ``m`` the mask:

1. ``g[~m] = 0`` before unscaling and clipping, so the clipping norm and the
   AMP inf check see trainable entries only;
2. the L1 pull toward ``theta_s`` (optional) is added to ``g`` as an exact
   subgradient, once per optimizer step;
3. one joint ``clip_grad_norm_`` over the parameters of *all* optimizers
   (SpeechBrain 1.1.2 clips only ``param_groups[0]`` of each optimizer);
4. the optimizers step;
5. frozen entries are restored from ``theta_s`` (freeze) or zeroed (prune),
   so weight decay, momentum, AMP and accumulation cannot move them.

Design decisions:

* Uncovered parameters (no entry in the mask) are frozen in ``freeze`` mode
  and trained in ``prune`` mode (``uncovered="freeze"|"train"`` overrides).
  Tensors with no trainable entry get ``requires_grad=False`` and are removed
  from every optimizer, so nothing (weight decay included) can touch them.
* L1 penalty: ``l1_weight / n * sum(|theta - theta_s|)`` over the ``n``
  entries the mask marks trainable. SpeechBrain's accumulated gradient is the
  mean over the micro-batches, so adding the penalty gradient once per
  optimizer step equals adding the penalty once to that mean loss (adding it
  to every micro-batch loss without the ``1/k`` would count it ``k`` times).
  It is added after AMP unscaling and before clipping, like the loss
  gradient; the loss ``fit_batch`` returns excludes it (log ``l1_penalty()``).
* Checkpoints: the enforcer is its own recoverable (``parameter_mask``) that
  stores the masks and ``theta_s`` of every partially trainable tensor (of
  fully trainable ones too when ``l1_weight > 0``); nothing enters the
  model's state dict, so checkpoint averaging never turns a bool mask into
  0.5. Fully frozen tensors need no stored reference: they never change and
  the model checkpoint holds them. On resume the checkpointed mask and
  ``theta_s`` replace the attached ones (it must freeze the same whole
  tensors, since the optimizers were built from the attached one).
* Memory: the enforcer holds a bool mask and a copy of ``theta_s`` for each
  partially trainable tensor (1 + 4 bytes per fp32 entry);
  ``MaskedAdamW`` (``speechbrain_sparse.masked_adamw``) keeps the Adam
  moments only for the trainable entries of each tensor.

Authors
 * speechbrain_sparse contributors 2026
"""

from collections.abc import Mapping

import torch
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.masks import canonical_parameter_name

MASK_MODES = ("freeze", "prune")


@register_checkpoint_hooks
class MaskEnforcer:
    """Keeps the entries outside a parameter mask frozen or pruned.

    Arguments
    ---------
    module : torch.nn.Module
        The module whose ``named_parameters`` the mask keys refer to.
    mask : Mapping[str, torch.BoolTensor]
        Canonical parameter name -> bool tensor, ``True`` = trainable (freeze
        mode) or kept (prune mode).
    mode : str
        ``"freeze"`` (others stay at ``theta_s``) or ``"prune"`` (others = 0).
    l1_weight : float
        Weight of the L1 pull toward ``theta_s`` over the trainable entries.
    uncovered : str, optional
        ``"freeze"`` or ``"train"`` for parameters without a mask entry;
        default: ``"freeze"`` in freeze mode, ``"train"`` in prune mode.

    Example
    -------
    >>> lin = torch.nn.Linear(3, 2)
    >>> theta_s = lin.weight.detach().clone()
    >>> mask = {"weight": torch.tensor([[1, 0, 0], [0, 0, 1]]).bool()}
    >>> enforcer = MaskEnforcer(lin, mask, mode="freeze")
    >>> lin.bias.requires_grad  # uncovered: frozen
    False
    >>> opt = torch.optim.AdamW(enforcer.trainable_parameters(), lr=0.1)
    >>> lin(torch.ones(4, 3)).sum().backward()
    >>> enforcer.mask_gradients()
    >>> opt.step()
    >>> enforcer.enforce()
    >>> torch.equal(lin.weight[~mask["weight"]], theta_s[~mask["weight"]])
    True
    >>> enforcer.num_trainable
    2
    """

    def __init__(self, module, mask, mode="freeze", l1_weight=0.0, uncovered=None):
        if mode not in MASK_MODES:
            raise UserInputError(f"mode must be one of {MASK_MODES}, got {mode!r}")
        if not isinstance(mask, Mapping):
            raise TypeError("mask must be a Mapping[str, torch.BoolTensor]")
        self.mode = mode
        self.l1_weight = float(l1_weight)
        self.uncovered = uncovered or ("freeze" if mode == "freeze" else "train")
        self.params = {
            canonical_parameter_name(n): p for n, p in module.named_parameters()
        }
        unknown = sorted(set(mask) - set(self.params))
        if unknown:
            raise KeyError(f"mask names parameters not in the module: {unknown[:5]}")
        self._bind(mask, reference=None)

    def _bind(self, mask, reference, optimized=()):
        """Sorts tensors into trainable / partial / frozen; stores theta_s.

        ``optimized`` tensors stay partial even with no trainable entry.
        """
        self.frozen = {}  # name -> bool tensor, True = frozen/pruned entry
        self.reference = {}  # name -> theta_s (pruned entries zeroed)
        self.fully_frozen = set()
        self.covered = set(mask)
        self.num_trainable = 0
        for name, param in self.params.items():
            if name not in mask:
                if self.uncovered == "freeze":
                    self.fully_frozen.add(name)
                continue
            keep = torch.as_tensor(mask[name]).to(param.device, torch.bool)
            if keep.shape != param.shape:
                raise UserInputError(f"mask {name}: {keep.shape} != {param.shape}")
            count = int(keep.sum())
            self.num_trainable += count
            if count == 0 and name not in optimized:
                self.fully_frozen.add(name)
            elif count < keep.numel():
                self.frozen[name] = ~keep
            partial = name in self.frozen
            if (self.mode == "freeze" and partial) or (count and self.l1_weight > 0):
                ref = param.detach() if reference is None else reference[name]
                ref = ref.to(param.device, param.dtype, copy=True)
                self.reference[name] = ref.masked_fill_(~keep, 0) if (
                    self.mode == "prune"
                ) else ref
        with torch.no_grad():
            for name in self.fully_frozen:
                self.params[name].requires_grad_(False)
                if self.mode == "prune" and name in mask:
                    self.params[name].zero_()
        self.enforce()

    def rebind(self, mask):
        """Replaces the mask while training; the optimizers keep every tensor.

        ``mask`` is as for the constructor. Leaving entries are frozen at their
        current value (``theta_s`` becomes the current values) or zeroed
        (prune); joining entries train from their current value. Bound
        ``MaskedAdamW`` optimizers keep the moments of entries that stay.
        """
        optimized = set(self.params) - self.fully_frozen
        for name in sorted(set(mask) & getattr(self, "dropped", set())):
            if bool(torch.as_tensor(mask[name]).any()):
                raise UserInputError(f"rebind: '{name}' was removed from the "
                                     f"optimizers (no trainable entry at the start)")
        self._bind(mask, reference=None, optimized=optimized)
        for name in optimized - self.fully_frozen:
            self.params[name].requires_grad_(True)
        self._rebind_optimizers()

    def trainable_parameters(self):
        """Returns the parameters that have at least one trainable entry."""
        return [p for n, p in self.params.items()
                if n not in self.fully_frozen and p.requires_grad]

    def trainable_masks(self):
        """Returns ``{param: bool tensor}`` for partially trainable tensors.

        ``MaskedAdamW.set_trainable_masks`` takes this to keep compact state.
        """
        return {self.params[n]: ~frozen for n, frozen in self.frozen.items()}

    def prepare_optimizers(self, optimizers):
        """Drops fully frozen tensors from ``optimizers``; binds mask-aware ones.

        Call right after the optimizers are built and before any step.

        Arguments
        ---------
        optimizers : iterable of torch.optim.Optimizer
            All optimizers of the training loop.
        """
        excluded = {id(self.params[n]) for n in self.fully_frozen}
        self.dropped = set(self.fully_frozen)
        optimizers = list(optimizers)
        self.bound_optimizers = [o for o in optimizers
                                 if hasattr(o, "set_trainable_masks")]
        for opt in optimizers:
            for group in opt.param_groups:
                group["params"] = [p for p in group["params"] if id(p) not in excluded]
            if hasattr(opt, "set_trainable_masks"):
                opt.set_trainable_masks(self.trainable_masks())

    @torch.no_grad()
    def mask_gradients(self):
        """Sets the gradients of frozen / pruned entries to exactly zero."""
        for name, frozen in self.frozen.items():
            grad = self.params[name].grad
            if grad is not None:
                grad.masked_fill_(frozen, 0.0)

    def l1_penalty(self):
        """Returns ``l1_weight / n * sum |theta - theta_s|`` (differentiable).

        Returns
        -------
        torch.Tensor
            The scalar penalty over the ``n`` trainable entries.
        """
        total = sum(
            (self.params[n] - ref).abs().sum() for n, ref in self.reference.items()
        )
        return self.l1_weight * total / max(self.num_trainable, 1)

    @torch.no_grad()
    def add_l1_gradient(self):
        """Adds the gradient of ``l1_penalty()`` to ``.grad`` (once per step).

        Frozen entries equal ``theta_s`` (pruned ones equal the zeroed
        reference), so ``sign(0) = 0`` gives them no pull.
        """
        if self.l1_weight <= 0 or self.num_trainable == 0:
            return
        scale = self.l1_weight / self.num_trainable
        for name, ref in self.reference.items():
            param = self.params[name]
            pull = torch.sign(param - ref).mul_(scale)
            if param.grad is None:
                param.grad = pull
            else:
                param.grad.add_(pull)

    @torch.no_grad()
    def enforce(self):
        """Restores frozen entries to ``theta_s`` (freeze) or zero (prune)."""
        for name, frozen in self.frozen.items():
            param = self.params[name]
            if self.mode == "freeze":
                torch.where(frozen, self.reference[name], param, out=param)
            else:
                param.masked_fill_(frozen, 0.0)

    def masks(self):
        """Returns the mask as ``{name: bool tensor}`` (True = trainable)."""
        out = {}
        for name, param in self.params.items():
            if name in self.frozen:
                out[name] = ~self.frozen[name]
            elif name in self.fully_frozen:
                out[name] = torch.zeros_like(param, dtype=torch.bool)
            elif name in self.covered:
                out[name] = torch.ones_like(param, dtype=torch.bool)
        return out

    @mark_as_saver
    def _save(self, path):
        """Saves masks and theta_s (CPU tensors) to ``path``."""
        torch.save(
            {
                "mode": self.mode,
                "l1_weight": self.l1_weight,
                "uncovered": self.uncovered,
                "mask": {n: m.cpu() for n, m in self.masks().items()},
                "reference": {n: r.cpu() for n, r in self.reference.items()},
            },
            path,
        )

    @mark_as_loader
    def _recover(self, path, end_of_epoch):
        """Restores masks and theta_s; the set of optimized tensors must match."""
        del end_of_epoch
        saved = torch.load(path, map_location="cpu", weights_only=True)
        before = set(self.fully_frozen)
        self.mode, self.l1_weight = saved["mode"], saved["l1_weight"]
        self.uncovered = saved["uncovered"]
        self._bind(saved["mask"], reference=saved["reference"])
        if self.fully_frozen != before:
            raise RuntimeError(
                "The checkpointed mask freezes other whole tensors than the "
                "attached one, so the optimizers hold the wrong parameters. "
                "Attach the same mask (or start a new experiment folder)."
            )
        self._rebind_optimizers()

    bound_optimizers = ()

    def _rebind_optimizers(self):
        for opt in self.bound_optimizers:
            opt.set_trainable_masks(self.trainable_masks())


class MaskedTrainingMixin:
    """Brain mixin that trains with a mask enforced: ``class ASR(Mixin, Brain)``.

    A recipe attaches the mask before ``fit`` with ``brain.attach_mask(...)``
    (the ASR recipes do it from their YAML's ``mask_strategy``, see
    :func:`speechbrain_sparse.asr.sparse_finetuning.select_and_attach_mask`).
    Optimizers come from ``init_optimizers`` as usual; tensors without a
    trainable entry are then removed from them. Use
    :class:`~speechbrain_sparse.masked_adamw.MaskedAdamW` so that AdamW keeps
    moments only for the trainable entries.

    Example
    -------
    >>> import speechbrain as sb
    >>> class Toy(MaskedTrainingMixin, sb.Brain):
    ...     def compute_forward(self, batch, stage):
    ...         return self.modules.lin(batch[0])
    ...     def compute_objectives(self, predictions, batch, stage):
    ...         return torch.nn.functional.mse_loss(predictions, batch[1])
    >>> lin = torch.nn.Linear(4, 2)
    >>> brain = Toy({"lin": lin}, lambda p: torch.optim.AdamW(p, 0.1),
    ...             run_opts={"device": "cpu"})
    >>> keep = {"lin.weight": torch.tensor([[1, 0, 0, 1], [0, 1, 0, 0]]).bool()}
    >>> theta_s = lin.weight.detach().clone()
    >>> _ = brain.attach_mask(keep, mode="freeze", l1_weight=0.01)
    >>> data = [(torch.rand(8, 4), torch.rand(8, 2))] * 3
    >>> brain.fit(range(2), data, progressbar=False)
    >>> torch.equal(lin.weight[~keep["lin.weight"]],
    ...             theta_s[~keep["lin.weight"]])
    True
    """

    mask_enforcer = None

    def attach_mask(self, mask, mode="freeze", l1_weight=0.0, uncovered=None,
                    module=None):
        """Attaches ``mask``; captures ``theta_s`` from the parameters now.

        Arguments
        ---------
        mask : Mapping[str, torch.BoolTensor]
            Canonical parameter names (relative to ``module``) -> bool tensor.
        mode : str
            ``"freeze"`` or ``"prune"``.
        l1_weight : float
            Weight of the L1 pull toward ``theta_s``.
        uncovered : str, optional
            Policy for parameters without a mask entry (see ``MaskEnforcer``).
        module : torch.nn.Module, optional
            Module the names refer to; default ``self.modules``.

        Returns
        -------
        MaskEnforcer
        """
        module = self.modules if module is None else module
        self.mask_enforcer = MaskEnforcer(module, mask, mode, l1_weight, uncovered)
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("parameter_mask", self.mask_enforcer)
        return self.mask_enforcer

    def _optimizers(self):
        if self.optimizers_dict is not None:
            return self.freeze_optimizers(self.optimizers_dict)
        if getattr(self, "optimizer", None) is not None:
            return {"optimizer": self.optimizer}
        return {}

    def init_optimizers(self):
        """Builds the optimizers, then removes fully frozen tensors from them."""
        super().init_optimizers()
        if self.mask_enforcer is not None:
            self.mask_enforcer.prepare_optimizers(self._optimizers().values())

    def optimizers_step(self):
        """Masked step: zero frozen grads, L1, joint clip, step, re-enforce."""
        enforcer = self.mask_enforcer
        if enforcer is None:
            return super().optimizers_step()
        optimizers = list(self._optimizers().values())
        if not optimizers:
            return
        enforcer.mask_gradients()
        for opt in optimizers:
            self.scaler.unscale_(opt)
        enforcer.add_l1_gradient()
        params = [p for opt in optimizers for group in opt.param_groups
                  for p in group["params"] if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        if not self.scaler.is_enabled() and self.skip_nonfinite_grads:
            self.check_gradients()
        for opt in optimizers:
            self.scaler.step(opt)
        self.scaler.update()
        enforcer.enforce()
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        self.optimizer_step += 1
