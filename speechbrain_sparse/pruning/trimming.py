"""Trimming a frozen foundation model (Genova et al. 2024, "Keep what you need").

The encoder stays frozen; a binary mask ``round(σ(m))`` per unit (conv
channel, attention head, FFN unit) is learned together with a downstream head,
with a straight-through estimator and a sparsity loss, and the masked units
are then removed for real. Read top to bottom:

1. :class:`Trimming` attaches one :class:`~.hard_concrete.BinarySTE` gate per
   unit group of the encoder (:func:`~.unit_structure.model_structure`,
   :func:`~.unit_gates.attach_unit_gates`: the gate scales the unit's weights
   where they are consumed, so a closed unit contributes nothing).
2. The sparsity loss, exactly as the paper's
   ``L_S = Σ_i ‖σ(m_i − t)‖₂ / N``: ``m_i`` is the mask vector of block ``i``
   (one per unit group: the heads of a layer, its FFN units, the channels
   of a conv), the norm is the Euclidean norm, **not squared**, ``N`` the
   total number of units. (The authors' code uses ``100·(mean σ(m) −
   target)²`` instead.) ``t`` sets how hard units are pushed shut: lower
   ``t``, more trimming. ``grouping="unit"`` reads the index as running
   over units, i.e. ``mean σ(m_u − t)``.
3. ``L = L_C + λ·L_S`` (:meth:`Trimming.objective`); with
   ``sparsity_weight=None`` λ is matched to the task loss on the first
   training batch, ``λ = L_C / L_S``, and then kept (a buffer, so it is
   checkpointed and survives a resume).
4. :meth:`Trimming.trim`: the deterministic mask (``m > 0``) becomes a
   :class:`~.unit_masks.UnitMask`, the gates are removed (weights back to the
   frozen originals, bit-identical) and :func:`~..surgery.remove_units`
   removes the units. The trimmed fraction is removed parameters / encoder
   parameters; it is computed from the mask *and* measured after surgery,
   and the two must agree. A conv layer whose channels are all closed keeps
   its most open one (a conv layer cannot be removed; the authors' code
   never removes conv 0 and conv 6 at all).

The paper's baselines (its Table I): :class:`SSF` (learned scale and shift
``γ⊙f + β`` where the masks were, no sparsity loss, nothing removed) and
:class:`Scratch` (the trimmed architecture, re-initialised and trained in
full). All three share the strategy interface the probing recipe calls:
``prepare(upstream) -> upstream``, ``objective(task_loss)``,
``finish(upstream) -> dict``. :class:`TrimmingMixin` adds the objective to
a Brain's training loss.

Example
-------
>>> import torch
>>> logits = [torch.tensor([0.5, 0.5]), torch.tensor([0.5])]
>>> value = sparsity_loss(logits, threshold=0.5)   # (√(0.25+0.25) + 0.5) / 3
>>> round(float(value), 6) == round((0.5 ** 0.5 + 0.5) / 3, 6)
True

Authors
 * speechbrain_sparse contributors 2026
"""

import copy
import math

import speechbrain as sb
import torch

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.pruning.hard_concrete import BinarySTE
from speechbrain_sparse.pruning.unit_masks import UnitMask
from speechbrain_sparse.pruning.unit_structure import model_structure

TRIM_LEVELS = ("conv_channel", "head", "ffn_unit")
GROUPINGS = ("block", "unit")


def sparsity_loss(logits, threshold, grouping="block"):
    """``L_S = Σ_i ‖σ(m_i − t)‖₂ / N`` over the mask vectors ``m_i``.

    Arguments
    ---------
    logits : sequence of torch.Tensor
        The mask logits ``m_i`` of every block (1-D each).
    threshold : float
        ``t``.
    grouping : str
        ``"block"`` (one norm per mask vector, the paper's reading) or
        ``"unit"`` (every unit its own block: the mean of ``σ(m_u − t)``).

    Returns
    -------
    torch.Tensor
        A 0-dim tensor, differentiable w.r.t. the logits.
    """
    total_units = sum(m.numel() for m in logits)
    if grouping == "unit":
        return sum(torch.sigmoid(m - threshold).sum() for m in logits) / total_units
    return sum(torch.linalg.vector_norm(torch.sigmoid(m - threshold))
               for m in logits) / total_units


def trimmable_groups(structure, levels):
    """``{group: count}`` of the encoder's groups at ``levels`` (decoders excluded)."""
    groups = structure.groups(levels)
    return {group: count for group, (_, count) in groups.items()
            if not group.startswith("decoder.")}


