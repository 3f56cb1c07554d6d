"""Task-agnostic structured pruning by L0 gates and layer distillation (paper 002).

A student copy of a frozen teacher gets a hard-concrete gate per unit
(per-head q/k and v/o dims, whole MHA, FFN units, whole FFN; or heads for
"w/o FAHP"; with or without the straight-through estimator) and is trained on
unlabelled audio to match the teacher's hidden states, while a Lagrangian
drives the expected sparsity to the target:
``L = Σ_pairs d(h_s, h_t) + λ1(p̂ - p_t) + λ2(p̂ - p_t)²`` (002 eq. 5),
λ by gradient ascent on its own optimizer, ``log α`` on its own (``reg_lr``),
the student and the distillation projections on the main one. After training,
each gate's deterministic mask becomes a :class:`~.unit_masks.UnitMask`, the
gates come off and :func:`~speechbrain_sparse.surgery.remove_units` removes
the units; the achieved sparsity is reported next to the target.

The pieces are the library's (:mod:`.hard_concrete`, :mod:`.gate_set`,
:mod:`.unit_gates`, :mod:`.structured_l0`, :mod:`.distillation`); this module
wires them into a SpeechBrain ``Brain``. :class:`L0Distillation` holds the
settings (built by the YAML with ``!new:``); :class:`L0DistillationBrain`
trains. Teacher and student are
:class:`~speechbrain_sparse.asr.probing.FrozenUpstream`-like objects: called
as ``upstream(wavs, wav_lens) -> (hidden states, frame_lens)``, with
``.model``.

Authors
 * speechbrain_sparse contributors 2026
"""

import functools

import speechbrain as sb
import torch

from speechbrain_sparse.pruning.distillation import LayerDistillation
from speechbrain_sparse.pruning.gate_set import build_gates
from speechbrain_sparse.pruning.hard_concrete import HardConcrete
from speechbrain_sparse.pruning.structured_l0 import (
    LagrangianController,
    achieved_sparsity,
    deterministic_masks,
    expected_sparsity,
)
from speechbrain_sparse.pruning.unit_gates import attach_unit_gates
from speechbrain_sparse.pruning.unit_masks import UnitMask
from speechbrain_sparse.pruning.unit_structure import model_structure

FAHP_LEVELS = ("head_qk_dim", "head_vo_dim", "mha", "ffn_unit", "ffn")
HEAD_LEVELS = ("head", "mha", "ffn_unit", "ffn")


class L0Distillation(torch.nn.Module):
    """Settings, gates, distillation and the Lagrangian of one L0 run.

    Arguments
    ---------
    target : float
        Final sparsity of the gated parameters (the paper: 0.8).
    levels : sequence of str
        Gated unit kinds (FAHP: per-head dims; "w/o FAHP": ``head``).
    ste : bool
        The paper's straight-through estimator (002 eq. 4).
    init_keep : dict or None
        Kind -> initial keep probability (default 0.99 everywhere).
    warmup_steps : int
        Steps over which the target ramps up (the paper: 7 % of training).
    reg_lr : float
        Learning rate of ``log α`` (Adam, no weight decay).
    lr_lambda : float
        Learning rate of λ1, λ2 (ascent).
    distill_layers : list of int
        Hidden states paired student = teacher (0 = before layer 1).
    distill_loss : str
        ``"l1_cos"`` (DPHuBERT) or ``"mse"`` (002 eq. 5).
    """

    def __init__(self, target=0.8, levels=FAHP_LEVELS, ste=True, init_keep=None,
                 warmup_steps=0, reg_lr=0.02, lr_lambda=0.02, distill_layers=(0,),
                 distill_loss="l1_cos"):
        super().__init__()
        self.controller = LagrangianController(target, warmup_steps, lr_lambda)
        self.levels, self.ste, self.init_keep = tuple(levels), ste, init_keep
        self.reg_lr = reg_lr
        self.distill_layers, self.distill_loss = list(distill_layers), distill_loss
        self.structure, self.gates, self.handle, self.distill = None, None, None, None
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # resumable

    def prepare(self, student):
        """Gates ``student.model`` and builds the distillation (student = teacher
        width); returns the student."""
        self.structure = model_structure(student.model)
        make_gate = functools.partial(HardConcrete, ste=self.ste)
        self.gates = build_gates(self.structure, self.levels, make_gate,
                                 self.init_keep)
        self.handle = attach_unit_gates(student.model, self.structure, self.gates)
        width = student.hidden_size
        self.distill = LayerDistillation(width, width,
                                         student_layers=self.distill_layers,
                                         loss=self.distill_loss)
        student.add_trainable(self.gates)
        return student

    def objective(self, student_states, teacher_states, frame_lens, step):
        """Distillation + Lagrangian penalty at optimizer step ``step``."""
        distill = self.distill(student_states, teacher_states, frame_lens)
        penalty = self.controller.penalty(
            expected_sparsity(self.structure, self.gates), step)
        return distill + penalty, distill

    def finish(self, student):
        """Removes the gates and the closed units; returns the report."""
        from speechbrain_sparse.surgery import remove_units

        masks = deterministic_masks(self.gates)
        achieved = float(achieved_sparsity(self.structure, masks))
        mask = UnitMask(masks, self.structure.fingerprint(), method="l0",
                        options={"target": self.controller.target,
                                 "levels": list(self.levels), "ste": self.ste})
        mask = mask.hierarchical(self.structure)  # a closed block closes its units
        self.handle.remove()
        before = student.num_parameters()
        remove_units(student.model, mask, self.structure)
        self.pruned_mask = mask
        return {"target_sparsity": self.controller.target,
                "achieved_sparsity": achieved, "encoder_params": before,
                "pruned_params": before - student.num_parameters(),
                "kept_units": mask.num_kept(), "units": mask.num_units(),
                "levels": list(self.levels), "ste": self.ste,
                **self.controller.stats()}