class Trimming(torch.nn.Module):
    """Learned binary unit masks on a frozen encoder, a sparsity loss, removal.

    Arguments
    ---------
    threshold : float
        ``t`` of the sparsity loss (the paper: 0.3 to 0.7); finite.
    levels : sequence of str
        Unit kinds masked: ``conv_channel`` (exact only for group-norm conv
        stacks), ``head``, ``ffn_unit``.
    sparsity_weight : float or None
        λ; None matches it to the task loss on the first training batch.
    init : float
        Initial mask logit ``m`` (the authors' code: 1.0, all units kept).
    through_sigmoid : bool
        STE backward through σ instead of the identity w.r.t. ``m``.
    grouping : str
        How ``L_S`` groups units (see :func:`sparsity_loss`).
    lr : float, optional
        Learning rate of the mask logits (their own optimizer group); None:
        the optimizer's (the paper: Adam 1e-3 for all, over 100k steps; short
        runs need a larger one for ``m`` to cross 0).
    """

    def __init__(self, threshold=0.5, levels=TRIM_LEVELS, sparsity_weight=None,
                 init=1.0, through_sigmoid=False, grouping="block", lr=None):
        super().__init__()
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
                or not math.isfinite(threshold):
            raise UserInputError(f"threshold: must be a finite number, not "
                                 f"{threshold!r}")
        if sparsity_weight is not None and not (
                isinstance(sparsity_weight, (int, float))
                and math.isfinite(sparsity_weight) and sparsity_weight >= 0):
            raise UserInputError(f"sparsity_weight: must be a number >= 0 or None "
                                 f"(matched to the task loss), not {sparsity_weight!r}")
        if lr is not None and not (isinstance(lr, (int, float)) and lr > 0):
            raise UserInputError(f"lr: must be a number > 0 or None, not {lr!r}")
        if grouping not in GROUPINGS:
            raise UserInputError(f"grouping: must be one of {', '.join(GROUPINGS)}, "
                                 f"not {grouping!r}")
        self.threshold, self.levels = float(threshold), tuple(levels)
        self.init, self.through_sigmoid, self.grouping = init, through_sigmoid, grouping
        self.lr = lr
        weight = math.nan if sparsity_weight is None else float(sparsity_weight)
        self.register_buffer("sparsity_weight", torch.tensor(weight))
        self.gates = torch.nn.ModuleList()
        self.group_names, self.structure, self.handle = [], None, None

    def prepare(self, upstream):
        """Attaches one BinarySTE gate per unit group of ``upstream.model``."""
        from speechbrain_sparse.pruning.unit_gates import attach_unit_gates

        if self.handle is not None:
            raise RuntimeError("Trimming.prepare: gates are already attached")
        self.structure = model_structure(upstream.model)
        groups = trimmable_groups(self.structure, self.levels)
        self.group_names = list(groups)
        for count in groups.values():
            self.gates.append(BinarySTE(count, init=self.init,
                                        through_sigmoid=self.through_sigmoid))
        self.handle = attach_unit_gates(upstream.model, self.structure,
                                        dict(zip(self.group_names, self.gates)))
        upstream.add_trainable(self)
        return upstream

    def sparsity_loss(self):
        """``L_S`` of the current mask logits."""
        return sparsity_loss([gate.logits for gate in self.gates], self.threshold,
                             self.grouping)

    def objective(self, task_loss):
        """``L_C + λ·L_S``; λ set to ``L_C / L_S`` on the first call if unset."""
        penalty = self.sparsity_loss()
        if torch.isnan(self.sparsity_weight):
            with torch.no_grad():
                self.sparsity_weight.fill_(float(task_loss.detach() / penalty.detach()))
        return task_loss + self.sparsity_weight * penalty

    def unit_mask(self):
        """The deterministic mask (``round(σ(m))``) as a :class:`UnitMask`.

        A conv layer cannot be removed, so one whose channels are all closed
        keeps its most open channel (the largest ``m``; the first on ties);
        ``forced_channels`` lists those layers.
        """
        kept, self.forced_channels = {}, []
        for name, gate in zip(self.group_names, self.gates):
            kept[name] = gate.deterministic_mask().cpu()
            if name.endswith(":conv_channel") and not kept[name].any():
                kept[name][int(torch.argmax(gate.logits.detach()))] = True
                self.forced_channels.append(name)
        mask = UnitMask.full(self.structure, self.levels, method="trimming",
                             options={"threshold": self.threshold,
                                      "sparsity_weight":
                                          float(self.sparsity_weight)})
        return mask.replace(kept)

    def kept_fraction(self):
        """Kept units / units (a progress figure; not a parameter count)."""
        mask = self.unit_mask()
        return mask.num_kept() / max(1, mask.num_units())

    def finish(self, upstream):
        """Removes the gates and the closed units; returns the trimming report.

        Returns
        -------
        dict
            ``encoder_params`` (before), ``trimmed_params`` (removed, measured
            after surgery), ``trimmed_fraction``, ``mask_trimmed_params`` (what
            the mask says) and ``kept_units`` / ``units``.
        """
        from speechbrain_sparse.surgery import remove_units

        mask = self.unit_mask()
        predicted = self.structure.num_params(mask.levels) \
            - mask.num_kept_params(self.structure)
        self.handle.remove()
        self.handle = None
        before = upstream.num_parameters()
        remove_units(upstream.model, mask, self.structure)
        after = upstream.num_parameters()
        if before - after != predicted:
            raise RuntimeError(f"surgery removed {before - after} parameters, the "
                               f"unit mask says {predicted}")
        self.trimmed_mask = mask
        return {"encoder_params": before, "trimmed_params": before - after,
                "trimmed_fraction": (before - after) / before,
                "mask_trimmed_params": predicted, "kept_units": mask.num_kept(),
                "units": mask.num_units(), "threshold": self.threshold,
                "forced_channels": list(self.forced_channels),
                "sparsity_weight": float(self.sparsity_weight)}