class L0DistillationBrain(sb.Brain):
    """Trains an L0-gated student to match its frozen teacher.

    Modules: ``student`` (trainable upstream with gates), ``teacher`` (frozen
    upstream), ``l0`` (:class:`L0Distillation`). Hyperparameters it reads:
    ``train_logger``; optional ``lr_annealing`` (main optimizer only).
    """

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wavs, wav_lens = batch.sig
        with torch.no_grad():
            teacher, _ = self.modules.teacher(wavs, wav_lens)
        student, frame_lens = self.modules.student(wavs, wav_lens)
        return student, [t.detach() for t in teacher], frame_lens

    def compute_objectives(self, predictions, batch, stage):
        student, teacher, frame_lens = predictions
        l0 = self.modules.l0
        loss, distill = l0.objective(student, teacher, frame_lens, int(l0.steps))
        self.distill_sum += float(distill.detach())
        self.batches += 1
        return loss

    def init_optimizers(self):
        """Main (student + projections), ``log α`` (reg_lr) and λ (ascent)."""
        l0 = self.modules.l0
        gate_ids = {id(p) for p in l0.gates.parameters()}
        main = [p for p in self.modules.parameters()
                if p.requires_grad and id(p) not in gate_ids]
        self.optimizer = self.opt_class(main)
        self.gate_optimizer = torch.optim.Adam(l0.gates.parameters(), lr=l0.reg_lr)
        self.optimizers_dict = {"opt_class": self.optimizer,
                                "gate_optimizer": self.gate_optimizer}
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("optimizer", self.optimizer)
            self.checkpointer.add_recoverable("gate_optimizer", self.gate_optimizer)
            self.checkpointer.add_recoverable("lagrangian", l0.controller)

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        """λ ascent, ``log α`` clamp, learning-rate schedule of the main optimizer."""
        if should_step:
            self.modules.l0.steps += 1
            self.modules.l0.controller.step()
            self.modules.l0.gates.constrain_()
            annealing = getattr(self.hparams, "lr_annealing", None)
            if annealing is not None:
                annealing(self.optimizer)

    def on_stage_start(self, stage, epoch=None):
        self.distill_sum, self.batches = 0.0, 0

    def on_stage_end(self, stage, stage_loss, epoch=None):
        stats = {"loss": stage_loss,
                 "distill": self.distill_sum / max(1, self.batches),
                 **self.modules.l0.controller.stats()}
        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
        elif stage == sb.Stage.VALID:
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch}, train_stats=self.train_stats,
                valid_stats=stats)
            self.checkpointer.save_and_keep_only(meta={"epoch": epoch},
                                                 num_to_keep=1)