class Modulation(torch.nn.Module):
    """``γ⊙f + β`` over one axis of a module's output (SSF); starts as identity.

    Arguments
    ---------
    size : int
        Features modulated.
    dim : int
        The output axis they are on (-1: last; 1: conv channels).
    """

    def __init__(self, size, dim=-1):
        super().__init__()
        self.dim = dim
        self.scale = torch.nn.Parameter(torch.ones(size))
        self.shift = torch.nn.Parameter(torch.zeros(size))

    def forward(self, features):
        shape = [1] * features.dim()
        shape[self.dim] = -1
        return features * self.scale.view(shape) + self.shift.view(shape)

    def hook(self, module, args, output):
        """A forward hook: modulates the output (the first item of a tuple)."""
        if isinstance(output, tuple):
            return (self(output[0]),) + tuple(output[1:])
        return self(output)


class SSF(torch.nn.Module):
    """The SSF baseline: ``γ⊙f + β`` at the outputs the trimming masks act on.

    Conv layers (channels), attention blocks (their output) and FFN up
    projections (their units), per ``levels``; no sparsity loss, nothing is
    removed (Lian et al. 2022, as the trimming paper's baseline).

    Arguments
    ---------
    levels : sequence of str
        As for :class:`Trimming`.
    """

    def __init__(self, levels=TRIM_LEVELS):
        super().__init__()
        self.levels = tuple(levels)
        self.modulations = torch.nn.ModuleList()

    def prepare(self, upstream):
        """Hooks a :class:`Modulation` on each modulated module's output."""
        structure = model_structure(upstream.model)
        structure.check_levels(self.levels)
        targets = []
        if "conv_channel" in self.levels:
            targets += [(conv, conv.out_channels, 1) for conv in structure.conv.convs]
        if "head" in self.levels:
            targets += [(block.module, block.embed_dim, -1)
                        for block in structure.attention
                        if not block.name.startswith("decoder.")]
        if "ffn_unit" in self.levels:
            targets += [(block.up, block.d_ffn, -1) for block in structure.ffn
                        if not block.name.startswith("decoder.")]
        for module, size, dim in targets:
            modulation = Modulation(size, dim)
            module.register_forward_hook(modulation.hook)
            self.modulations.append(modulation)
        upstream.add_trainable(self)
        return upstream

    def objective(self, task_loss):
        """The task loss alone."""
        return task_loss

    def finish(self, upstream):
        """Nothing is removed."""
        return {"encoder_params": upstream.num_parameters(),
                "trimmed_params": 0, "trimmed_fraction": 0.0,
                "ssf_params": sum(p.numel() for p in self.parameters())}


def reinitialised(model, seed=0):
    """A freshly initialised model of ``model``'s architecture.

    Hugging Face models are built again from their config (their own
    initialisation); other modules are deep-copied and every submodule with
    ``reset_parameters`` is reset.
    """
    torch.manual_seed(seed)
    config = getattr(model, "config", None)
    if config is not None and hasattr(model, "post_init"):
        return type(model)(copy.deepcopy(config))
    fresh = copy.deepcopy(model)
    for module in fresh.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return fresh


class Scratch(torch.nn.Module):
    """The scratch baseline: the trimmed architecture, re-initialised, all trained.

    Arguments
    ---------
    mask_file : str or Path
        The unit mask a trimming run saved (``unit_mask.pt``).
    seed : int
        Seeds the re-initialisation.
    """

    def __init__(self, mask_file, seed=0):
        super().__init__()
        self.mask_file, self.seed = mask_file, seed

    def prepare(self, upstream):
        """A new, trainable upstream: fresh weights, the mask's units removed."""
        from speechbrain_sparse.surgery import remove_units

        structure = model_structure(upstream.model)
        mask = UnitMask.load(self.mask_file, structure)
        fresh = reinitialised(upstream.model, self.seed)
        remove_units(fresh, mask, model_structure(fresh))
        new = upstream.with_model(fresh)
        new.unfreeze()
        return new

    def objective(self, task_loss):
        """The task loss alone."""
        return task_loss

    def finish(self, upstream):
        """The architecture was trimmed before training; nothing more to remove."""
        return {"encoder_params": upstream.num_parameters()}


class TrimmingMixin:
    """Adds ``hparams.strategy.objective`` to the training loss of a Brain.

    Put it before the Brain class: ``class TrimmingBrain(TrimmingMixin,
    ProbeBrain)``. Validation and test losses stay the task loss alone.
    """

    def compute_objectives(self, predictions, batch, stage):
        """The task loss; in training, the strategy's objective of it."""
        loss = super().compute_objectives(predictions, batch, stage)
        if stage == sb.Stage.TRAIN:
            loss = self.hparams.strategy.objective(loss)
        return loss
